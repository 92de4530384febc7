/**
 * The initial snapshot's key-ordered read and the online copy's chunks agree on "after K" (issue
 * 12, resume of an interrupted initial snapshot): for every batch of `rowsInKeyOrder`, a chunk
 * read after the batch's `lastKey` starts with the first row of the next batch — over a composite
 * key whose text holds tabs, newlines, backslashes, quotes, trailing spaces and non-ASCII
 * characters (COPY escapes them; the last key is decoded back to the type's text).
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { keyAfterPredicate, keyIndexOrder } from '../../src/source/postgres/key-range.ts';
import { createConnector } from '../../src/source/create-connector.ts';
import { readInKeyOrder } from '../../src/source/postgres/snapshot-reader.ts';
import type { Row } from '../../src/core/row.ts';

/** The key-ordered read of `name` in a fresh exported snapshot, checked against the chunk reader. */
async function agree(src: TestDatabase, name: string, rowsExpected: number): Promise<void> {
  const connector = await createConnector(src.url, { heartbeatIntervalMs: 1000 });
  try {
    const { tables } = await connector.describe([name]);
    const t = tables[0]!;
    const exporter = await src.connect();
    await exporter.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const snapshot = (await exporter.query(`SELECT pg_export_snapshot() AS s`)).rows[0]!.s as string;
    const batches: { rows: readonly Row[]; lastKey: Row }[] = [];
    for await (const b of readInKeyOrder({ url: src.url, snapshotName: snapshot, table: t, batchBytes: 300 }))
      batches.push({ rows: b.rows, lastKey: b.lastKey });
    await exporter.query('COMMIT');
    await exporter.end();
    const all = batches.flatMap((b) => b.rows);
    expect(all.length).toBe(rowsExpected);
    for (const b of batches) expect(b.lastKey).toEqual(b.rows.at(-1));
    // Each batch's last key, given to the online copy's chunk reader, resumes at the next row.
    const reader = connector.openChunkReader!(t);
    try {
      let at = 0;
      for (const b of batches) {
        at += b.rows.length;
        const next = await reader.read(b.lastKey, 5);
        expect(next.rows).toEqual(all.slice(at, at + 5));
      }
      expect(batches.length).toBeGreaterThan(1);
      // Batches end where the COPY stream's pieces do: every kind of key checked as a bound too.
      for (let i = 0; i + 1 < all.length; i += 23) {
        expect((await reader.read(all[i]!, 1)).rows).toEqual([all[i + 1]]);
      }
      expect((await reader.read(null, rowsExpected)).rows).toEqual(all);
    } finally {
      await reader.close();
    }
  } finally {
    await connector.close();
  }
}

describe('rowsInKeyOrder', () => {
  it('each batch ends on a key the online copy goes on from exactly', { timeout: 180_000 }, async () => {
    const src = await freshDatabase('kor_src');
    await src.query(`
      CREATE TABLE k (a text, b numeric, v text, PRIMARY KEY (a, b));
      INSERT INTO k
        SELECT (ARRAY[E'x\\ty', E'line\\nbreak', E'back\\\\slash', 'quo''te', 'trail  ', 'ünï€', 'plain'])[1 + g % 7]
                 || (g % 50)::text,
               g / 7.0, repeat('v', g % 30)
          FROM generate_series(1, 3000) g;`);
    await agree(src, 'k', 3000);
  });

  it(
    'walks a key declared in another order than its columns by its index, both reads alike',
    { timeout: 180_000 },
    async () => {
      const src = await freshDatabase('kor2_src');
      await src.query(`
      CREATE TABLE k2 (id int, tenant int, v text, PRIMARY KEY (tenant, id));
      -- ~340 kB: several pieces of the COPY stream, so several batches.
      INSERT INTO k2 SELECT g, g % 13, repeat('w', 150 + g % 20) FROM generate_series(1, 2000) g;
      ANALYZE k2;`);
      await agree(src, 'k2', 2000);
      const connector = await createConnector(src.url, { heartbeatIntervalMs: 1000 });
      const c = await src.connect();
      try {
        const t = (await connector.describe(['k2'])).tables[0]!;
        const order = await keyIndexOrder(c, t);
        expect(order.map((i) => t.columns[i]!.name)).toEqual(['tenant', 'id']);
        const keyCols = order.map((i) => t.columns[i]!);
        await c.query('SET enable_sort = off');
        const plan = await c.query(
          `EXPLAIN SELECT * FROM ONLY k2 WHERE ${keyAfterPredicate(keyCols, 1)} ORDER BY tenant, id LIMIT 100`,
          ['3', '50'],
        );
        const text = plan.rows.map((r) => String((r as Record<string, unknown>)['QUERY PLAN'])).join('\n');
        expect(text, 'the chunk query walks the primary key').toContain('Index Scan using k2_pkey');
        expect(text).not.toContain('Sort');
      } finally {
        await c.end();
        await connector.close();
      }
    },
  );
});
