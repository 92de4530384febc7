/**
 * MariaDB as a source, end to end through the product: the CLI (config loader, engine, one change
 * hub for the server) runs two changefeeds of one MariaDB database, into PostgreSQL (a schema named
 * after the database) and into SQLite. A transfer workload writes throughout (the sum of balances
 * never changes, every transfer's two ledger rows sum to zero); the tidemark process is SIGKILLed
 * mid-stream and restarted; a reader checks both invariants in every downstream read (never a
 * partial transaction); at the end both sinks hold exactly the source's rows. Then, in process,
 * the everyday schema changes (add a column with a default, rename a column, drop a column) reach
 * both sinks at their position between writes, on tables whose names need quoting.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { MysqlConnector } from '../../src/source/mysql/mysql-connector.ts';
import { sqliteIdent, sqliteTableName } from '../../src/sink/sqlite/sqlite-table-writer.ts';
import { readPostgres, readSqlite, sqliteCheckpoint } from '../sink-contract/readers.ts';
import { sinkCheckpoint, testConfig, withClient } from '../support/changefeed.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { freshDatabase } from '../support/db.ts';
import { startChangefeed } from '../support/engine.ts';
import { startMariaDbSource, type MariaDbSource } from '../support/mariadb-source.ts';
import { freePort } from '../support/pg-cluster.ts';

const ACCOUNTS = 2000;
const KILLS = 4;

let src: MariaDbSource;

beforeAll(async () => {
  src = await startMariaDbSource({ port: await freePort(55771) });
}, 180_000);

afterAll(async () => {
  await src?.stop();
});

/** The source's rows as the connector reads them (pivot text), sorted; and the tables. */
async function sourceRows(
  url: string,
  selection: string[],
): Promise<Map<string, { t: TableSchema; rows: string[] }>> {
  const c = new MysqlConnector({ uri: url });
  try {
    const { tables } = await c.describe(selection);
    const snap = await c.snapshot(tables, { parallelism: 1, chunkRows: 100_000 });
    const out = new Map<string, { t: TableSchema; rows: string[] }>();
    for (const t of tables) out.set(t.name, { t, rows: [] });
    try {
      for await (const chunk of snap.rows) out.get(chunk.table.name)!.rows.push(...chunk.rows.map(text));
    } finally {
      await snap.release();
    }
    for (const v of out.values()) v.rows.sort();
    return out;
  } finally {
    await c.close();
  }
}

function text(r: Row): string {
  return JSON.stringify(r);
}

async function gtidEnd(): Promise<string> {
  const rows = (await src.sql(null, 'SELECT @@global.gtid_binlog_pos AS g')) as { g: string }[];
  return rows[0]!.g;
}

