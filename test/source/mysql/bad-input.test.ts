/**
 * Bad input gets a clear error naming the setting and the fix, before anything is read: binlog
 * off, STATEMENT format, MINIMAL row image, no row metadata, a missing privilege, a purged
 * binlog (MariaDB ≥ 10.x refuses server_id = 0, so "no server id" cannot be set up here) — and mid-stream: a session that logs statements or partial row images.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { TidemarkError } from '../../../src/errors/tidemark-error.ts';
import { MysqlConnector } from '../../../src/source/mysql/mysql-connector.ts';
import { freePort } from '../../support/pg-cluster.ts';
import { startMariaDbSource, type MariaDbSource } from '../../support/mariadb-source.ts';
import { collect, iterate } from './helpers.ts';

let src: MariaDbSource;
let noBinlog: MariaDbSource;

beforeAll(async () => {
  [src, noBinlog] = await Promise.all([
    startMariaDbSource({ port: await freePort(55757) }),
    startMariaDbSource({ port: await freePort(55759), binlog: false }),
  ]);
});
afterAll(async () => {
  await Promise.all([src?.stop(), noBinlog?.stop()]);
});

function connector(url: string): MysqlConnector {
  const c = new MysqlConnector({ uri: url, heartbeatMs: 200 });
  onTestFinished(() => c.close());
  return c;
}

async function rejection(p: Promise<unknown>): Promise<TidemarkError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TidemarkError);
    return err as TidemarkError;
  }
  throw new Error('expected a rejection');
}

/** Sets a global for the test, restored after it. */
async function withGlobal(name: string, value: string): Promise<void> {
  const [row] = (await src.sql(null, `SELECT @@global.${name} AS v`)) as { v: unknown }[];
  await src.sql(null, `SET GLOBAL ${name} = ${value}`);
  onTestFinished(async () => {
    await src.sql(null, `SET GLOBAL ${name} = ?`, [row!.v]);
  });
}

