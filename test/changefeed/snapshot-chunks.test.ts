/**
 * The initial snapshot's data path: tables cut into heap-page ranges read in parallel inside one
 * exported snapshot, and COPY text passed to a PostgreSQL sink undecoded. Every row visible to the
 * snapshot arrives once, whatever writers do to the pages meanwhile; every type, odd name, NULL and
 * TOASTed value lands exactly.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { allTypesInsertSql, allTypesSetupSql } from '../support/all-types.ts';
import { PostgresConnector } from '../../src/source/postgres/pg-connector.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

describe('snapshot chunks', () => {
  it('page-range chunks hold every visible row once while writers move, delete and add rows', async () => {
    const db = await freshDatabase('chunks');
    await db.query(`
      CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, pad text);
      INSERT INTO t SELECT g, g, repeat('p', g % 200) FROM generate_series(1, 20000) g;
      CREATE TABLE nokey (a int, b text);
      ALTER TABLE nokey REPLICA IDENTITY FULL;
      INSERT INTO nokey SELECT g % 50, 'dup' FROM generate_series(1, 6000) g;
      CREATE TABLE part (id int, region int, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
      CREATE TABLE part_a PARTITION OF part FOR VALUES IN (1);
      CREATE TABLE part_b PARTITION OF part FOR VALUES IN (2);
      INSERT INTO part SELECT g, 1 + g % 2, md5(g::text) FROM generate_series(1, 3000) g;
      DELETE FROM t WHERE id % 7 = 0;
      UPDATE t SET v = -v WHERE id % 5 = 0;
      ANALYZE t; ANALYZE nokey; ANALYZE part;
      -- After the statistics: the table has pages past the ones the planner's estimate counts.
      INSERT INTO t SELECT g, g, 'late' FROM generate_series(20001, 26000) g;`);
    // Rows as JSON arrays of their cells' text (NULL as null), the form the chunks carry.
    const rowsOf = async (table: string, cols: string) =>
      (await db.query<{ r: string }>(`SELECT json_build_array(${cols})::text AS r FROM ${table}`)).rows
        .map((x) => JSON.stringify(JSON.parse(x.r)))
        .sort();
    const before = await rowsOf('t', 'id::text, v::text, pad');
    const beforePart = await rowsOf('part', 'id::text, region::text, v');
    const beforeNokey = await rowsOf('nokey', 'a::text, b');
    const connector = new PostgresConnector({ url: db.url, heartbeatIntervalMs: 60_000 });
    const writer = await db.connect();
    try {
      const { tables } = await connector.describe(['t', 'nokey', 'part']);
      const snap = await connector.snapshot(tables, { parallelism: 3, chunkRows: 700 });
      // After the export: every row gets a new version (appended past the pages counted when the
      // chunks are planned), some rows go, some arrive. None of it is in the snapshot.
      await writer.query(`UPDATE t SET v = v + 1000000, pad = pad || 'x'`);
      await writer.query(
        `DELETE FROM t WHERE id % 3 = 0; INSERT INTO t SELECT g, g, '' FROM generate_series(30001, 31000) g`,
      );
      await writer.query(`UPDATE nokey SET b = 'moved' WHERE a < 10`);
      // Rows move between partitions (a delete in one, an insert in the other).
      await writer.query(`UPDATE part SET region = 3 - region WHERE id % 3 = 0`);
      await writer.query(`INSERT INTO part SELECT g, 1, 'new' FROM generate_series(5001, 5500) g`);
      await writer.query('VACUUM t');
      const got = new Map<string, string[]>();
      let batches = 0;
      for await (const chunk of snap.rows) {
        batches++;
        expect(chunk.copyText?.rows).toBe(chunk.rows.length);
        const list = got.get(chunk.table.name) ?? [];
        for (const r of chunk.rows) list.push(JSON.stringify(r));
        got.set(chunk.table.name, list);
      }
      await snap.release();
      expect(batches).toBeGreaterThan(1);
      expect((got.get('t') ?? []).sort()).toEqual(before);
      expect((got.get('nokey') ?? []).sort()).toEqual(beforeNokey);
      expect((got.get('part') ?? []).sort()).toEqual(beforePart);
    } finally {
      await writer.end();
      await connector.close();
    }
  });

  it('every type, odd names, NULLs and TOASTed values reach a PostgreSQL sink exactly through several chunks', async () => {
    const src = await freshDatabase('chunks_src');
    const dst = await freshDatabase('chunks_dst');
    for (const sql of allTypesSetupSql()) await src.query(sql);
    for (const sql of allTypesInsertSql()) await src.query(sql);
    await src.query(`
      CREATE SCHEMA "we.ird";
      CREATE TABLE "we.ird"."Odd.Name ü" ("order" int PRIMARY KEY, "Value" text, big text);
      INSERT INTO "we.ird"."Odd.Name ü" SELECT g, CASE WHEN g % 4 = 0 THEN NULL
          WHEN g % 4 = 1 THEN E'tab\\there\\nnew\\\\line\\r\\b\\f\\v ü 😀' ELSE '' END,
        CASE WHEN g % 50 = 0 THEN (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 400) i) END
        FROM generate_series(1, 5000) g;
      ANALYZE;`);
    const tables = ['all_types', '"we.ird"."Odd.Name ü"'];
    const feed = startChangefeed(
      testConfig({ source: src.url, sink: dst.url, tables, snapshot: { parallelism: 3, chunkRows: 300 } }),
      { logger: silentLogger },
    );
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test' });
    expect(feed.status().error).toBeNull();
    await feed.stop();
    await expectSameTables(src.url, dst.url, tables);
  });
});
