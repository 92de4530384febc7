/**
 * A downstream reader holds a lock on a target table (a report's long query, a session left idle
 * in its transaction) when a schema change reaches the sink. The sink's ALTER TABLE needs an
 * ACCESS EXCLUSIVE lock; PostgreSQL queues every later lock request on the table behind it, so
 * an ALTER that waits without bound stops every reader of the table until the first one ends.
 * The sink bounds each wait (as gh-ost and pg-osc do for their cut-over) and tries again from a
 * savepoint; past its tries the epoch fails (SINK_LOCK_TIMEOUT, naming the holder) and is retried.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import type { TidemarkError } from '../../src/errors/tidemark-error.ts';

describe('a downstream reader holding a lock on a target table', () => {
  it('does not make later readers queue behind the sink’s ALTER; the change lands once it ends', async () => {
    const src = await freshDatabase('lq_src');
    const dst = await freshDatabase('lq_dst');
    await src.query(`
      CREATE TABLE t (id int PRIMARY KEY, v text);
      INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;`);
    const errors: TidemarkError[] = [];
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['t'] }), {
      logger: silentLogger,
      onError: (e) => errors.push(e),
    });
    const holder = new pg.Client({ connectionString: dst.url });
    const reader = new pg.Client({ connectionString: dst.url });
    await holder.connect();
    await reader.connect();
    try {
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test', timeoutMs: 60_000 });
      await holder.query('BEGIN; SELECT count(*) FROM t');
      await src.query(`ALTER TABLE t ADD COLUMN w int; INSERT INTO t VALUES (101, 'v101', 7)`);
      // The sink's ALTER is waiting for the holder's lock (or between two of its bounded tries).
      await until(async () => {
        const { rows } = await reader.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%ALTER TABLE%'`,
        );
        return (rows[0]?.n ?? 0) > 0;
      });
      // Unbounded, the ALTER keeps its place at the head of the queue as long as the holder
      // holds: this reader would wait there until its own lock_timeout.
      await reader.query(`SET lock_timeout = '20s'`);
      const { rows } = await reader.query<{ n: number }>('SELECT count(*)::int AS n FROM t');
      expect(rows[0]?.n).toBe(100);
      await holder.query('COMMIT');
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test', timeoutMs: 60_000 });
      // The tries were rolled back to a savepoint: the epoch was never thrown away.
      expect(errors).toEqual([]);

      // A holder that stays past every try: the epoch fails, naming it, and is retried whole.
      await holder.query('BEGIN; SELECT count(*) FROM t');
      const holderPid = (await holder.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]?.p;
      await src.query(`ALTER TABLE t ADD COLUMN x int; INSERT INTO t VALUES (102, 'v102', 8, 9)`);
      await until(() => Promise.resolve(errors.length > 0));
      expect(errors[0]?.code).toBe('SINK_LOCK_TIMEOUT');
      expect(errors[0]?.retriable).toBe(true);
      expect(errors[0]?.message).toContain(`pid ${holderPid} (idle in transaction`);
      await holder.query('COMMIT');
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test', timeoutMs: 120_000 });
      expect(feed.status().error).toBeNull();
    } finally {
      await holder.end().catch(() => {});
      await reader.end().catch(() => {});
      await feed.stop();
    }
    await expectSameTables(src.url, dst.url, ['t']);
  });
});

async function until(check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