describe('MariaDB connector: bad input', () => {
  it('binlog off: SOURCE_BINLOG_OFF naming log_bin', async () => {
    const db = await noBinlog.freshDatabase('off');
    const c = connector(db.url);
    const failed = (await c.check()).filter((r) => !r.ok && r.blocking).map((r) => r.id);
    expect(failed).toContain('log_bin');
    const err = await rejection(c.replicate({ after: null, knownTables: [], acceptStartAfter: () => false }));
    expect(err.code).toBe('SOURCE_BINLOG_OFF');
    expect(err.message).toContain('log_bin = OFF');
    expect(err.hint).toMatch(/log-bin/);
  });

  const settings: [string, string, string, string][] = [
    ['binlog_format', "'STATEMENT'", 'SOURCE_BINLOG_FORMAT', 'binlog_format = STATEMENT'],
    ['binlog_row_image', "'MINIMAL'", 'SOURCE_BINLOG_ROW_IMAGE', 'binlog_row_image = MINIMAL'],
    ['binlog_row_metadata', "'MINIMAL'", 'SOURCE_BINLOG_ROW_METADATA', 'binlog_row_metadata = MINIMAL'],
  ];
  for (const [name, value, code, says] of settings) {
    it(`${name} = ${value}: ${code}`, async () => {
      const db = await src.freshDatabase(name);
      await withGlobal(name, value);
      const c = connector(db.url);
      const result = (await c.check()).find((r) => r.id === name)!;
      expect(result).toMatchObject({ ok: false, blocking: true, detail: says });
      expect(result.fix).toContain(name);
      const err = await rejection(
        c.replicate({ after: null, knownTables: [], acceptStartAfter: () => false }),
      );
      expect(err.code).toBe(code);
      expect(err.message).toContain(says);
      const snapErr = await rejection(c.snapshot([], { parallelism: 1, chunkRows: 10 }));
      expect(snapErr.code).toBe(code);
    });
  }

  it('a user without REPLICATION SLAVE or SELECT: PERMISSION_DENIED naming the grant', async () => {
    const db = await src.freshDatabase('grants');
    await src.sql(db.name, 'CREATE TABLE t (id int PRIMARY KEY)');
    await src.server.query(
      `CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'weakpw'; GRANT REPLICATION CLIENT ON *.* TO 'weak'@'127.0.0.1';`,
    );
    onTestFinished(async () => {
      await src.server.query(`DROP USER 'weak'@'127.0.0.1'`);
    });
    const c = connector(`mysql://weak:weakpw@127.0.0.1:${src.server.port}/${db.name}`);
    const results = await c.check([
      { schema: db.name, name: 't', relationId: 1, columns: [], keyColumns: [], keyless: true, enums: [] },
    ]);
    const failed = results.filter((r) => !r.ok);
    expect(failed.map((r) => r.id)).toEqual(['privilege:replication-slave', `privilege:select:${db.name}.t`]);
    expect(failed[0]!.fix).toContain('GRANT REPLICATION SLAVE');
    expect(failed[1]!.fix).toContain('GRANT SELECT');
    const err = await rejection(c.replicate({ after: null, knownTables: [], acceptStartAfter: () => false }));
    expect(err.code).toBe('PERMISSION_DENIED');
    expect(err.message).toContain('REPLICATION SLAVE');
    expect(err.message).not.toContain('weakpw');
  });

  /**
   * Replicates one insert into a fresh table, then (as if the changefeed were down) writes more and
   * purges every binlog but a new one. Returns the tables and the position a changefeed kept.
   */
  async function purgedWhileDown(label: string) {
    const db = await src.freshDatabase(label);
    await src.sql(db.name, 'CREATE TABLE t (id int PRIMARY KEY)');
    const c = connector(db.url);
    const tables = (await c.describe(['t'])).tables;
    await c.capture(tables);
    const s = await c.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    await src.sql(db.name, 'INSERT INTO t VALUES (1)');
    const events = await collect(iterate(s), (ev) => ev.some((e) => e.tag === 'commit'));
    await s.close();
    const kept = events.find((e) => e.tag === 'commit')!;
    if (kept.tag !== 'commit') throw new Error('unreachable');
    await src.sql(
      db.name,
      'INSERT INTO t VALUES (2); FLUSH BINARY LOGS; INSERT INTO t VALUES (3); FLUSH BINARY LOGS',
    );
    const [last] = (await src.sql(null, 'SHOW MASTER STATUS')) as { File: string }[];
    // PURGE keeps files the binlog checkpoint still needs; it advances shortly after FLUSH.
    for (;;) {
      await src.sql(null, `PURGE BINARY LOGS TO '${last!.File}'`);
      const logs = (await src.sql(null, 'SHOW BINARY LOGS')) as { Log_name: string }[];
      if (logs.length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const [oldest] = (await src.sql(null, 'SELECT @@global.gtid_binlog_pos AS g')) as { g: string }[];
    return { db, c, tables, kept: kept.position, oldestFile: last!.File, oldestGtid: oldest!.g };
  }

  it('a purged binlog: SOURCE_BINLOG_PURGED naming both positions and the fix, not a silent gap', async () => {
    const { c, tables, kept, oldestFile, oldestGtid } = await purgedWhileDown('purged');
    const asked: string[] = [];
    const err = await rejection(
      c.replicate({
        after: kept,
        knownTables: tables,
        acceptStartAfter: (p) => {
          asked.push(p.toString());
          return false;
        },
      }),
    );
    expect(asked).toEqual([oldestGtid]);
    expect(err.code).toBe('SOURCE_BINLOG_PURGED');
    expect(err.message).toMatch(/purged/i);
    expect(err.message).toContain(`continues from GTID ${kept.toString()}`);
    expect(err.message).toContain(`${oldestFile}, from GTID ${oldestGtid}`);
    expect(err.hint).toMatch(/reset them .* new snapshot/);
    expect(err.hint).toContain('binlog_expire_logs_seconds');
    expect(err.retriable).toBe(false);
  });

  it('a purged binlog nobody needs (acceptStartAfter): the session starts at the oldest binlog kept', async () => {
    const { db, c, tables, kept, oldestGtid } = await purgedWhileDown('purged_ok');
    const s = await c.replicate({ after: kept, knownTables: tables, acceptStartAfter: () => true });
    onTestFinished(() => s.close());
    expect(s.start.toString()).toBe(oldestGtid);
    expect(s.start.compare(kept)).toBeGreaterThan(0);
    await src.sql(db.name, 'INSERT INTO t VALUES (4)');
    const events = await collect(iterate(s), (ev) => ev.some((e) => e.tag === 'insert' && e.row[0] === '4'));
    expect(events.filter((e) => e.tag === 'insert').map((e) => e.tag === 'insert' && e.row[0])).toEqual([
      '4',
    ]);
  });

  it('a session logging statements into a followed database: SOURCE_BINLOG_FORMAT mid-stream', async () => {
    const db = await src.freshDatabase('stmt');
    await src.sql(db.name, 'CREATE TABLE t (id int PRIMARY KEY, v int)');
    const c = connector(db.url);
    const tables = (await c.describe(['t'])).tables;
    await c.capture(tables);
    const s = await c.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    onTestFinished(() => s.close());
    await src.sql(db.name, "SET SESSION binlog_format = 'STATEMENT'; INSERT INTO t VALUES (1, 1)");
    const err = await rejection(collect(iterate(s), () => false));
    expect(err.code).toBe('SOURCE_BINLOG_FORMAT');
    expect(err.message).toContain('INSERT INTO t VALUES (1, 1)');
  });

  it('a session logging partial row images: SOURCE_BINLOG_ROW_IMAGE mid-stream', async () => {
    const db = await src.freshDatabase('minimal');
    await src.sql(db.name, 'CREATE TABLE t (id int PRIMARY KEY, v int, w int)');
    await src.sql(db.name, 'INSERT INTO t VALUES (1, 1, 1)');
    const c = connector(db.url);
    const tables = (await c.describe(['t'])).tables;
    await c.capture(tables);
    const s = await c.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    onTestFinished(() => s.close());
    await src.sql(db.name, "SET SESSION binlog_row_image = 'MINIMAL'; UPDATE t SET v = 2 WHERE id = 1");
    const err = await rejection(collect(iterate(s), () => false));
    expect(err.code).toBe('SOURCE_BINLOG_ROW_IMAGE');
    expect(err.message).toContain('leaves out column');
  });
});
