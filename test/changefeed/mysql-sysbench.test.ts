/**
 * `sysbench oltp_write_only` and the transfer workload at once on a MariaDB source, replicated to
 * PostgreSQL and SQLite under repeated SIGKILLs of the tidemark process (the real CLI): a reader
 * checks the transfer invariants (constant total, every transfer whole) in every read of both,
 * and at the end each equals the source row for row, sysbench's tables included.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import { readPostgres, readSqlite, sqliteCheckpoint } from '../sink-contract/readers.ts';
import { sinkCheckpoint } from '../support/changefeed.ts';
import { killRepeatedly, runCli, writeConfig } from '../support/cli-process.ts';
import { freshDatabase } from '../support/db.ts';
import {
  expectMariaDbEqual,
  startMariaDbSource,
  waitMariaDbCaughtUp,
  type MariaDbSource,
} from '../support/mariadb-source.ts';
import { freePort } from '../support/pg-cluster.ts';
import {
  checkTransfersPostgres,
  checkTransfersSqlite,
  invariantReader,
} from '../support/transfer-readers.ts';
import { mariaDbTransferTablesSql, startMariaDbTransferWriter } from '../support/transfer-workload.ts';

const ACCOUNTS = 500;
const KILLS = 3;

let src: MariaDbSource;

beforeAll(async () => {
  ensureSysbench();
  src = await startMariaDbSource({ port: await freePort(55783) });
}, 180_000);

afterAll(async () => {
  await src?.stop();
});

/** Debian's sysbench (scripts/ensure-services.sh installs it; a developer's machine may lack it). */
function ensureSysbench(): void {
  try {
    execFileSync('sysbench', ['--version'], { stdio: 'ignore' });
  } catch {
    execFileSync('flock', ['/tmp/apt.lock', 'sh', '-c', 'apt-get update && apt-get install -y sysbench'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
}

/** `sysbench oltp_write_only <command>` on `database` of the source, as root over TCP. */
function sysbench(
  database: string,
  args: string[],
): { exited: Promise<number | string>; stop(): void; output(): string } {
  const child = spawn(
    'sysbench',
    [
      'oltp_write_only',
      '--db-driver=mysql',
      '--mysql-host=127.0.0.1',
      `--mysql-port=${src.server.port}`,
      `--mysql-user=${src.server.user}`,
      `--mysql-password=${src.server.password}`,
      `--mysql-db=${database}`,
      '--tables=2',
      '--table-size=2000',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-8000)));
  child.stderr.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-8000)));
  return {
    exited: new Promise((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1))),
    stop: () => child.kill('SIGTERM'),
    output: () => out,
  };
}

const FEED = `
    tables: ["$DB.*"]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 2, chunkRows: 500 }`;

describe('sysbench on a MariaDB source under repeated SIGKILL', () => {
  it(
    `sysbench oltp_write_only and transfers → PostgreSQL and SQLite, ${KILLS} SIGKILLs: every read whole, both equal the source`,
    { timeout: 300_000 },
    async () => {
      const db = await src.freshDatabase('sysbench');
      const pg = await freshDatabase('my_sysbench');
      const sqlite = join(mkdtempSync(join(tmpdir(), 'tm-my-sysbench-')), 'replica.db');
      await src.sql(db.name, mariaDbTransferTablesSql(ACCOUNTS));
      const prepare = sysbench(db.name, ['prepare']);
      expect(await prepare.exited, prepare.output()).toBe(0);
      const checksum = async () =>
        ((await src.sql(db.name, 'CHECKSUM TABLE sbtest1, sbtest2')) as { Checksum: number }[]).map(
          (r) => r.Checksum,
        );
      const prepared = await checksum();
      // Transactions in the binlog (one domain): the run's minus the transfers are sysbench's.
      const gtidSeq = async () =>
        Number(
          ((await src.sql(null, 'SELECT @@global.gtid_binlog_pos AS g')) as { g: string }[])[0]!.g.split(
            '-',
          )[2],
        );
      const seqBefore = await gtidSeq();
      // Rate-limited: two cores are shared with the CLI, both sinks and the other test files.
      const load = sysbench(db.name, ['--threads=2', '--rate=150', '--time=600', '--rand-seed=42', 'run']);
      const writer = startMariaDbTransferWriter(() => src.connect(db.name), {
        seed: 20261208,
        accounts: ACCOUNTS,
        perSecond: 200,
      });
      const config = writeConfig(`
changefeeds:
  - id: sb_pg
    source: \${SRC_URL}
    sink: \${PG_URL}${FEED.replace('$DB', db.name)}
  - id: sb_lite
    source: \${SRC_URL}
    sink: \${LITE_URL}${FEED.replace('$DB', db.name)}
`);
      const env = { SRC_URL: db.url, PG_URL: pg.url, LITE_URL: `sqlite://${sqlite}` };
      const reader = invariantReader([
        () => checkTransfersPostgres(pg.url, db.name, ACCOUNTS),
        () => checkTransfersSqlite(sqlite, db.name, ACCOUNTS),
      ]);
      let txns = 0;
      let sysbenchTxns = 0;
      try {
        const epochs = await killRepeatedly({
          config,
          env,
          kills: KILLS,
          random: mulberry32(20261209),
          checkpoints: async () => [
            await sinkCheckpoint(pg.url, 'sb_pg'),
            sqliteCheckpoint(sqlite, 'sb_lite'),
          ],
        });
        load.stop();
        await load.exited;
        txns = await writer.stop();
        sysbenchTxns = (await gtidSeq()) - seqBefore - txns;
        const last = runCli(['start', '--config', config], { env });
        await waitMariaDbCaughtUp(src, () => sinkCheckpoint(pg.url, 'sb_pg'));
        await waitMariaDbCaughtUp(src, () => sqliteCheckpoint(sqlite, 'sb_lite'));
        last.child.kill('SIGTERM');
        expect(await last.exited, last.output()).toBe(0);
        expect(epochs.size).toBeGreaterThan(1);
      } finally {
        load.stop();
        await writer.stop();
        const { reads, maxLedger } = await reader.stop();
        console.log(
          `sysbench + transfers: ${sysbenchTxns} sysbench transactions, ${txns} transfers, ${reads} invariant reads, ledger up to ${maxLedger} rows`,
        );
        expect(reads).toBeGreaterThan(10);
        expect(maxLedger).toBeGreaterThan(0);
      }
      expect(txns).toBeGreaterThan(100);
      expect(sysbenchTxns).toBeGreaterThan(100);
      const changed = await checksum();
      expect(
        changed.every((c, i) => c !== prepared[i]),
        'sysbench changed both tables',
      ).toBe(true);
      const tables = await expectMariaDbEqual(src, db.name, {
        postgres: (t) => readPostgres(pg.url, t),
        sqlite: (t) => readSqlite(sqlite, t),
      });
      console.log(`sysbench + transfers, equal downstream: ${tables.join(', ')}`);
    },
  );
});
