import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, onTestFinished } from 'vitest';
import type { FileManifest } from '../../src/sink/file/file-sink.ts';
import { readFileSinkTable } from '../sink-contract/file-readback.ts';
import { crashRecovery, snapshotAndStream, type E2eTarget } from './workload.ts';
import { viewWithNullGroupAndLostState } from './views.ts';

/** Follows the manifests, as a reader of the file sink does: the newest one is the checkpoint. */
function target(format: 'jsonl' | 'csv'): E2eTarget {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-e2e-file-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'out');
  return {
    uri: `file://${out}?format=${format}`,
    checkpoint: async () => {
      if (!existsSync(out)) return null;
      const newest = readdirSync(out)
        .filter((n) => /^manifest-\d{20}\.json$/.test(n))
        .sort()
        .at(-1);
      if (!newest) return null;
      const m = JSON.parse(readFileSync(join(out, newest), 'utf8')) as FileManifest;
      return { position: m.position, epoch: m.epoch };
    },
    read: async (t) => readFileSinkTable(out, t),
  };
}

describe('end to end into files', () => {
  it('SIGKILL 10 times under load (jsonl): no loss, no duplicates', { timeout: 300_000 }, async () => {
    await crashRecovery(target('jsonl'), { kills: 10, seed: 424242 });
  });

  it(
    'snapshot with a concurrent writer, then streaming (csv): equal to the source',
    { timeout: 180_000 },
    async () => {
      await snapshotAndStream(target('csv'), { seed: 8 });
    },
  );

  it(
    'a view with a NULL group; its state lost and restarted: a replacing snapshot, equal to the source',
    { timeout: 240_000 },
    async () => {
      await viewWithNullGroupAndLostState(target('jsonl'), { seed: 57 });
    },
  );
});
