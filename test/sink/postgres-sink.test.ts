import { describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../src/core/row.ts';
import type { Row } from '../../src/core/row.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import { PostgresSink } from '../../src/sink/postgres/postgres-sink.ts';
import type { SnapshotRows } from '../../src/core/epoch.ts';
import { freshDatabase } from '../support/db.ts';
import { lostReplyProxy } from '../support/lost-reply-proxy.ts';
import {
  changes,
  chunksOf,
  col,
  epoch,
  reader,
  rich,
  richRow,
  table,
  tableExists,
  textRows,
} from './pg-sink-fixtures.ts';

const modes = [
  { mode: 'inline VALUES', inlineMaxRows: 2_000 },
  { mode: 'COPY staging', inlineMaxRows: 0 },
];

describe.each(modes)('PostgresSink epochs via $mode', ({ inlineMaxRows }) => {
  async function setup() {
    const db = await freshDatabase('pgsink');
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1', inlineMaxRows });
    expect(await sink.open()).toBeNull();
    return { db, sink, r: await reader(db) };
  }

  it('round-trips every type exactly, then overwrites, deletes, partially updates and truncates', async () => {
    const { sink, r } = await setup();
    try {
      const rows = [richRow(1, 'tab\there\nnew \\ back 🌊 \'q\' "d"'), richRow(2, ''), richRow(3, null)];
      await sink.commitEpoch(epoch(1, [changes(rich, { upserts: rows })]));
      expect(await textRows(r, 'SELECT * FROM public.rich ORDER BY id')).toEqual(rows);
      expect(await textRows(r, 'SELECT t IS NULL FROM public.rich ORDER BY id')).toEqual([
        ['f'],
        ['f'],
        ['t'],
      ]);

      const over = richRow(2, 'over');
      over[1] = '-0.000001';
      const partial = richRow(1, 'patched').map((c, i) => (i === 4 || i === 5 || i === 6 ? UNCHANGED : c));
      await sink.commitEpoch(
        epoch(2, [
          changes(rich, {
            deletes: [['3', null, null, null, null, null, null, null, null, null, null]],
            upserts: [over],
            partialUpdates: [{ row: partial, fromKey: null }],
          }),
        ]),
      );
      expect(await textRows(r, 'SELECT * FROM public.rich ORDER BY id')).toEqual([
        richRow(1, 'patched'),
        over,
      ]);

      // A key-changing update: 1 → 10, unchanged cells read from row 1 (as the epoch found it),
      // whose removal is the epoch's separate delete (sink.ts).
      const moved = richRow(10, 'moved').map((c, i) => (i === 4 || i === 6 ? UNCHANGED : c));
      moved[5] = '{"new": 1}';
      const oldKey = ['1', ...Array(10).fill(null)];
      await sink.commitEpoch(
        epoch(3, [changes(rich, { deletes: [oldKey], partialUpdates: [{ row: moved, fromKey: oldKey }] })]),
      );
      const expected = richRow(10, 'moved');
      expected[5] = '{"new": 1}';
      expect(await textRows(r, 'SELECT * FROM public.rich ORDER BY id')).toEqual([over, expected]);

      await sink.commitEpoch(epoch(4, [changes(rich, { truncate: true, upserts: [richRow(7, 'after')] })]));
      expect(await textRows(r, 'SELECT id, t FROM public.rich ORDER BY id')).toEqual([['7', 'after']]);
    } finally {
      await sink.close();
    }
  });

  it('keeps NULL a NULL when the database turns array_nulls off (inline epochs are text[] literals)', async () => {
    const { db, sink: first, r } = await setup();
    await first.close();
    await db.query(`ALTER DATABASE "${db.name}" SET array_nulls = off`);
    // A new session reads the database's settings.
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1', inlineMaxRows });
    try {
      await sink.open();
      const rows = [richRow(1, null), richRow(2, 'NULL')];
      await sink.commitEpoch(epoch(1, [changes(rich, { upserts: rows })]));
      expect(await textRows(r, 'SELECT t IS NULL, t FROM public.rich ORDER BY id')).toEqual([
        ['t', null],
        ['f', 'NULL'],
      ]);
    } finally {
      await sink.close();
      await db.query(`ALTER DATABASE "${db.name}" RESET array_nulls`);
    }
  });

  it('matches compound text, uuid and numeric keys by value', async () => {
    const { sink, r } = await setup();
    const t = table('keys', [
      col('k', 'text', { key: true }),
      col('u', 'uuid', { key: true }),
      col('n', 'numeric', { key: true }),
      col('v', 'text'),
    ]);
    const u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
    try {
      await sink.commitEpoch(
        epoch(1, [
          changes(t, {
            upserts: [
              ['ä 🔑', u, '1.50', 'one'],
              ['ä 🔑', u, '2', 'two'],
              ['', u, '1.5', 'empty key'],
            ],
          }),
        ]),
      );
      await sink.commitEpoch(
        epoch(2, [
          changes(t, {
            deletes: [['ä 🔑', u.toUpperCase(), '2.000', null]],
            upserts: [['ä 🔑', u, '1.5', 'overwritten']],
          }),
        ]),
      );
      expect(await textRows(r, 'SELECT * FROM public.keys ORDER BY k, n')).toEqual([
        ['', u, '1.5', 'empty key'],
        ['ä 🔑', u, '1.50', 'overwritten'],
      ]);
    } finally {
      await sink.close();
    }
  });

  it('matches a key that may be NULL (a view grouped by a nullable column): NULL equals NULL', async () => {
    const { sink, r } = await setup();
    const t = table('by_region', [
      col('region', 'text', { key: true, nullable: true }),
      col('kind', 'text', { key: true, nullable: true }),
      col('n', 'bigint'),
    ]);
    try {
      await sink.commitEpoch(
        epoch(1, [
          changes(t, {
            upserts: [
              [null, 'a', '1'],
              [null, null, '2'],
              ['n', null, '3'],
              ['n', 'a', '4'],
            ],
          }),
        ]),
      );
      await sink.commitEpoch(
        epoch(2, [
          changes(t, {
            upserts: [
              [null, 'a', '10'],
              ['n', null, '30'],
            ],
            deletes: [
              [null, null, null],
              ['n', 'a', null],
            ],
          }),
        ]),
      );
      expect(
        await textRows(r, 'SELECT * FROM public.by_region ORDER BY region NULLS FIRST, kind NULLS FIRST'),
      ).toEqual([
        [null, 'a', '10'],
        ['n', null, '30'],
      ]);
      expect(
        await textRows(
          r,
          `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.by_region'::regclass`,
        ),
      ).toEqual([['UNIQUE NULLS NOT DISTINCT (region, kind)']]);
    } finally {
      await sink.close();
    }
  });

  it('applies a chain and a cycle of key moves with unchanged cells against the rows before them', async () => {
    const { sink, r } = await setup();
    const t = table('moves', [col('id', 'integer', { key: true }), col('a', 'text'), col('b', 'text')]);
    const key = (id: string) => [id, null, null];
    try {
      await sink.commitEpoch(
        epoch(1, [
          changes(t, {
            upserts: [
              ['1', 'a1', 'b1'],
              ['2', 'a2', 'b2'],
              ['5', 'a5', 'b5'],
              ['6', 'a6', 'b6'],
            ],
          }),
        ]),
      );
      // id=3 WHERE id=2; id=2 WHERE id=1 (each leaving another column unchanged), and a swap of
      // 5 and 6: two masks, so two groups of moves, which must still read the same old rows.
      await sink.commitEpoch(
        epoch(2, [
          changes(t, {
            partialUpdates: [
              { row: ['2', UNCHANGED, 'b1*'], fromKey: key('1') },
              { row: ['3', 'a2*', UNCHANGED], fromKey: key('2') },
              { row: ['5', 'a6*', UNCHANGED], fromKey: key('6') },
              { row: ['6', 'a5*', UNCHANGED], fromKey: key('5') },
            ],
            deletes: [key('1')],
          }),
        ]),
      );
      expect(await textRows(r, 'SELECT * FROM public.moves ORDER BY id')).toEqual([
        ['2', 'a1', 'b1*'],
        ['3', 'a2*', 'b2'],
        ['5', 'a6*', 'b6'],
        ['6', 'a5*', 'b5'],
      ]);
    } finally {
      await sink.close();
    }
  });

  it('applies keyless row deltas as multisets, telling NULL from the empty string', async () => {
    const { sink, r } = await setup();
    const t = table('bag', [col('a', 'text'), col('j', 'json')]);
    const count = 'SELECT a, j::text, count(*)::text FROM public.bag GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2';
    try {
      await sink.commitEpoch(
        epoch(1, [
          changes(t, {
            rowDeltas: [
              { row: ['x', '{"k": 1}'], count: 3 },
              { row: ['y', null], count: 1 },
              { row: ['', null], count: 2 },
              { row: [null, null], count: 1 },
            ],
          }),
        ]),
      );
      await sink.commitEpoch(
        epoch(2, [
          changes(t, {
            rowDeltas: [
              { row: ['x', '{"k": 1}'], count: -2 },
              { row: ['', null], count: -1 },
              { row: ['y', null], count: 1 },
            ],
          }),
        ]),
      );
      expect(await textRows(r, count)).toEqual([
        [null, null, '1'],
        ['', null, '1'],
        ['x', '{"k": 1}', '1'],
        ['y', null, '2'],
      ]);
    } finally {
      await sink.close();
    }
  });

  it('an epoch failing midway leaves no data and no checkpoint advance; the retry succeeds', async () => {
    const { sink, r } = await setup();
    const a = table('a', [col('id', 'integer', { key: true }), col('v', 'text')]);
    const b = table('b', [col('id', 'integer', { key: true }), col('n', 'integer')]);
    try {
      await sink.commitEpoch(epoch(1, [changes(a, { upserts: [['1', 'one']] })]));
      const bad = epoch(2, [
        changes(a, { upserts: [['2', 'two']] }),
        changes(b, { upserts: [['1', 'not-a-number']] }),
      ]);
      const err = await sink.commitEpoch(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).code).toBe('SINK_WRITE_FAILED');
      expect((err as TidemarkError).message).toContain('not-a-number');
      expect(await textRows(r, 'SELECT id FROM public.a ORDER BY id')).toEqual([['1']]);
      expect(await tableExists(r, 'public.b')).toBe(false);
      expect(await textRows(r, 'SELECT epoch FROM tidemark.checkpoints')).toEqual([['1']]);

      const good = epoch(2, [
        changes(a, { upserts: [['2', 'two']] }),
        changes(b, { upserts: [['1', '42']] }),
      ]);
      await sink.commitEpoch(good);
      expect(await textRows(r, 'SELECT id FROM public.a ORDER BY id')).toEqual([['1'], ['2']]);
      expect(await textRows(r, 'SELECT * FROM public.b')).toEqual([['1', '42']]);
    } finally {
      await sink.close();
    }
  });

  it('adds columns a later schema of the table carries', async () => {
    const { sink, r } = await setup();
    const v1 = table('grow', [col('id', 'integer', { key: true }), col('v', 'text')]);
    const v2 = table('grow', [...v1.columns, col('w', 'numeric(5,2)')]);
    try {
      await sink.commitEpoch(epoch(1, [changes(v1, { upserts: [['1', 'a']] })]));
      await sink.commitEpoch(epoch(2, [changes(v2, { upserts: [['2', 'b', '1.50']] })]));
      expect(await textRows(r, 'SELECT * FROM public.grow ORDER BY id')).toEqual([
        ['1', 'a', null],
        ['2', 'b', '1.50'],
      ]);
    } finally {
      await sink.close();
    }
  });
});

