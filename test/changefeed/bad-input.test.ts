/**
 * Bad input gets a clear error — what, where, how to fix — and nothing is half-created: no slot,
 * no publication on the source, no replicated table in the sink. Credentials never leak.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { testConfig, withClient, waitForCatchUp } from '../support/changefeed.ts';
import { freePort, startCluster } from '../support/pg-cluster.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { failureOf, startChangefeed, statusError } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { sourceObjectName } from '../../src/source/postgres/source-names.ts';
import { ReplicationConnection } from '../../src/source/postgres/replication-connection.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';

async function expectNothingCreated(src: TestDatabase, dst: TestDatabase): Promise<void> {
  const slots = await src.query(
    `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`,
  );
  expect(slots.rows).toEqual([]);
  const pubs = await src.query(`SELECT pubname FROM pg_publication`);
  expect(pubs.rows).toEqual([]);
  const tables = await dst.query(
    `SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'tidemark')`,
  );
  expect(tables.rows).toEqual([]);
}

describe('bad input', () => {
  it('a table without key or REPLICA IDENTITY FULL is refused, naming the table and both fixes', async () => {
    const src = await freshDatabase('bad_src');
    const dst = await freshDatabase('bad_dst');
    await src.query(`CREATE TABLE good (id int primary key); CREATE TABLE "Weird Name" (a int, b text)`);
    const feed = startChangefeed(
      testConfig({ source: src.url, sink: dst.url, tables: ['good', 'public.Weird Name'] }),
      { logger: silentLogger },
    );
    const err = await failureOf(feed);
    expect(err.code).toBe('SOURCE_TABLE_NO_KEY');
    expect(err.message).toContain('public.Weird Name has no primary key');
    expect(err.hint).toContain('ADD PRIMARY KEY');
    expect(err.hint).toContain('ALTER TABLE "public"."Weird Name" REPLICA IDENTITY FULL');
    await expectNothingCreated(src, dst);
  });

  it('a missing table is refused by name', async () => {
    const src = await freshDatabase('bad_src');
    const dst = await freshDatabase('bad_dst');
    await src.query(`CREATE TABLE present (id int primary key)`);
    const feed = startChangefeed(
      testConfig({ source: src.url, sink: dst.url, tables: ['present', 'sales.absent'] }),
      { logger: silentLogger },
    );
    const err = await failureOf(feed);
    expect(err.code).toBe('SOURCE_TABLE_NOT_FOUND');
    expect(err.message).toContain('table sales.absent (from tables: "sales.absent") does not exist');
    await expectNothingCreated(src, dst);
  });

  it('a wrong password fails with AUTH_FAILED and the password appears nowhere', async () => {
    const src = await freshDatabase('bad_src');
    const dst = await freshDatabase('bad_dst');
    await src.query(`CREATE TABLE t (id int primary key)`);
    for (const which of ['source', 'sink'] as const) {
      const bad = (which === 'source' ? src.url : dst.url).replace(/:[^:@/]+@/, ':Sup3rSecret-pw@');
      const cfg = testConfig({
        source: which === 'source' ? bad : src.url,
        sink: which === 'sink' ? bad : dst.url,
        tables: ['t'],
      });
      const err = await failureOf(startChangefeed(cfg, { logger: silentLogger }));
      expect(err.code).toBe('AUTH_FAILED');
      expect(err.message).toContain(`${which} postgres://tidemark:***@127.0.0.1`);
      expect(JSON.stringify(err.toJSON()) + err.message + err.hint).not.toContain('Sup3rSecret');
    }
    await expectNothingCreated(src, dst);
  });

  it('an unreachable host is reported (and retried) with a clear error', async () => {
    const src = await freshDatabase('bad_src');
    const dst = await freshDatabase('bad_dst');
    const port = await freePort(59900);
    const cfg = testConfig({ source: `postgres://u:pw@127.0.0.1:${port}/app`, sink: dst.url, tables: ['t'] });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    const e = await statusError(feed, 'CONNECT_REFUSED');
    expect(e.message).toContain(
      `source postgres://u:***@127.0.0.1:${port}/app while connecting: ECONNREFUSED`,
    );
    expect(e.hint).toContain('server is running');
    await feed.stop();
    await expectNothingCreated(src, dst);
  });

  it('a source without wal_level=logical is refused with the setting to change', async () => {
    const cluster = await startCluster({ port: await freePort(55300), walLevel: 'replica' });
    onTestFinished(() => cluster.stop());
    const dst = await freshDatabase('bad_dst');
    await withClient(cluster.url('postgres'), (c) => c.query('CREATE TABLE t (id int primary key)'));
    const feed = startChangefeed(
      testConfig({ source: cluster.url('postgres'), sink: dst.url, tables: ['t'] }),
      { logger: silentLogger },
    );
    const err = await failureOf(feed);
    expect(err.code).toBe('SOURCE_WAL_LEVEL');
    expect(err.message).toContain("wal_level is 'replica'");
    expect(err.hint).toContain('wal_level = logical');
  });

  it('a slot held by another consumer is reported as SOURCE_SLOT_IN_USE and retried until free', async () => {
    const src = await freshDatabase('bad_src');
    const dst = await freshDatabase('bad_dst');
    await src.query(`CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1)`);
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['t'] });
    const first = startChangefeed(cfg, { logger: silentLogger });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    await first.stop();
    // Another consumer (another process, say) streams the source's shared slot.
    const slot = sourceObjectName(src.url);
    const other = await ReplicationConnection.connect({ url: src.url, applicationName: 'other' });
    const stream = other.startReplication({ slotName: slot, startLsn: Lsn.ZERO, publicationNames: [slot] });
    void stream[Symbol.asyncIterator]()
      .next()
      .catch(() => {});
    const inUse: number[] = [];
    const second = startChangefeed(cfg, {
      logger: silentLogger,
      onError: (err) => {
        if (err.code === 'SOURCE_SLOT_IN_USE') inUse.push(Date.now());
      },
    });
    const e = await statusError(second, 'SOURCE_SLOT_IN_USE');
    expect(e.message).toContain(slot);
    expect(e.hint).toContain('Stop the other consumer');
    // Retried with a growing backoff (0.5 s, 1 s, 2 s, 4 s … with jitter), never in a tight loop:
    // nothing commits meanwhile, so nothing resets it.
    await new Promise((r) => setTimeout(r, 8000));
    expect(inUse.length).toBeGreaterThanOrEqual(2);
    expect(inUse.length).toBeLessThanOrEqual(7);
    const gaps = inUse.slice(1).map((t, i) => t - inUse[i]!);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]!);
    await other.close();
    await src.query(`INSERT INTO t VALUES (2)`);
    // Once the other consumer is gone, the changefeed takes over from its checkpoint.
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    expect((await dst.query('SELECT count(*)::int AS n FROM t')).rows[0]?.n).toBe(2);
    await second.stop();
  });

  it('an invalid config file exits 2 naming the file, the line and the key', async () => {
    const path = writeConfig(
      `changefeeds:\n  - id: a\n    source: postgres://x@127.0.0.1/db\n    sink: postgres://x@127.0.0.1/db2\n    tables: [t]\n    epoch: { intervalMs: fast }\n`,
    );
    const p = runCli(['start', '--config', path]);
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/tidemark\.yaml:6.*changefeeds\[0\]\.epoch\.intervalMs/);
  });
});
