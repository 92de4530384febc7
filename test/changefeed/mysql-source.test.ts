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
import { silentLogger } from '../../src/runtime/logger.ts';
import { sqliteIdent, sqliteTableName } from '../../src/sink/sqlite/sqlite-table-writer.ts';
import { readPostgres, readSqlite, sqliteCheckpoint } from '../sink-contract/readers.ts';
import { sinkCheckpoint, testConfig, withClient } from '../support/changefeed.ts';
import { killRepeatedly, runCli, writeConfig } from '../support/cli-process.ts';
import { freshDatabase } from '../support/db.ts';
import { startChangefeed } from '../support/engine.ts';
import {
  readMariaDbSource,
  rowText,
  startMariaDbSource,
  waitMariaDbCaughtUp,
  type MariaDbSource,
} from '../support/mariadb-source.ts';
import { freePort } from '../support/pg-cluster.ts';
import { checkTransfersPostgres, checkTransfersSqlite } from '../support/transfer-readers.ts';
import { mariaDbTransferTablesSql, startMariaDbTransferWriter } from '../support/transfer-workload.ts';

const ACCOUNTS = 2000;
const KILLS = 4;

let src: MariaDbSource;

beforeAll(async () => {
  src = await startMariaDbSource({ port: await freePort(55771) });
}, 180_000);

afterAll(async () => {
  await src?.stop();
});

const sourceRows = readMariaDbSource;
const text = rowText;
const waitCaughtUp = (
  _url: string,
  checkpoint: () => Promise<{ position: string } | null> | { position: string } | null,
  timeoutMs?: number,
) => waitMariaDbCaughtUp(src, checkpoint, timeoutMs);

/** The transfer workload, plus upserts and deletes on the tables with odd names. */
function transferWriter(db: string, seed: number): { stop(): Promise<number> } {
  return startMariaDbTransferWriter(() => src.connect(db), {
    seed,
    accounts: ACCOUNTS,
    extra: async (c, n) => {
      if (n % 7 === 0) {
        await c.query(
          'INSERT INTO `Order Items` (id, `näme`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `näme` = VALUES(`näme`)',
          [n % 50, `item ${n}`],
        );
      }
      if (n % 11 === 0) await c.query('DELETE FROM `a.b` WHERE id = ?', [n % 30]);
      if (n % 13 === 0) await c.query('REPLACE INTO `a.b` (id, v) VALUES (?, ?)', [n % 30, n]);
    },
  });
}

async function expectSinksEqualPostgres(url: string, selection: string[], pgUrl: string): Promise<void> {
  for (const { t, rows } of (await sourceRows(url, selection)).values()) {
    const pgRows = (await readPostgres(pgUrl, t)).map(text).sort();
    expect(pgRows.length, `postgres ${t.name}: rows`).toBe(rows.length);
    expect(pgRows, `postgres ${t.name}`).toEqual(rows);
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
        `${mariaDbTransferTablesSql(ACCOUNTS)}
         CREATE TABLE \`Order Items\` (id INT PRIMARY KEY, \`näme\` VARCHAR(40));
         CREATE TABLE \`a.b\` (id INT PRIMARY KEY, v BIGINT);`,
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
            await checkTransfersPostgres(dst.url, db.name, ACCOUNTS),
            checkTransfersSqlite(sqlite, db.name, ACCOUNTS),
          );
          checks++;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      let epochs: Set<number>;
      try {
        epochs = await killRepeatedly({
          config,
          env,
          kills: KILLS,
          random: mulberry32(20261205),
          checkpoints: async () => [
            await sinkCheckpoint(dst.url, 'my_pg'),
            sqliteCheckpoint(sqlite, 'my_lite'),
          ],
        });
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

  it(
    'status: lag in seconds and binlog bytes grows while the sink is held, and returns to 0; known again after a restart',
    { timeout: 180_000 },
    async () => {
      const db = await src.freshDatabase('lag');
      const dst = await freshDatabase('my_lag');
      await src.sql(
        db.name,
        'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(200)); INSERT INTO t VALUES (0, NULL)',
      );
      const cfg = testConfig({ id: 'lag', source: db.url, sink: dst.url, tables: [`${db.name}.*`] });
      const until = async (what: string, f: () => boolean, timeoutMs = 60_000) => {
        const deadline = Date.now() + timeoutMs;
        while (!f()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      let feed = startChangefeed(cfg, { logger: silentLogger });
      try {
        await waitCaughtUp(db.url, () => sinkCheckpoint(dst.url, 'lag'));
        await until('lag 0 while streaming', () => feed.status().lagBytes === 0);
        // The sink's table locked: epochs cannot commit, the source moves on.
        const lagged = await withClient(dst.url, async (c) => {
          await c.query('BEGIN');
          await c.query(`LOCK TABLE "${db.name}".t IN ACCESS EXCLUSIVE MODE`);
          try {
            await src.sql(db.name, `INSERT INTO t SELECT seq, REPEAT('x', 200) FROM seq_1_to_500`);
            await until('lag over 100 kB and 1 s', () => {
              const s = feed.status();
              return (s.lagBytes ?? 0) > 100_000 && (s.lagMs ?? 0) >= 1000;
            });
            return feed.status();
          } finally {
            await c.query('ROLLBACK');
          }
        });
        console.log(`lag while the sink was held: ${lagged.lagMs} ms, ${lagged.lagBytes} bytes`);
        await waitCaughtUp(db.url, () => sinkCheckpoint(dst.url, 'lag'));
        await until('lag back to 0', () => feed.status().lagBytes === 0 && feed.status().lagMs === 0);
        // A restart reads its checkpoint back from the sink: lag is known again while idle.
        await feed.stop();
        feed = startChangefeed(cfg, { logger: silentLogger });
        await until('streaming after the restart', () => feed.status().phase === 'streaming');
        await until('lag bytes known after the restart', () => feed.status().lagBytes !== null, 10_000);
        expect(feed.status().lagBytes).toBe(0);
      } finally {
        await feed.stop();
      }
    },
  );

  it(
    "a source user whose statements an operator limits (MAX_STATEMENT_TIME 0.001 s): Tidemark's sessions lift it, the copy lands whole",
    { timeout: 180_000 },
    async () => {
      const db = await src.freshDatabase('limits');
      const dst = await freshDatabase('my_limits');
      await src.sql(
        db.name,
        `CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(200));
         INSERT INTO t SELECT seq, REPEAT(MD5(seq), 3) FROM seq_1_to_200000;`,
      );
      await src.server.query(
        `CREATE USER IF NOT EXISTS 'tm_limited'@'127.0.0.1' IDENTIFIED BY 'pw' WITH MAX_STATEMENT_TIME 0.001;
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'tm_limited'@'127.0.0.1';`,
      );
      const url = new URL(db.url);
      url.username = 'tm_limited';
      url.password = 'pw';
      const cfg = testConfig({
        id: 'limits',
        source: url.toString(),
        sink: dst.url,
        tables: [`${db.name}.*`],
      });
      const feed = startChangefeed(cfg, { logger: silentLogger });
      try {
        await src.sql(db.name, 'UPDATE t SET v = NULL WHERE id % 1000 = 0; DELETE FROM t WHERE id % 777 = 0');
        await waitCaughtUp(db.url, () => sinkCheckpoint(dst.url, 'limits'));
        expect(feed.status().error).toBeNull();
      } finally {
        await feed.stop();
      }
      await expectSinksEqualPostgres(db.url, [`${db.name}.*`], dst.url);
    },
  );
});
