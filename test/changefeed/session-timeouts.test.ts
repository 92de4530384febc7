/**
 * Databases whose operators set `statement_timeout` and `idle_in_transaction_session_timeout`
 * (per database or role, against runaway queries and forgotten sessions), on the source and on a
 * PostgreSQL sink. Tidemark's sessions turn both off, as pg_dump and pg_restore do: an initial
 * snapshot's COPY runs long by design, and its transaction waits on the other side. Inherited,
 * the timeouts failed the snapshot on every retry.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

describe('session timeouts set by operators', () => {
  it('a 300k-row snapshot and the changes after it land whole under 250 ms timeouts on both sides', async () => {
    const src = await freshDatabase('to_src');
    const dst = await freshDatabase('to_dst');
    await src.query(`
      CREATE TABLE t (id int PRIMARY KEY, pad text);
      INSERT INTO t SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 300000) g;`);
    for (const db of [src, dst])
      await db.query(`
        ALTER DATABASE "${db.name}" SET statement_timeout = '250ms';
        ALTER DATABASE "${db.name}" SET idle_in_transaction_session_timeout = '250ms';`);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['t'] }), {
      logger: silentLogger,
    });
    try {
      await src.query(`UPDATE t SET pad = 'x' WHERE id % 1000 = 0; DELETE FROM t WHERE id % 777 = 0`);
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test', timeoutMs: 120_000 });
      expect(feed.status().error).toBeNull();
    } finally {
      await feed.stop();
    }
    for (const db of [src, dst])
      await db.query(`
        ALTER DATABASE "${db.name}" RESET statement_timeout;
        ALTER DATABASE "${db.name}" RESET idle_in_transaction_session_timeout;`);
    await expectSameTables(src.url, dst.url, ['t']);
  });
});