/** Waits until `checkpoint()` passes the source's binlog end now (bounded). */
async function waitCaughtUp(
  url: string,
  checkpoint: () => Promise<{ position: string } | null> | { position: string } | null,
  timeoutMs = 120_000,
): Promise<void> {
  const codec = new MysqlConnector({ uri: url }).positions;
  const target = codec.parse(await gtidEnd());
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cp = await checkpoint();
    if (cp && codec.parse(cp.position).compare(target) >= 0) return;
    if (Date.now() > deadline) throw new Error(`not caught up to ${target} (checkpoint ${cp?.position})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Transfers between accounts, each with its two ledger rows, until stopped. */
function transferWriter(db: string, seed: number): { stop(): Promise<number> } {
  const random = mulberry32(seed);
  let stop = false;
  let n = 0;
  const done = (async () => {
    const c = await src.connect(db);
    try {
      while (!stop) {
        n++;
        const a = 1 + Math.floor(random() * ACCOUNTS);
        const b = 1 + ((a + Math.floor(random() * (ACCOUNTS - 1))) % ACCOUNTS);
        const amount = (1 + Math.floor(random() * 10000)) / 100;
        await c.query('START TRANSACTION');
        await c.query('UPDATE accounts SET balance = balance - ? WHERE id = ?', [amount, a]);
        await c.query('UPDATE accounts SET balance = balance + ? WHERE id = ?', [amount, b]);
        await c.query('INSERT INTO ledger (txn, account, amount) VALUES (?, ?, ?), (?, ?, ?)', [
          n,
          a,
          -amount,
          n,
          b,
          amount,
        ]);
        if (n % 7 === 0) {
          await c.query(
            'INSERT INTO `Order Items` (id, `näme`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `näme` = VALUES(`näme`)',
            [n % 50, `item ${n}`],
          );
        }
        if (n % 11 === 0) await c.query('DELETE FROM `a.b` WHERE id = ?', [n % 30]);
        if (n % 13 === 0) await c.query('REPLACE INTO `a.b` (id, v) VALUES (?, ?)', [n % 30, n]);
        await c.query('COMMIT');
      }
    } finally {
      await c.end();
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return n;
    },
  };
}

/** The invariants of a committed downstream state: constant total, every transfer whole. */
function checkInvariant(where: string, balances: string[], ledger: { txn: string; amount: string }[]): void {
  const cents = (s: string) => Math.round(Number(s) * 100);
  const total = balances.reduce((s, b) => s + cents(b), 0);
  expect(total, `${where}: sum of balances`).toBe(ACCOUNTS * 100_000);
  const perTxn = new Map<string, { n: number; sum: number }>();
  for (const l of ledger) {
    const e = perTxn.get(l.txn) ?? { n: 0, sum: 0 };
    e.n++;
    e.sum += cents(l.amount);
    perTxn.set(l.txn, e);
  }
  for (const [txn, e] of perTxn) {
    if (e.n !== 2 || e.sum !== 0)
      throw new Error(`${where}: transfer ${txn} is partial (${e.n} rows, sum ${e.sum})`);
  }
}

async function checkPostgres(url: string, schema: string): Promise<number> {
  return withClient(url, async (c) => {
    const has = await c.query('SELECT to_regclass($1) AS r', [`"${schema}".ledger`]);
    if (!has.rows[0]?.r) return 0;
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    try {
      const acc = await c.query(`SELECT balance::text AS b FROM "${schema}".accounts`);
      if (acc.rows.length === 0) return 0;
      const led = await c.query(`SELECT txn::text AS txn, amount::text AS amount FROM "${schema}".ledger`);
      checkInvariant(
        'postgres',
        acc.rows.map((r: { b: string }) => r.b),
        led.rows,
      );
      return led.rows.length;
    } finally {
      await c.query('COMMIT');
    }
  });
}

function checkSqlite(path: string, schema: string): number {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch {
    return 0;
  }
  try {
    const t = (name: string) => sqliteIdent(sqliteTableName({ schema, name }));
    return db.transaction(() => {
      const acc = db.prepare(`SELECT CAST(balance AS TEXT) AS b FROM ${t('accounts')}`).all() as {
        b: string;
      }[];
      if (acc.length === 0) return 0;
      const led = db
        .prepare(`SELECT CAST(txn AS TEXT) AS txn, CAST(amount AS TEXT) AS amount FROM ${t('ledger')}`)
        .all() as {
        txn: string;
        amount: string;
      }[];
      checkInvariant(
        'sqlite',
        acc.map((r) => r.b),
        led,
      );
      return led.length;
    })();
  } catch (err) {
    if (err instanceof Error && /no such table/.test(err.message)) return 0;
    throw err;
  } finally {
    db.close();
  }
}

async function expectSinksEqualSource(
  url: string,
  selection: string[],
  pgUrl: string,
  sqlite: string,
): Promise<void> {
  const want = await sourceRows(url, selection);
  for (const { t, rows } of want.values()) {
    const pgRows = (await readPostgres(pgUrl, t)).map(text).sort();
    expect(pgRows.length, `postgres ${t.name}: rows`).toBe(rows.length);
    expect(pgRows, `postgres ${t.name}`).toEqual(rows);
    const liteRows = readSqlite(sqlite, t).map(text).sort();
    expect(liteRows, `sqlite ${t.name}`).toEqual(rows);
  }
}

describe('MariaDB source end to end', () => {
  it(
    `snapshot under writes, streaming, ${KILLS} SIGKILLs: PostgreSQL and SQLite equal the source, never a partial transaction`,
    { timeout: 600_000 },
    async () => {
      const db = await src.freshDatabase('e2e');
      const dst = await freshDatabase('my_dst');
      const sqlite = join(mkdtempSync(join(tmpdir(), 'tm-my-e2e-')), 'replica.db');
      await src.sql(
        db.name,
        `CREATE TABLE accounts (id INT PRIMARY KEY, balance DECIMAL(14,2) NOT NULL, note VARCHAR(40));
         CREATE TABLE ledger (txn BIGINT NOT NULL, account INT NOT NULL, amount DECIMAL(14,2) NOT NULL);
         CREATE TABLE \`Order Items\` (id INT PRIMARY KEY, \`näme\` VARCHAR(40));
         CREATE TABLE \`a.b\` (id INT PRIMARY KEY, v BIGINT);
         INSERT INTO accounts SELECT seq, 1000.00, CONCAT('acct ', seq) FROM seq_1_to_${ACCOUNTS};`,
      );
      const writer = transferWriter(db.name, 20261204);
      const config = writeConfig(`
changefeeds:
  - id: my_pg
    source: \${SRC_URL}
    sink: \${PG_URL}
    tables: ["${db.name}.*"]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 2, chunkRows: 500 }
  - id: my_lite
    source: \${SRC_URL}
    sink: \${LITE_URL}
    tables: ["${db.name}.*"]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 2, chunkRows: 500 }
`);
      const env = { SRC_URL: db.url, PG_URL: dst.url, LITE_URL: `sqlite://${sqlite}` };
      let reading = true;
      let checks = 0;
      let maxLedger = 0;
      const reader = (async () => {
        while (reading) {
          maxLedger = Math.max(
            maxLedger,
            await checkPostgres(dst.url, db.name),
            checkSqlite(sqlite, db.name),
          );
          checks++;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const random = mulberry32(20261205);
      const epochs = new Set<number>();
      try {
        for (let i = 0; i < KILLS; i++) {
          const p = runCli(['start', '--config', config], { env });
          // The first kill may land in the snapshot; the others once this process committed an
          // epoch into both sinks, so that they land mid-stream.
          if (i > 0) {
            const before = [await sinkCheckpoint(dst.url, 'my_pg'), sqliteCheckpoint(sqlite, 'my_lite')];
            const deadline = Date.now() + 120_000;
            for (;;) {
              const now = [await sinkCheckpoint(dst.url, 'my_pg'), sqliteCheckpoint(sqlite, 'my_lite')];
              if (now.every((cp, k) => cp && cp.epoch > (before[k]?.epoch ?? -1))) break;
              if (Date.now() > deadline)
                throw new Error(`no epoch committed after restart ${i}:\n${p.output()}`);
              await new Promise((r) => setTimeout(r, 100));
            }
          }
          await new Promise((r) => setTimeout(r, 1000 + Math.floor(random() * 2000)));
          p.child.kill('SIGKILL');
          expect(await p.exited, p.output()).toBe('SIGKILL');
          const cp = await sinkCheckpoint(dst.url, 'my_pg');
          if (cp) epochs.add(cp.epoch);
        }
        const txns = await writer.stop();
        const last = runCli(['start', '--config', config], { env });
        await waitCaughtUp(db.url, () => sinkCheckpoint(dst.url, 'my_pg'));
        await waitCaughtUp(db.url, () => sqliteCheckpoint(sqlite, 'my_lite'));
        last.child.kill('SIGTERM');
        expect(await last.exited, last.output()).toBe(0);
        expect(txns).toBeGreaterThan(100);
        expect(epochs.size).toBeGreaterThan(1);
      } finally {
        reading = false;
        await reader;
      }
      expect(checks).toBeGreaterThan(10);
      expect(maxLedger).toBeGreaterThan(0);
      await expectSinksEqualSource(db.url, [`${db.name}.*`], dst.url, sqlite);
    },
  );

  it(
    'add column with a default, rename column, drop column: each reaches both sinks at its position',
    { timeout: 300_000 },
    async () => {
      const db = await src.freshDatabase('ddl');
      const dst = await freshDatabase('my_ddl');
      const sqlite = join(mkdtempSync(join(tmpdir(), 'tm-my-ddl-')), 'replica.db');
      await src.sql(
        db.name,
        `CREATE TABLE \`order\` (id INT PRIMARY KEY, v INT NOT NULL, legacy VARCHAR(10));
       CREATE TABLE \`Straße.ünï\` (id INT PRIMARY KEY, \`Wert\` VARCHAR(20));
       INSERT INTO \`order\` SELECT seq, seq, CONCAT('l', seq) FROM seq_1_to_300;
       INSERT INTO \`Straße.ünï\` SELECT seq, CONCAT('w', seq) FROM seq_1_to_50;`,
      );
      const selection = [`${db.name}.*`];
      const feeds = [
        startChangefeed(testConfig({ id: 'ddl_pg', source: db.url, sink: dst.url, tables: selection }), {
          logger: silentLogger,
        }),
        startChangefeed(
          testConfig({ id: 'ddl_lite', source: db.url, sink: `sqlite://${sqlite}`, tables: selection }),
          {
            logger: silentLogger,
          },
        ),
      ];
      try {
        // Writes in every phase, each phase's statements in the shape of that phase: a barrier at
        // the wrong position would give the rows around it other values than the source's.
        const c = await src.connect(db.name);
        let n = 0;
        const writes = async (sql: (i: number) => string) => {
          for (let k = 0; k < 150; k++) {
            n++;
            await c.query(sql(n));
          }
        };
        try {
          await writes((i) => `UPDATE \`order\` SET v = v + ${i} WHERE id = ${(i % 300) + 1}`);
          await new Promise((r) => setTimeout(r, 1000));
          await c.query("ALTER TABLE `order` ADD COLUMN note VARCHAR(12) NOT NULL DEFAULT 'fresh'");
          await writes(
            (i) =>
              `INSERT INTO \`order\` (id, v, note) VALUES (${(i % 400) + 1}, ${i}, 'n${i}') ON DUPLICATE KEY UPDATE v = ${i}, note = 'u${i}'`,
          );
          await c.query('ALTER TABLE `order` RENAME COLUMN v TO amount');
          await c.query('ALTER TABLE `Straße.ünï` RENAME COLUMN `Wert` TO `Wért`');
          await writes((i) => `UPDATE \`order\` SET amount = amount - ${i} WHERE id = ${(i % 400) + 1}`);
          await writes((i) => `UPDATE \`Straße.ünï\` SET \`Wért\` = 'x${i}' WHERE id = ${(i % 50) + 1}`);
          await c.query('ALTER TABLE `order` DROP COLUMN legacy');
          await writes((i) => `INSERT INTO \`order\` (id, amount) VALUES (${1000 + i}, ${i})`);
        } finally {
          await c.end();
        }
        await waitCaughtUp(db.url, () => sinkCheckpoint(dst.url, 'ddl_pg'));
        await waitCaughtUp(db.url, () => sqliteCheckpoint(sqlite, 'ddl_lite'));
        for (const f of feeds) expect(f.status().phase).toBe('streaming');
        const pgColumns = await withClient(dst.url, async (pc) =>
          (
            await pc.query(
              `SELECT table_name || '.' || column_name AS c FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
              [db.name],
            )
          ).rows.map((r: { c: string }) => r.c),
        );
        expect(pgColumns).toEqual([
          'Straße.ünï.id',
          'Straße.ünï.Wért',
          'order.id',
          'order.amount',
          'order.note',
        ]);
        const lite = new Database(sqlite, { readonly: true });
        try {
          const cols = (name: string) =>
            (
              lite
                .prepare(`PRAGMA table_info(${sqliteIdent(sqliteTableName({ schema: db.name, name }))})`)
                .all() as {
                name: string;
              }[]
            ).map((r) => r.name);
          expect(cols('order')).toEqual(['id', 'amount', 'note']);
          expect(cols('Straße.ünï')).toEqual(['id', 'Wért']);
        } finally {
          lite.close();
        }
        await expectSinksEqualSource(db.url, selection, dst.url, sqlite);
      } finally {
        await Promise.all(feeds.map((f) => f.stop()));
      }
    },
  );

  it(
    'a table renamed while running keeps its id across a restart of the process',
    { timeout: 300_000 },
    async () => {
      const db = await src.freshDatabase('ren');
      const dst = await freshDatabase('my_ren');
      await src.sql(
        db.name,
        'CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL); INSERT INTO t SELECT seq, seq FROM seq_1_to_100',
      );
      const config = writeConfig(`
changefeeds:
  - id: ren
    source: \${SRC_URL}
    sink: \${PG_URL}
    tables: ["${db.name}.*"]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
`);
      const env = { SRC_URL: db.url, PG_URL: dst.url };
      const first = runCli(['start', '--config', config], { env });
      await waitCaughtUp(db.url, () => sinkCheckpoint(dst.url, 'ren'));
      await src.sql(db.name, 'RENAME TABLE t TO `t 2`; UPDATE `t 2` SET v = v + 1000 WHERE id <= 10');
      await waitCaughtUp(db.url, () => sinkCheckpoint(dst.url, 'ren'));
      first.child.kill('SIGTERM');
      expect(await first.exited, first.output()).toBe(0);
      // A new process describes `t 2` afresh: it must be the table replicated so far, not a new one.
      const second = runCli(['start', '--config', config], { env });
      try {
        await src.sql(
          db.name,
          'UPDATE `t 2` SET v = v + 1 WHERE id > 90; INSERT INTO `t 2` VALUES (101, 101)',
        );
        await waitCaughtUp(db.url, () => sinkCheckpoint(dst.url, 'ren'), 60_000).catch((err: unknown) => {
          throw new Error(`${String(err)}\n${second.output()}`);
        });
        const want = await sourceRows(db.url, [`${db.name}.*`]);
        const { t, rows } = want.get('t 2')!;
        expect((await readPostgres(dst.url, t)).map(text).sort()).toEqual(rows);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    },
  );
});
