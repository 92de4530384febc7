import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, onTestFinished } from 'vitest';
import { readSqlite, sqliteCheckpoint } from '../sink-contract/readers.ts';
import { crashRecovery, FEED_ID, snapshotAndStream, type E2eTarget } from './workload.ts';

function target(): E2eTarget {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-e2e-sqlite-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'replica.db');
  return {
    uri: `sqlite://${path}`,
    checkpoint: async () => sqliteCheckpoint(path, FEED_ID),
    read: async (t) => readSqlite(path, t),
  };
}

describe('end to end into sqlite', () => {
  it('SIGKILL 10 times under load: no loss, no duplicates', { timeout: 300_000 }, async () => {
    await crashRecovery(target(), { kills: 10, seed: 20261121 });
  });

  it(
    'snapshot with a concurrent writer, then streaming: equal to the source',
    { timeout: 180_000 },
    async () => {
      await snapshotAndStream(target(), { seed: 7 });
    },
  );
});
