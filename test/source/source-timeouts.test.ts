/**
 * A source whose database (or role) sets `statement_timeout` and
 * `idle_in_transaction_session_timeout`, as operators do to protect a primary. Tidemark's own
 * sessions must not inherit them: a long COPY of a big table would be cancelled, and a snapshot's
 * transaction left idle while a slow sink catches up would be terminated, failing the initial
 * snapshot over and over (its reads are neither long-running queries nor forgotten sessions).
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { PostgresConnector } from '../../src/source/postgres/pg-connector.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('source session timeouts', () => {
  it('a snapshot read slowly under 1 ms statement and 200 ms idle timeouts holds every row; sessions keep alive', async () => {
    const db = await freshDatabase('timeouts');
    await db.query(`
      CREATE TABLE t (id int PRIMARY KEY, pad text);
      INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 60000) g;
      ALTER DATABASE "${db.name}" SET statement_timeout = '1ms';
      ALTER DATABASE "${db.name}" SET idle_in_transaction_session_timeout = '200ms';
      ALTER DATABASE "${db.name}" SET idle_session_timeout = '200ms';`);
    const connector = new PostgresConnector({ url: db.url, heartbeatIntervalMs: 60_000 });
    try {
      const { tables } = await connector.describe(['t']);
      const snap = await connector.snapshot(tables, { parallelism: 2, chunkRows: 20000 });
      let rows = 0;
      let chunks = 0;
      for await (const chunk of snap.rows) {
        rows += chunk.rows.length;
        // A slow sink: every reading session sits idle in its transaction past the timeout.
        if (chunks++ < 3) await sleep(400);
      }
      await snap.release();
      expect(rows).toBe(60000);
      // The catalog session, idle meanwhile, still answers (idle_session_timeout lifted).
      await sleep(400);
      expect((await connector.describe(['t'])).tables).toHaveLength(1);
      // The online copy's chunk reader, the other reading path.
      const reader = connector.openChunkReader!(tables[0]!);
      try {
        const first = await reader.read(null, 50000);
        await sleep(400);
        const rest = await reader.read(first.rows.at(-1)!, 50000);
        expect(first.rows.length + rest.rows.length).toBe(60000);
      } finally {
        await reader.close();
      }
    } finally {
      await connector.close();
    }
  });
});
