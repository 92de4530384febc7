/**
 * Type parity: every built-in type family (test/support/all-types.ts) is read by the snapshot
 * (COPY) and by the stream (pgoutput) as the same text, decodes to the same typed value, and
 * arrives downstream equal to the source.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { ALL_TYPES, ALL_TYPES_ROW_COUNT, allTypesInsertSql, allTypesSetupSql } from '../support/all-types.ts';
import { PostgresConnector } from '../../src/source/postgres/pg-connector.ts';
import { decodeCell, encodeText, typeHintFor } from '../../src/decode/pg-values.ts';
import type { Row } from '../../src/core/row.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

describe('type parity', () => {
  it('a row read by the snapshot and the same row streamed later are the same text and the same value', async () => {
    const db = await freshDatabase('types');
    for (const sql of allTypesSetupSql()) await db.query(sql);
    for (const sql of allTypesInsertSql()) await db.query(sql);
    const connector = new PostgresConnector({ url: db.url, heartbeatIntervalMs: 100 });
    let session: Awaited<ReturnType<PostgresConnector['replicate']>> | null = null;
    try {
      const { tables } = await connector.describe(['all_types']);
      await connector.capture(tables);
      // The shared slot first (it holds what follows the snapshot), then the snapshot.
      await (
        await connector.replicate({ after: null, knownTables: [], acceptStartAfter: () => true })
      ).close();
      const snap = await connector.snapshot(tables, { parallelism: 2, chunkRows: 2 });
      const snapRows = new Map<string, Row>();
      for await (const chunk of snap.rows) for (const r of chunk.rows) snapRows.set(r[0]!, r);
      await snap.release();
      expect(snapRows.size).toBe(ALL_TYPES_ROW_COUNT);
      // The same values again under new ids, now through the stream.
      await db.query(
        `INSERT INTO all_types SELECT id + 1000, ${ALL_TYPES.map((c) => c.column).join(', ')} FROM all_types`,
      );
      const streamed = new Map<string, Row>();
      session = await connector.replicate({
        after: snap.position,
        knownTables: tables,
        acceptStartAfter: () => false,
      });
      stream: for await (const batch of session.events) {
        for (const m of batch) {
          if (m.tag === 'insert') streamed.set(String(Number(m.row[0]) - 1000), m.row);
          if (streamed.size === ALL_TYPES_ROW_COUNT) break stream;
        }
      }
      const table = tables[0]!;
      for (const [id, a] of snapRows) {
        const b = streamed.get(id)!;
        expect(b.slice(1), `row ${id}: text`).toEqual(a.slice(1));
        table.columns.forEach((col, i) => {
          if (i === 0) return;
          const hint = typeHintFor(col, table.enums);
          const va = decodeCell(a[i]!, col.typeOid, hint);
          const vb = decodeCell(b[i]!, col.typeOid, hint);
          expect(vb, `row ${id} ${col.name}`).toEqual(va);
          expect(encodeText(va, col.typeOid), `row ${id} ${col.name} re-encodes`).toBe(a[i]);
        });
      }
    } finally {
      await session?.close();
      await connector.dropSourceObjects().catch(() => {});
      await connector.close();
    }
  });

  it('every type replicates exactly, snapshot and stream', async () => {
    const src = await freshDatabase('types_src');
    const dst = await freshDatabase('types_dst');
    for (const sql of allTypesSetupSql()) await src.query(sql);
    for (const sql of allTypesInsertSql()) await src.query(sql);
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['all_types'] });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    await src.query(
      `INSERT INTO all_types SELECT id + 1000, ${ALL_TYPES.map((c) => c.column).join(', ')} FROM all_types`,
    );
    await src.query(`UPDATE all_types SET id = id + 5000 WHERE id < 1000`);
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    await feed.stop();
    await expectSameTables(src.url, dst.url, ['all_types']);
    // Column types downstream are the source's.
    const typesOf = (db: typeof src) =>
      db.query(
        `SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'all_types'::regclass AND attnum > 0 ORDER BY attnum`,
      );
    expect((await typesOf(dst)).rows).toEqual((await typesOf(src)).rows);
  });

  it('an update that leaves a TOASTed column unchanged never writes a placeholder or NULL', async () => {
    const src = await freshDatabase('toast_src');
    const dst = await freshDatabase('toast_dst');
    await src.query(`CREATE TABLE docs (id int primary key, title text, body text);
      ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
      INSERT INTO docs SELECT g, 't' || g, repeat(md5(g::text), 400) FROM generate_series(1, 20) g`);
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['docs'] });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    const before = await dst.query('SELECT count(*)::int AS n FROM docs WHERE length(body) = 12800');
    expect(before.rows[0]?.n).toBe(20);
    // Title-only updates (body not in the WAL), one of them moving the key too.
    await src.query(`UPDATE docs SET title = title || '!' WHERE id <= 10`);
    await src.query(`UPDATE docs SET id = id + 100, title = 'moved' WHERE id = 3`);
    await src.query(
      `BEGIN; UPDATE docs SET title = 'a' WHERE id = 5; UPDATE docs SET title = 'b' WHERE id = 5; COMMIT`,
    );
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    await feed.stop();
    await expectSameTables(src.url, dst.url, ['docs']);
  });
});
