/**
 * Schema changes as barriers into MySQL (MariaDB from the harness). MySQL commits DDL on its own,
 * so the sink records a schema change as pending in its checkpoint row before the DDL and clears
 * it with the epoch's commit (src/sink/mysql/README.md): every everyday migration must reach
 * MariaDB at its position under a concurrent writer, and a SIGKILL between the DDL and the
 * epoch's commit must leave a downstream that still ends equal to the source, shape and rows.
 */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { currentLsn, testConfig, withClient } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { startMariaDb, type MariaDb } from '../support/mariadb.ts';
import { freePort } from '../support/pg-cluster.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { mysqlCheckpoint, readMysql } from '../sink-contract/readers.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import { PostgresConnector } from '../../src/source/postgres/pg-connector.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import type { Changefeed } from '../../src/runtime/changefeed.ts';

const PORT = await freePort(Number(process.env.TIDEMARK_TEST_DDL_MARIADB_PORT ?? 33308));
let maria: MariaDb;

beforeAll(async () => {
  maria = await startMariaDb({ port: PORT });
});
afterAll(async () => {
  await maria?.stop();
});

/** Waits until the MySQL checkpoint of `id` reaches the source's current position. */
async function caughtUp(src: TestDatabase, url: string, id: string, feed?: Changefeed): Promise<void> {
  const goal = await currentLsn(src.url);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const cp = await mysqlCheckpoint(url, id);
    if (cp && Lsn.parse(cp.position).compare(goal) >= 0) return;
    if (Date.now() > deadline || feed?.status().phase === 'failed') {
      throw new Error(
        `MySQL sink did not reach ${goal} (checkpoint ${cp?.position ?? 'none'}; ${JSON.stringify(feed?.status().error ?? null)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Column names of a MySQL table, in order. */
async function mysqlColumns(url: string, table: string): Promise<string[]> {
  const c = await mysql.createConnection({ uri: url });
  try {
    const [rows] = await c.query(
      `SELECT COLUMN_NAME AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [table],
    );
    return (rows as { n: string }[]).map((r) => r.n);
  } finally {
    await c.end();
  }
}

/** Same columns (names, order) and same rows (as PostgreSQL text) in MySQL as in the source. */
async function expectSameInMysql(src: TestDatabase, url: string, tables: string[]): Promise<void> {
  const connector = new PostgresConnector({ url: src.url, heartbeatIntervalMs: 1000 });
  try {
    const { tables: described } = await connector.describe(tables.map((t) => `public.${t}`));
    for (const table of described) {
      expect(await mysqlColumns(url, table.name), `${table.name}: columns`).toEqual(
        table.columns.map((c) => c.name),
      );
      const want = await withClient(src.url, async (c) => {
        const res = await c.query({
          text: `SELECT * FROM public.${table.name}`,
          rowMode: 'array',
          types: { getTypeParser: () => (v: string) => v },
        });
        return res.rows as (string | null)[][];
      });
      const key = (r: readonly (string | null)[]) => JSON.stringify(r);
      const got = await readMysql(url, table);
      expect(got.map(key).sort(), `${table.name}: rows`).toEqual(want.map(key).sort());
    }
  } finally {
    await connector.close();
  }
}

