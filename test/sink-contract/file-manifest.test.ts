import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createFileSink, fileEpochName } from '../../src/sink/file/file-sink.ts';
import { chunksOf, contractEpochs, contractTables, snapshotRows } from './fixtures.ts';

describe('file sink manifests', () => {
  it('deletes orphan data files up to the newest manifest on open and refuses an epoch already committed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-file-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const uri = `file://${dir}?format=jsonl`;
    const sink = createFileSink({ uri, changefeedId: 'feed-1' });
    await sink.open();
    await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), { position: '0/1000000', epoch: 0 });
    await sink.commitEpoch(contractEpochs()[0]!);
    await sink.close();
    // A crash (or a fenced writer) after writing epoch 1's data files but before its manifest…
    const orphan = join(dir, `${fileEpochName(1)}-0badf00d-public.items.jsonl`);
    writeFileSync(orphan, '{"op":"truncate"}\n');
    // …and epoch 2's files, which may as well be another writer's, still being written.
    const pending = join(dir, `${fileEpochName(2)}-0badf00d-public.items.jsonl`);
    writeFileSync(pending, '{"op":"truncate"}\n');
    const ownTemp = join(dir, `manifest-${fileEpochName(2)}.json.0badf00d.tidemark-feed-1.tmp`);
    writeFileSync(ownTemp, '{');

    const again = createFileSink({ uri, changefeedId: 'feed-1' });
    expect(await again.open()).toEqual({ position: '0/1000100', epoch: 1 });
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(pending)).toBe(true);
    expect(existsSync(ownTemp)).toBe(false);
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
    expect(manifest.writer).toMatch(/ pid \d+ sink [0-9a-f]{8}$/);
    await again.close();
    // Once a manifest for epoch 2 exists, its unnamed files are orphans too.
    const third = createFileSink({ uri, changefeedId: 'feed-1' });
    await third.open();
    expect(existsSync(pending)).toBe(false);
  });

  it("removes only its own changefeed's temp files, never another program's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-file-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const theirs = ['report.tmp', 'manifest-00000000000000000001.json.tmp', 'x.0badf00d.tidemark-feed-2.tmp'];
    for (const n of theirs) writeFileSync(join(dir, n), 'not tidemark');
    const mine = join(dir, '_open-public.items.jsonl.0badf00d.tidemark-feed-1.tmp');
    writeFileSync(mine, '');
    const sink = createFileSink({ uri: `file://${dir}`, changefeedId: 'feed-1' });
    await sink.open();
    for (const n of theirs) expect(existsSync(join(dir, n)), n).toBe(true);
    expect(existsSync(mine)).toBe(false);
    await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), { position: '0/1000000', epoch: 0 });
    const writer = await sink.beginEpoch();
    await writer.applyChunk(contractEpochs()[0]!.tables);
    // The chunk's provisional files are recognisably this changefeed's temp files.
    expect(readdirSync(dir).filter((n) => n.endsWith('.tidemark-feed-1.tmp')).length).toBeGreaterThan(1);
    await writer.commit({ ...contractEpochs()[0]!, tables: [] });
    await sink.close();
    for (const n of theirs) expect(existsSync(join(dir, n)), n).toBe(true);
    expect(existsSync(mine)).toBe(false);
    expect(
      readdirSync(dir)
        .filter((n) => n.endsWith('.tmp'))
        .sort(),
    ).toEqual([...theirs].sort());
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
