/**
 * PostgreSQL specifics of epochs written in chunks (the contract itself is test/sink-contract/):
 * each chunk takes the inline or the COPY path on its own, the COPY stages are emptied between
 * chunks, and a failure — the server rejecting a value, the connection dying — rolls back every
 * chunk before it.
 */
import { describe, expect, it } from 'vitest';
import { UNCHANGED, type Row } from '../../src/core/row.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import { PostgresSink } from '../../src/sink/postgres/postgres-sink.ts';
import type { TableChanges } from '../../src/core/epoch.ts';
import { freshDatabase } from '../support/db.ts';
import { changes, col, epoch, reader, table, tableExists, textRows } from './pg-sink-fixtures.ts';

const modes = [
  { mode: 'inline VALUES', inlineMaxRows: 2_000 },
  { mode: 'COPY staging', inlineMaxRows: 0 },
];

const kv = table('kv', [col('id', 'integer', { key: true }), col('v', 'text'), col('big', 'text')]);
const bag = table('bag', [col('v', 'text')], { keyless: true });
const key = (id: string): Row => [id, null, null];

/** Three runs of one source transaction, as EpochBuilder.takeChunk would give them. */
const chunk1: TableChanges[] = [
  changes(kv, {
    upserts: [
      ['1', 'a', 'A'.repeat(5000)],
      ['2', 'b', 'B'],
      ['3', 'c', 'C'],
    ],
  }),
  changes(bag, { rowDeltas: [{ row: ['x'], count: 2 }] }),
];
const chunk2: TableChanges[] = [
  // 1 → 10, its big value read from the row chunk 1 wrote.
  changes(kv, {
    deletes: [key('1')],
    upserts: [['2', 'b2', 'B']],
    partialUpdates: [{ row: ['10', 'moved', UNCHANGED], fromKey: key('1') }],
  }),
  changes(bag, { rowDeltas: [{ row: ['x'], count: 1 }] }),
];
const last: TableChanges[] = [
  changes(kv, { partialUpdates: [{ row: ['3', 'c2', UNCHANGED], fromKey: null }] }),
  changes(bag, { rowDeltas: [{ row: ['x'], count: -1 }] }),
];
const expectedKv = [
  ['10', 'moved', 'A'.repeat(5000)],
  ['2', 'b2', 'B'],
  ['3', 'c2', 'C'],
];

describe.each(modes)('PostgresSink epochs in chunks via $mode', ({ inlineMaxRows }) => {
  async function setup() {
    const db = await freshDatabase('pgchunks');
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1', inlineMaxRows });
    expect(await sink.open()).toBeNull();
    return { db, sink, r: await reader(db) };
  }

  it('applies each chunk once (stages emptied between chunks), invisible until the commit', async () => {
    const { sink, r } = await setup();
    try {
      const writer = await sink.beginEpoch();
      await writer.applyChunk(chunk1);
      await writer.applyChunk(chunk2);
      // The tables were created inside the open transaction: not even they are visible yet.
      expect(await tableExists(r, 'public.kv')).toBe(false);
      await writer.commit(epoch(1, last));
      expect(await textRows(r, 'SELECT * FROM public.kv ORDER BY id::text')).toEqual(expectedKv);
      expect(await textRows(r, 'SELECT v, count(*) FROM public.bag GROUP BY v')).toEqual([['x', '2']]);

      // The stages (and the verified tables) serve the next epochs, whole or in chunks.
      await sink.commitEpoch(epoch(2, [changes(bag, { rowDeltas: [{ row: ['x'], count: 1 }] })]));
      const again = await sink.beginEpoch();
      await again.applyChunk([changes(bag, { rowDeltas: [{ row: ['y'], count: 2 }] })]);
      await again.commit(epoch(3, [changes(bag, { rowDeltas: [{ row: ['x'], count: -3 }] })]));
      expect(await textRows(r, 'SELECT v, count(*) FROM public.bag GROUP BY v')).toEqual([['y', '2']]);
      expect(await textRows(r, 'SELECT epoch FROM tidemark.checkpoints')).toEqual([['3']]);
    } finally {
      await sink.close();
    }
  });

  it('a chunk the server rejects rolls back every chunk; the epoch then commits whole', async () => {
    const { sink, r } = await setup();
    try {
      const writer = await sink.beginEpoch();
      await writer.applyChunk(chunk1);
      const bad = [
        changes(kv, {
          upserts: [
            ['4', 'd', 'D'],
            ['not a number', 'e', 'E'],
          ],
        }),
      ];
      const err = await writer.applyChunk(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TidemarkError);
      expect(err).toMatchObject({ code: 'SINK_WRITE_FAILED', retriable: false });
      expect(String(err)).toMatch(/invalid input syntax for type integer/);
      await expect(writer.commit(epoch(1, last))).rejects.toMatchObject({ code: 'INTERNAL' });
      await writer.abort();
      expect(await tableExists(r, 'public.kv')).toBe(false);

      const whole = epoch(1, [
        changes(kv, {
          upserts: [
            ['10', 'moved', 'A'.repeat(5000)],
            ['2', 'b2', 'B'],
            ['3', 'c2', 'C'],
          ],
        }),
        changes(bag, { rowDeltas: [{ row: ['x'], count: 2 }] }),
      ]);
      await sink.commitEpoch(whole);
      expect(await textRows(r, 'SELECT * FROM public.kv ORDER BY id::text')).toEqual(expectedKv);
    } finally {
      await sink.close();
    }
  });
});

describe('PostgresSink epoch in chunks over a lost connection', () => {
  it('fails the next chunk as retriable, keeps nothing, and the retry reconnects and commits', async () => {
    const db = await freshDatabase('pgchunks');
    const r = await reader(db);
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
    try {
      await sink.open();
      const writer = await sink.beginEpoch();
      await writer.applyChunk(chunk1);
      // Only the sink's connection: the test's own clients have no error listener.
      const own = (await db.query('SELECT pg_backend_pid() AS p')).rows[0]!.p as number;
      await r.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1',
        [own],
      );
      const err = await writer.applyChunk(chunk2).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).retriable).toBe(true);
      await writer.abort();
      expect(await tableExists(r, 'public.kv')).toBe(false);

      const retry = await sink.beginEpoch();
      for (const c of [chunk1, chunk2]) await retry.applyChunk(c);
      await retry.commit(epoch(1, last));
      expect(await textRows(r, 'SELECT * FROM public.kv ORDER BY id::text')).toEqual(expectedKv);
    } finally {
      await sink.close();
    }
  });
});
