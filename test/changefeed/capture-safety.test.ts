/**
 * The schema-change capture against the source's own work (a review of the hub, against
 * shared/HOSTILE-WORLD.md): the event trigger never fails a user's command, never leaves a
 * published table that breaks the source's UPDATEs, and every way a replicated table changes
 * or disappears reaches the changefeed — or stops it with a clear error, never silence.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { caughtUp, firstStatusError as errorOf, startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { createConnector } from '../../src/source/create-connector.ts';

describe('schema-change capture and the source', () => {
  it("an UNLOGGED table matching a changefeed's pattern is created normally (never added to the publication)", async () => {
    const src = await freshDatabase('unl_src');
    const dst = await freshDatabase('unl_dst');
    await src.query(`CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1)`);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['public.*'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    // Failed before: ALTER PUBLICATION … ADD TABLE refused the unlogged table inside the trigger,
    // which aborted the user's CREATE TABLE.
    await src.query(`CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY); INSERT INTO scratch VALUES (1)`);
    await src.query(
      `CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b VALUES (2); INSERT INTO a VALUES (3)`,
    );
    await caughtUp(src, dst);
    await expectSameTables(src.url, dst.url, ['a', 'b']);
    const pub = await src.query(`SELECT 1 FROM pg_publication_tables WHERE tablename = 'scratch'`);
    expect(pub.rows).toEqual([]);
    expect(feed.status().warnings.join('\n')).toContain('scratch');
    await feed.stop();
  });

  it('a partition without a replica identity under a published root: the source keeps writing, the changefeed stops naming it', async () => {
    const src = await freshDatabase('rip_src');
    const dst = await freshDatabase('rip_dst');
    await src.query(`
      CREATE TABLE ev (id int, at date, v text) PARTITION BY RANGE (at);
      ALTER TABLE ev REPLICA IDENTITY FULL;
      CREATE TABLE ev_a PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
      ALTER TABLE ev_a REPLICA IDENTITY FULL;
      INSERT INTO ev VALUES (1, '2025-02-02', 'a');
    `);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['ev'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    await src.query(`CREATE TABLE ev_b PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
    await src.query(`INSERT INTO ev VALUES (2, '2026-02-02', 'b')`);
    // Failed before: "cannot update table ev_b because it does not have a replica identity".
    await src.query(`UPDATE ev SET v = 'z'; DELETE FROM ev WHERE id = 1`);
    expect(await errorOf(feed)).toMatch(/^SOURCE_REPLICA_IDENTITY: .*ev_b/);
    await feed.stop();
  });

  it('REPLICA IDENTITY NOTHING set on a replicated table stops the changefeed (it used to go stale silently)', async () => {
    const src = await freshDatabase('rin_src');
    const dst = await freshDatabase('rin_dst');
    await src.query(`CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)`);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['t'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    await src.query(`ALTER TABLE t REPLICA IDENTITY NOTHING`);
    await src.query(`UPDATE t SET v = 2`); // the source's own writes keep working
    expect(await errorOf(feed)).toMatch(/^SOURCE_REPLICA_IDENTITY: .*public\.t/);
    await feed.stop();
  });

  it('a column added with a constant default to a partitioned table: existing rows get it downstream', async () => {
    const src = await freshDatabase('pdef_src');
    const dst = await freshDatabase('pdef_dst');
    await src.query(`
      CREATE TABLE ev (id int, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE ev_a PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
      CREATE TABLE ev_b PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      INSERT INTO ev VALUES (1, '2025-02-02', 'a'), (2, '2026-02-02', 'b');
    `);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['ev'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    // Was NULL downstream: a partitioned root stores no missing value (its leaves do).
    await src.query(`ALTER TABLE ev ADD COLUMN d int DEFAULT 7`);
    await src.query(`INSERT INTO ev VALUES (3, '2026-03-03', 'c', 8)`);
    await caughtUp(src, dst);
    expect(feed.status().error).toBeNull();
    await expectSameTables(src.url, dst.url, ['ev']);
    await feed.stop();
  });

  it('a default added in the same command as a rewrite is never replayed as NULL', async () => {
    const src = await freshDatabase('rwd_src');
    const dst = await freshDatabase('rwd_dst');
    await src.query(`CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)`);
    const feed = startChangefeed(
      testConfig({ source: src.url, sink: dst.url, tables: ['t'], schemaChanges: { recopy: 'fail' } }),
      { logger: silentLogger },
    );
    await caughtUp(src, dst);
    // The rewrite stores 5 in every row and clears the missing value: the fill was NULL before.
    await src.query(`ALTER TABLE t ADD COLUMN d int DEFAULT 5, ALTER COLUMN v TYPE bigint`);
    await src.query(`INSERT INTO t VALUES (2, 2, 6)`);
    const err = await errorOf(feed);
    expect(err).toMatch(/^SOURCE_SCHEMA_RECOPY: .*column d/);
    // What the error says never holds the command's text.
    expect(err).not.toContain('DEFAULT 5');
    const d = await dst.query(
      `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 't' AND column_name = 'd'`,
    );
    expect(d.rows[0]?.n).toBe(0);
    await feed.stop();
  });

  it('DROP SCHEMA … CASCADE drops the replicated tables downstream, as DROP TABLE does', async () => {
    const src = await freshDatabase('dsc_src');
    const dst = await freshDatabase('dsc_dst');
    await src.query(`
      CREATE SCHEMA s; CREATE TABLE s.t (id int PRIMARY KEY); INSERT INTO s.t VALUES (1);
      CREATE TABLE keep (id int PRIMARY KEY); INSERT INTO keep VALUES (1);
    `);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['s.*', 'keep'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    await src.query(`DROP SCHEMA s CASCADE; INSERT INTO keep VALUES (2)`);
    await caughtUp(src, dst);
    expect(feed.status().error).toBeNull();
    const gone = await dst.query(`SELECT to_regclass('s.t') AS t`);
    expect(gone.rows[0]?.t).toBeNull();
    await expectSameTables(src.url, dst.url, ['keep']);
    await feed.stop();
  });

  it('a table matching the selection created while the changefeed was stopped is replicated from its creation', async () => {
    const src = await freshDatabase('cwd_src');
    const dst = await freshDatabase('cwd_dst');
    await src.query(`CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1)`);
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['public.*'] });
    let feed = startChangefeed(cfg, { logger: silentLogger });
    await caughtUp(src, dst);
    await feed.stop();
    // Failed before with SOURCE_TABLES_CHANGED: the table was not in the changefeed's record.
    await src.query(`CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b VALUES (1, 'x'), (2, 'y')`);
    await src.query(`UPDATE b SET v = 'z' WHERE id = 1; INSERT INTO a VALUES (2)`);
    feed = startChangefeed(cfg, { logger: silentLogger });
    await caughtUp(src, dst);
    expect(feed.status().error).toBeNull();
    await expectSameTables(src.url, dst.url, ['a', 'b']);
    await feed.stop();
  });

  it('a table dropped while its changefeed was stopped (the hub running for another) is dropped downstream', async () => {
    const src = await freshDatabase('dwd_src');
    const d1 = await freshDatabase('dwd_d1');
    const d2 = await freshDatabase('dwd_d2');
    await src.query(`CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
      INSERT INTO a VALUES (1); INSERT INTO b VALUES (1)`);
    const cfg = testConfig({ id: 'one', source: src.url, sink: d1.url, tables: ['public.*'] });
    const other = startChangefeed(testConfig({ id: 'two', source: src.url, sink: d2.url, tables: ['a'] }), {
      logger: silentLogger,
    });
    let feed = startChangefeed(cfg, { logger: silentLogger });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: d1.url, id: 'one', timeoutMs: 30_000 });
    await feed.stop();
    await src.query(`DROP TABLE b; INSERT INTO a VALUES (2)`);
    // The hub (kept by the other changefeed) logs the drop while this one is stopped.
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: d2.url, id: 'two', timeoutMs: 30_000 });
    feed = startChangefeed(cfg, { logger: silentLogger });
    // Before: the table was left out at restart, so its drop was ignored and it stayed downstream.
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: d1.url, id: 'one', timeoutMs: 30_000 });
    expect(feed.status().error).toBeNull();
    expect((await d1.query(`SELECT to_regclass('public.b') AS t`)).rows[0]?.t).toBeNull();
    await expectSameTables(src.url, d1.url, ['a']);
    await Promise.all([feed.stop(), other.stop()]);
  });

  it('a snapshot whose tables changed after they were described is refused retriably (never copied in the old shape)', async () => {
    const src = await freshDatabase('snd_src');
    await src.query(`CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)`);
    const connector = await createConnector(src.url, { heartbeatIntervalMs: 1000 });
    try {
      const { tables } = await connector.describe(['t']);
      await src.query(`ALTER TABLE t ADD COLUMN d int DEFAULT 7`);
      const snap = await connector.snapshot(tables, { parallelism: 1, chunkRows: 1000 });
      let caught: unknown = null;
      try {
        for await (const _ of snap.rows) void _;
      } catch (err) {
        caught = err;
      } finally {
        await snap.release();
      }
      expect(caught).toMatchObject({ code: 'SOURCE_SNAPSHOT_SCHEMA_MOVED', retriable: true });
    } finally {
      await connector.close();
    }
  });

  it('a row change right after a DDL in the same transaction is never decoded before the DDL', async () => {
    const src = await freshDatabase('tie_src');
    const dst = await freshDatabase('tie_dst');
    await src.query(
      `CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 20) g`,
    );
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['t'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    // PostgreSQL queues a transactional message at its end position, where the UPDATE's first
    // row begins; the tie let that row out first (5 of 6 times on an idle 15.18), decoded by the
    // Relation message alone, and the DDL then dropped and re-added the column: x = 0 downstream.
    for (let i = 1; i <= 5; i++) {
      await src.query(`BEGIN; ALTER TABLE t ADD COLUMN c${i} int DEFAULT 0; UPDATE t SET c${i} = id; COMMIT`);
    }
    await caughtUp(src, dst);
    expect(feed.status().error).toBeNull();
    await expectSameTables(src.url, dst.url, ['t']);
    await feed.stop();
  });
  it('a slot another session is still creating is "blocked" (retried, naming the transaction it waits for), never "lost"', async () => {
    const src = await freshDatabase('slotc_src');
    await src.query(`CREATE TABLE t (id int PRIMARY KEY)`);
    const connector = await createConnector(src.url, { heartbeatIntervalMs: 1000 });
    const holder = await src.connect();
    const creator = await src.connect();
    try {
      // An open transaction with an xid: creating a logical slot waits for it to end, and the
      // slot exists meanwhile with no confirmed position.
      await holder.query('BEGIN; SELECT pg_current_xact_id()');
      const holderPid = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0]!.pid as number;
      const creating = creator
        .query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [connector.sourceKey])
        .catch(() => null);
      for (let i = 0; i < 100; i++) {
        const r = await src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [
          connector.sourceKey,
        ]);
        if (r.rows.length > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // Failed before: SOURCE_SLOT_LOST, not retriable — the changefeed stopped for good.
      const err = await connector
        .replicate({ after: null, knownTables: [], acceptStartAfter: () => true })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SOURCE_SNAPSHOT_BLOCKED', retriable: true });
      expect((err as Error).message).toContain(`transaction of pid ${holderPid}`);
      await holder.query('COMMIT');
      await creating;
    } finally {
      await holder.end();
      await creator.end();
      await connector.close();
    }
  });
});