/** A writer committing small transactions into `t(id, v)` until stopped. */
function writer(db: TestDatabase): { stop(): Promise<void> } {
  let stop = false;
  const done = (async () => {
    const c = await db.connect();
    for (let n = 1; !stop; n++) {
      await c.query(`INSERT INTO t (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`, [
        (n % 300) + 1,
        n,
      ]);
      if (n % 10 === 0) await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
    },
  };
}

const MIGRATIONS: { name: string; sql: string }[] = [
  { name: 'add a column', sql: `ALTER TABLE t ADD COLUMN a text` },
  { name: 'add a column with a constant default', sql: `ALTER TABLE t ADD COLUMN d int NOT NULL DEFAULT 7` },
  {
    name: 'add a text column with a constant default',
    sql: `ALTER TABLE t ADD COLUMN dt text DEFAULT 'two'`,
  },
  { name: 'rename a column', sql: `ALTER TABLE t RENAME COLUMN a TO a2` },
  { name: 'widen varchar', sql: `ALTER TABLE t ALTER COLUMN s TYPE varchar(50)` },
  { name: 'int → bigint', sql: `ALTER TABLE t ALTER COLUMN v TYPE bigint` },
  { name: 'numeric(12,2) → numeric(20,4)', sql: `ALTER TABLE t ALTER COLUMN amount TYPE numeric(20,4)` },
  {
    name: 'a new enum label, used at once',
    sql: `ALTER TYPE mood ADD VALUE 'glad'; UPDATE t SET m = 'glad' WHERE id % 7 = 0`,
  },
  { name: 'drop a column', sql: `ALTER TABLE t DROP COLUMN old` },
  {
    name: 'two DDLs in quick succession',
    sql: `ALTER TABLE t ADD COLUMN q1 int DEFAULT 1; ALTER TABLE t ADD COLUMN q2 text DEFAULT 'two'`,
  },
  {
    name: 'DDL and DML in one transaction',
    sql: `BEGIN; ALTER TABLE t ADD COLUMN x int DEFAULT 0; UPDATE t SET x = id; COMMIT`,
  },
  { name: 'truncate', sql: `TRUNCATE t2` },
];

describe('schema changes as barriers into MySQL', () => {
  it(
    'every everyday migration reaches MariaDB at its position, under a concurrent writer',
    { timeout: 300_000 },
    async () => {
      const src = await freshDatabase('myddl_src');
      const dst = await maria.freshDatabase('myddl');
      await src.query(`
        CREATE TYPE mood AS ENUM ('sad', 'ok');
        CREATE TABLE t (id int PRIMARY KEY, v int, s varchar(10), amount numeric(12,2), m mood, old text);
        CREATE TABLE t2 (id int PRIMARY KEY, v int);
        CREATE TABLE gone (id int PRIMARY KEY);
        INSERT INTO t SELECT g, g, 's' || g, g * 1.25, 'ok', 'x' FROM generate_series(1, 300) g;
        INSERT INTO t2 SELECT g, g FROM generate_series(1, 50) g;
        INSERT INTO gone VALUES (1);
      `);
      const feed = startChangefeed(
        testConfig({ id: 'myddl', source: src.url, sink: dst.url, tables: ['public.*'] }),
        { logger: silentLogger },
      );
      await caughtUp(src, dst.url, 'myddl', feed);
      const w = writer(src);
      for (const m of MIGRATIONS) {
        for (const sql of m.sql.startsWith('BEGIN') ? [m.sql] : m.sql.split('; ')) await src.query(sql);
        await src.query(`INSERT INTO t2 (id, v) SELECT coalesce(max(id), 0) + 1, 0 FROM t2`);
        await new Promise((r) => setTimeout(r, 150));
      }
      await w.stop();
      await caughtUp(src, dst.url, 'myddl', feed);
      // Tables: created later (the pattern selects it), renamed, dropped — each caught up before the
      // next. A barrier after rows of its epoch makes MySQL retry the epoch (a new attempt), and
      // the runtime's restart loses a table created or dropped after the checkpoint
      // (SOURCE_TABLES_CHANGED / the drop ignored: reported, not this sink's).
      for (const sql of [
        `CREATE TABLE t3 (id int PRIMARY KEY, note text); INSERT INTO t3 VALUES (1, 'born')`,
        `INSERT INTO t3 VALUES (2, 'later')`,
        `ALTER TABLE t3 RENAME TO t4`,
        `INSERT INTO t4 VALUES (3, 'renamed')`,
        `DROP TABLE gone`,
      ]) {
        await src.query(sql);
        await caughtUp(src, dst.url, 'myddl', feed);
      }
      expect(feed.status().phase).toBe('streaming');
      await expectSameInMysql(src, dst.url, ['t', 't2', 't4']);
      expect(await mysqlColumns(dst.url, 't3')).toEqual([]);
      expect(await mysqlColumns(dst.url, 'gone')).toEqual([]);
      await feed.stop();
    },
  );

  it(
    'SIGKILL between the DDL and the epoch’s commit: the next start finishes the change, equal to the source',
    { timeout: 300_000 },
    async () => {
      const src = await freshDatabase('myddlkill_src');
      const dst = await maria.freshDatabase('myddlkill');
      await src.query(`
        CREATE TABLE t (id int PRIMARY KEY, v int, gone text, n text);
        INSERT INTO t SELECT g, g, 'g', 'n' FROM generate_series(1, 300) g;
      `);
      const config = writeConfig(`
changefeeds:
  - id: myddlkill
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.t]
    epoch: { intervalMs: 20 }
    heartbeatIntervalMs: 100
`);
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const probe = await mysql.createConnection({ uri: dst.url });
      const holder = await mysql.createConnection({ uri: dst.url });
      const pending = async () => {
        const [rows] = await probe
          .query(`SELECT pending_schema AS p FROM tidemark_checkpoints WHERE changefeed = 'myddlkill'`)
          .catch(() => [[]]);
        return (rows as { p: string | null }[])[0]?.p ?? null;
      };
      const columns = () => mysqlColumns(dst.url, 't');
      const rnd = mulberry32(2718);
      const w = writer(src);
      // Each round's DDL, and the column list MySQL has once it is applied.
      const rounds: { ddl: string; done: (cols: string[]) => boolean }[] = [
        { ddl: `ALTER TABLE t ADD COLUMN k0 int DEFAULT 5`, done: (c) => c.includes('k0') },
        { ddl: `ALTER TABLE t RENAME COLUMN k0 TO kk0`, done: (c) => c.includes('kk0') },
        { ddl: `ALTER TABLE t DROP COLUMN gone`, done: (c) => !c.includes('gone') },
        { ddl: `ALTER TABLE t ADD COLUMN k1 text DEFAULT 'one'`, done: (c) => c.includes('k1') },
        { ddl: `ALTER TABLE t RENAME COLUMN n TO n2`, done: (c) => c.includes('n2') },
        { ddl: `ALTER TABLE t ALTER COLUMN v TYPE bigint`, done: () => true },
      ];
      const landed = { beforeDdl: 0, afterDdl: 0 };
      try {
        for (const [i, round] of rounds.entries()) {
          const p = runCli(['start', '--config', config], { env });
          const waitFor = async (what: string, ok: () => Promise<boolean>) => {
            const deadline = Date.now() + 60_000;
            while (!(await ok())) {
              if (Date.now() > deadline)
                throw new Error(`round ${i}: ${what}; process output:\n${p.output()}`);
              await new Promise((r) => setTimeout(r, 5));
            }
          };
          await waitFor('no checkpoint', async () => (await mysqlCheckpoint(dst.url, 'myddlkill')) !== null);
          await new Promise((r) => setTimeout(r, Math.floor(rnd() * 300)));
          // Even rounds: a reader's metadata lock on t holds the DDL back, so the kill lands after
          // the change is recorded and before its DDL. Odd rounds: the kill lands once the DDL is
          // there and the change is still pending (its epoch not committed).
          const holdDdl = i % 2 === 0;
          if (holdDdl) {
            await holder.query('BEGIN');
            await holder.query('SELECT * FROM t LIMIT 1');
          }
          await src.query(round.ddl);
          await waitFor('the change was never pending', async () => (await pending()) !== null);
          if (!holdDdl) {
            await waitFor('the DDL never ran', async () => round.done(await columns()));
          }
          p.child.kill('SIGKILL');
          expect(await p.exited).toBe('SIGKILL');
          if (holdDdl) await holder.query('ROLLBACK');
          if ((await pending()) !== null) {
            if (holdDdl && !round.done(await columns())) landed.beforeDdl++;
            if (!holdDdl) landed.afterDdl++;
          }
        }
        await w.stop();
        const last = runCli(['start', '--config', config], { env });
        await caughtUp(src, dst.url, 'myddlkill');
        last.child.kill('SIGTERM');
        expect(await last.exited, last.output()).toBe(0);
        expect(await pending(), 'nothing pending once caught up').toBeNull();
      } finally {
        await probe.end();
        await holder.end();
      }
      expect(landed.beforeDdl, 'kills between the record and the DDL').toBeGreaterThan(0);
      expect(landed.afterDdl, 'kills between the DDL and the commit').toBeGreaterThan(0);
      await expectSameInMysql(src, dst.url, ['t']);
    },
  );

  it(
    'a downstream reader holding a metadata lock: later readers do not queue behind the DDL; the change lands once it ends',
    { timeout: 120_000 },
    async () => {
      const src = await freshDatabase('mylq_src');
      const dst = await maria.freshDatabase('mylq');
      await src.query(`
        CREATE TABLE t (id int PRIMARY KEY, v text);
        INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;`);
      const errors: string[] = [];
      const feed = startChangefeed(
        testConfig({ id: 'mylq', source: src.url, sink: dst.url, tables: ['t'] }),
        {
          logger: silentLogger,
          onError: (e) => errors.push(e.code),
        },
      );
      const holder = await mysql.createConnection({ uri: dst.url });
      const reader = await mysql.createConnection({ uri: dst.url });
      try {
        await caughtUp(src, dst.url, 'mylq', feed);
        await holder.query('BEGIN');
        await holder.query('SELECT count(*) FROM t');
        await src.query(`ALTER TABLE t ADD COLUMN w int; INSERT INTO t VALUES (101, 'v101', 7)`);
        // The sink's ALTER waits for the holder's metadata lock (or between two bounded waits).
        for (;;) {
          const [rows] = await reader.query(
            `SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE STATE LIKE '%metadata lock%' AND INFO LIKE 'ALTER TABLE%'`,
          );
          if (Number((rows as { n: number }[])[0]?.n) > 0) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        // Unbounded, the ALTER's pending exclusive lock stays at the head of the queue while the
        // holder holds: this reader would wait there until its own lock_wait_timeout.
        await reader.query('SET SESSION lock_wait_timeout = 20');
        const [rows] = await reader.query('SELECT count(*) AS n FROM t');
        expect(Number((rows as { n: number }[])[0]?.n)).toBe(100);
        await holder.query('COMMIT');
        await caughtUp(src, dst.url, 'mylq', feed);
        expect(feed.status().error).toBeNull();
        expect(errors).toContain('SINK_LOCK_TIMEOUT');
      } finally {
        await holder.end();
        await reader.end();
        await feed.stop();
      }
      await expectSameInMysql(src, dst.url, ['t']);
    },
  );
});
