import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createFileSink, fileEpochName } from '../../src/sink/file/file-sink.ts';
import { chunksOf, contractEpochs, contractTables, snapshotRows } from './fixtures.ts';

describe('file sink manifests', () => {
  it('deletes orphan data files on open and refuses an epoch already committed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-file-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const uri = `file://${dir}?format=jsonl`;
    const sink = createFileSink({ uri, changefeedId: 'feed-1' });
    await sink.open();
    await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), { position: '0/1000000', epoch: 0 });
    await sink.commitEpoch(contractEpochs()[0]!);
    await sink.close();
    // A crash after writing epoch 2's data files but before its manifest.
    const orphan = join(dir, `${fileEpochName(2)}-public.items.jsonl`);
    writeFileSync(orphan, '{"op":"truncate"}\n');
    writeFileSync(join(dir, `manifest-${fileEpochName(2)}.json.tmp`), '{');

    const again = createFileSink({ uri, changefeedId: 'feed-1' });
    expect(await again.open()).toEqual({ position: '0/1000100', epoch: 1 });
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(join(dir, `manifest-${fileEpochName(2)}.json.tmp`))).toBe(false);
    await expect(again.commitEpoch(contractEpochs()[0]!)).rejects.toMatchObject({
      code: 'SINK_CHECKPOINT_AHEAD',
    });
    await again.commitEpoch(contractEpochs()[1]!);
    expect(JSON.parse(readFileSync(join(dir, '_latest'), 'utf8'))).toEqual({
      manifest: `manifest-${fileEpochName(2)}.json`,
      epoch: 2,
      position: '0/1000200',
    });
    const manifest = JSON.parse(readFileSync(join(dir, `manifest-${fileEpochName(2)}.json`), 'utf8'));
    expect(manifest.files.map((f: { table: string; rows: number }) => [f.table, f.rows])).toEqual([
      ['items', 3], // two partial updates and the delete of the moved row's old key
      ['order_lines', 2],
      ['events', 1],
    ]);
  });

  it('refuses a directory written by another changefeed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-file-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const a = createFileSink({ uri: `file://${dir}`, changefeedId: 'a' });
    await a.open();
    await a.writeSnapshot([], chunksOf([]), { position: '0/1', epoch: 0 });
    const b = createFileSink({ uri: `file://${dir}`, changefeedId: 'b' });
    await expect(b.open()).rejects.toMatchObject({ code: 'SINK_CHECKPOINT_AHEAD' });
  });
});