describe('PostgresSink snapshot, checkpoint and errors', () => {
  const t = table('snap', [col('id', 'bigint', { key: true }), col('v', 'text')]);
  const u = table('snap2', [col('id', 'bigint', { key: true })], { schema: 'other' });
  const rowsFrom = (from: number, n: number): Row[] =>
    Array.from({ length: n }, (_, i) => [String(from + i), `v${from + i}`]);

  it('makes the snapshot visible all at once, with checkpoint epoch 0', async () => {
    const db = await freshDatabase('pgsink');
    const r = await reader(db);
    await db.query('CREATE TABLE public.snap (id bigint PRIMARY KEY, v text)');
    await db.query("INSERT INTO public.snap VALUES (-1, 'stale')");
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
    let readDuring: Promise<Row[]> | null = null;
    const seenDuring: boolean[] = [];
    async function* chunks(): AsyncIterable<SnapshotRows> {
      yield { table: t, rows: rowsFrom(0, 1000) };
      seenDuring.push(await tableExists(r, 'other.snap2'));
      // Does not wait for the snapshot: reads the table as it was before it, never a part of it.
      readDuring = textRows(r, 'SELECT count(*) FROM public.snap');
      yield { table: t, rows: rowsFrom(1000, 1000) };
      yield { table: u, rows: [['1'], ['2']] };
    }
    try {
      expect(await sink.open()).toBeNull();
      await sink.writeSnapshot([t, u], chunks(), { position: '16/B374D848', epoch: 0 });
      expect(seenDuring).toEqual([false]);
      expect(await readDuring).toEqual([['1']]);
      expect(await textRows(r, 'SELECT count(*) FROM public.snap')).toEqual([['2000']]);
      expect(await textRows(r, 'SELECT count(*) FROM other.snap2')).toEqual([['2']]);
      expect(await textRows(r, 'SELECT position, epoch FROM tidemark.checkpoints')).toEqual([
        ['16/B374D848', '0'],
      ]);
    } finally {
      await sink.close();
    }
  });

  it('a TRUNCATE in an epoch, and a replacing snapshot, are MVCC-safe for a REPEATABLE READ reader', async () => {
    const db = await freshDatabase('pgsink');
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
    // Readers that took their snapshot before each commit, without touching the table yet (so
    // they hold no lock that would make the commit wait).
    const before = async () => {
      const c = await reader(db);
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      const [[epochSeen]] = (await textRows(c, 'SELECT epoch FROM tidemark.checkpoints')) as [[string]];
      return { c, epochSeen };
    };
    try {
      await sink.open();
      await sink.writeSnapshot([t], chunksOf({ table: t, rows: rowsFrom(0, 3) }), {
        position: '0/10',
        epoch: 0,
      });
      const r1 = await before();
      await sink.commitEpoch({
        ...epoch(1, [changes(t, { truncate: true, upserts: [['10', 'after']] })]),
        checkpoint: { position: '0/20', epoch: 1 },
      });
      // The reader's snapshot is from epoch 0: it sees epoch 0's rows, not an empty table.
      expect(r1.epochSeen).toBe('0');
      expect(await textRows(r1.c, 'SELECT id FROM public.snap ORDER BY id')).toEqual([['0'], ['1'], ['2']]);
      await r1.c.query('COMMIT');

      const r2 = await before();
      const replacing = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
      try {
        expect(await replacing.open()).toEqual({ position: '0/20', epoch: 1 });
        await replacing.writeSnapshot([t], chunksOf({ table: t, rows: rowsFrom(20, 2) }), {
          position: '0/30',
          epoch: 2,
        });
      } finally {
        await replacing.close();
      }
      expect(r2.epochSeen).toBe('1');
      expect(await textRows(r2.c, 'SELECT id FROM public.snap ORDER BY id')).toEqual([['10']]);
      await r2.c.query('COMMIT');
      expect(await textRows(r2.c, 'SELECT id FROM public.snap ORDER BY id')).toEqual([['20'], ['21']]);
    } finally {
      await sink.close();
    }
  });

  it('a snapshot whose input throws midway leaves no table and no checkpoint', async () => {
    const db = await freshDatabase('pgsink');
    const r = await reader(db);
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
    async function* failing(): AsyncIterable<SnapshotRows> {
      yield { table: t, rows: rowsFrom(0, 5000) };
      throw new Error('source went away');
    }
    try {
      await sink.open();
      await expect(sink.writeSnapshot([t], failing(), { position: '0/1', epoch: 0 })).rejects.toThrow(
        'source went away',
      );
      expect(await tableExists(r, 'public.snap')).toBe(false);
      expect(await textRows(r, 'SELECT count(*) FROM tidemark.checkpoints')).toEqual([['0']]);
      // The sink stays usable.
      await sink.writeSnapshot([t], chunksOf({ table: t, rows: rowsFrom(0, 3) }), {
        position: '0/2',
        epoch: 0,
      });
      expect(await textRows(r, 'SELECT count(*) FROM public.snap')).toEqual([['3']]);
    } finally {
      await sink.close();
    }
  });

  it('records the checkpoint row and returns it from open() later', async () => {
    const db = await freshDatabase('pgsink');
    const r = await reader(db);
    const first = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
    await first.open();
    await first.writeSnapshot([t], chunksOf({ table: t, rows: rowsFrom(0, 2) }), {
      position: '16/B374D848',
      epoch: 0,
    });
    await first.commitEpoch({
      ...epoch(1, [changes(t, { upserts: [['5', 'x']] })]),
      checkpoint: { position: '16/B374D900', epoch: 1 },
    });
    await first.close();
    await first.close();
    const rows = await textRows(
      r,
      `SELECT changefeed, position, epoch, (position::pg_lsn - '16/B374D848'::pg_lsn)::text,
              committed_at <= now() AND committed_at > now() - interval '1 hour' FROM tidemark.checkpoints`,
    );
    expect(rows).toEqual([['feed-1', '16/B374D900', '1', '184', 't']]);
    const again = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
    const other = new PostgresSink({ uri: db.url, changefeedId: 'feed-2' });
    try {
      expect(await again.open()).toEqual({ position: '16/B374D900', epoch: 1 });
      expect(await other.open()).toBeNull();
    } finally {
      await again.close();
      await other.close();
    }
  });

  it('after a lost COMMIT reply, does not apply the epoch again that already committed', async () => {
    const db = await freshDatabase('pgsink');
    const r = await reader(db);
    const proxy = await lostReplyProxy(db.url);
    const bag = table('bag', [col('a', 'text')]);
    const sink = new PostgresSink({ uri: proxy.url, changefeedId: 'feed-1' });
    const once = epoch(1, [changes(bag, { rowDeltas: [{ row: ['x'], count: 1 }] })]);
    try {
      await sink.open();
      // The epoch commits on the server, but its reply never arrives.
      proxy.arm('COMMIT');
      const lost = await sink.commitEpoch(once).catch((e: unknown) => e);
      expect(lost).toMatchObject({ code: 'SINK_WRITE_FAILED', retriable: true });
      expect(await textRows(r, 'SELECT count(*) FROM public.bag')).toEqual([['1']]);
      // As the runtime would: the same epoch again. It is recognised as this writer's own commit.
      await sink.commitEpoch(once);
      expect(await textRows(r, 'SELECT count(*) FROM public.bag')).toEqual([['1']]);
      await sink.commitEpoch(epoch(2, [changes(bag, { rowDeltas: [{ row: ['x'], count: 1 }] })]));
      expect(await textRows(r, 'SELECT count(*) FROM public.bag')).toEqual([['2']]);
    } finally {
      await sink.close();
      await proxy.close();
    }
  });

  it('refuses a sink table with other columns, naming the table and the columns', async () => {
    const db = await freshDatabase('pgsink');
    await db.query('CREATE TABLE public.snap (id integer PRIMARY KEY, v text, extra int)');
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
    try {
      await sink.open();
      const err = await sink
        .writeSnapshot([t], chunksOf(), { position: '0/1', epoch: 0 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TidemarkError);
      expect((err as TidemarkError).code).toBe('SINK_SCHEMA_MISMATCH');
      expect((err as TidemarkError).message).toMatch(
        /public\.snap: id is integer, source has bigint; extra \(integer\)/,
      );
    } finally {
      await sink.close();
    }
  });

  it('reports a wrong password as AUTH_FAILED without showing it', async () => {
    const db = await freshDatabase('pgsink');
    const url = new URL(db.url);
    url.password = 'wrong-pw-4711';
    const sink = new PostgresSink({ uri: url.toString(), changefeedId: 'feed-1' });
    const err = await sink.open().catch((e: unknown) => e);
    await sink.close();
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('AUTH_FAILED');
    expect(JSON.stringify((err as TidemarkError).toJSON())).not.toContain('wrong-pw-4711');
    expect((err as TidemarkError).message).toContain('***');
  });

  it('prints the throughput of one 100k-row upsert epoch', async () => {
    const db = await freshDatabase('pgsink');
    const w = table('wide', [
      col('id', 'integer', { key: true }),
      col('v', 'text'),
      col('n', 'numeric(12,2)'),
    ]);
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'bench' });
    const rows: Row[] = Array.from({ length: 100_000 }, (_, i) => [String(i), `value ${i} ✓`, `${i}.25`]);
    try {
      await sink.open();
      await sink.commitEpoch(epoch(1, [changes(w, { upserts: [['0', 'warm', '0']] })]));
      for (const [n, label] of [
        [2, 'insert'],
        [3, 'overwrite'],
      ] as const) {
        const started = performance.now();
        await sink.commitEpoch(epoch(n, [changes(w, { upserts: rows })]));
        const ms = performance.now() - started;
        console.log(
          `postgres sink: 100k-row upsert epoch (${label}) ${ms.toFixed(0)} ms, ${Math.round(1e5 / (ms / 1000))} rows/s`,
        );
      }
      expect(await textRows(await reader(db), 'SELECT count(*), sum(n) FROM public.wide')).toEqual([
        ['100000', '4999975000.00'],
      ]);
    } finally {
      await sink.close();
    }
  });
});
