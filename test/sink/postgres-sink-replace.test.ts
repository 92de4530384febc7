/**
 * `EpochWriter.replaceTable` on PostgreSQL (an online copy swapped in): a reader inside a snapshot
 * older than the swap keeps seeing the old rows — never the shadow under the table's name.
 */
import { describe, expect, it } from 'vitest';
import { PostgresSink } from '../../src/sink/postgres/postgres-sink.ts';
import { freshDatabase } from '../support/db.ts';
import { changes, col, epoch, reader, table, textRows } from './pg-sink-fixtures.ts';

const t = table('wallet', [col('id', 'integer', { key: true }), col('v', 'text')]);
const shadow = { ...t, name: '_tidemark_copy_1000', relationId: -1000 };
const wider = table('wallet', [
  col('id', 'integer', { key: true }),
  col('v', 'text'),
  col('r', 'double precision'),
]);
const widerShadow = { ...wider, name: '_tidemark_copy_1000', relationId: -1000 };

const rows = (n: number, v: string) => Array.from({ length: n }, (_, i) => [String(i + 1), v]);

describe('PostgresSink replaceTable', () => {
  async function setup() {
    const db = await freshDatabase('pgreplace');
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'feed-1' });
    expect(await sink.open()).toBeNull();
    return { db, sink, r: await reader(db) };
  }

  it.each([
    { what: 'same shape', after: t, afterShadow: shadow, cells: (n: number) => rows(n, 'new') },
    {
      what: 'a column added (a re-copy after a volatile rewrite)',
      after: wider,
      afterShadow: widerShadow,
      cells: (n: number) => rows(n, 'new').map((r) => [...r, '0.5']),
    },
  ])(
    '$what: an older snapshot sees the old rows, a new one all of the copy; grants and indexes are kept',
    async ({ after, afterShadow, cells }) => {
      const { db, sink, r } = await setup();
      try {
        await sink.commitEpoch(epoch(1, [changes(t, { upserts: rows(10, 'old') })]));
        await db.query(`CREATE INDEX wallet_v ON wallet (v); CREATE ROLE pgreplace_reader_${process.pid}`);
        await db.query(`GRANT SELECT ON wallet TO pgreplace_reader_${process.pid}`);
        // The shadow fills over two earlier epochs (as an online copy's chunks do).
        await sink.commitEpoch(epoch(2, [changes(afterShadow, { upserts: cells(30).slice(0, 20) })]));
        await sink.commitEpoch(epoch(3, [changes(afterShadow, { upserts: cells(30).slice(20) })]));

        // A reader whose snapshot is taken before the swap, and who reads the table only after it.
        await r.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await r.query('SELECT 1 FROM tidemark.checkpoints');
        const w = await sink.beginEpoch();
        await w.replaceTable(after, afterShadow);
        await w.commit(epoch(4, []));
        expect(await textRows(r, 'SELECT count(*), min(v), max(v) FROM wallet')).toEqual([
          ['10', 'old', 'old'],
        ]);
        await r.query('COMMIT');

        expect(await textRows(r, 'SELECT count(*), min(v), max(v) FROM wallet')).toEqual([
          ['30', 'new', 'new'],
        ]);
        const kept = await textRows(
          r,
          `SELECT (SELECT count(*) FROM pg_indexes WHERE indexname = 'wallet_v'),
                  has_table_privilege('pgreplace_reader_${process.pid}', 'public.wallet', 'SELECT'),
                  to_regclass('public._tidemark_copy_1000') IS NULL`,
        );
        expect(kept).toEqual([['1', 't', 't']]);
        // The sink goes on writing the table in its new shape.
        await sink.commitEpoch(epoch(5, [changes(after, { upserts: [cells(31).at(-1)!] })]));
        expect(await textRows(r, 'SELECT count(*) FROM wallet')).toEqual([['31']]);
      } finally {
        await db
          .query(`DROP OWNED BY pgreplace_reader_${process.pid}; DROP ROLE pgreplace_reader_${process.pid}`)
          .catch(() => {});
        await r.end();
        await sink.close();
      }
    },
  );

  it('creates a table that is missing downstream, with the rows of the copy', async () => {
    const { sink, r } = await setup();
    try {
      await sink.commitEpoch(epoch(1, [changes(shadow, { upserts: rows(5, 'x') })]));
      const w = await sink.beginEpoch();
      await w.replaceTable(t, shadow);
      await w.commit(epoch(2, []));
      expect(await textRows(r, 'SELECT count(*) FROM wallet')).toEqual([['5']]);
    } finally {
      await r.end();
      await sink.close();
    }
  });
});
