/**
 * MariaDB → MariaDB (the MySQL sink, on a second server) under repeated SIGKILLs of the tidemark
 * process (the real CLI), the transfer workload writing throughout: a reader checks its
 * invariants (constant total, every transfer whole) in every consistent read of the sink, and at
 * the end the sink equals the source row for row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import { mysqlCheckpoint, readMysql } from '../sink-contract/readers.ts';
import { killRepeatedly, runCli, writeConfig } from '../support/cli-process.ts';
import { startMariaDb, type MariaDb } from '../support/mariadb.ts';
import {
  expectMariaDbEqual,
  REPL_PASSWORD,
  startMariaDbSource,
  waitMariaDbCaughtUp,
  type MariaDbSource,
} from '../support/mariadb-source.ts';
import { freePort } from '../support/pg-cluster.ts';
import { checkTransfersMysql, invariantReader } from '../support/transfer-readers.ts';
import { mariaDbTransferTablesSql, startMariaDbTransferWriter } from '../support/transfer-workload.ts';

const ACCOUNTS = 500;
const KILLS = 3;

let src: MariaDbSource;
let sink: MariaDb;

beforeAll(async () => {
  [src, sink] = await Promise.all([
    startMariaDbSource({ port: await freePort(55781) }),
    startMariaDb({ port: await freePort(55787) }),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all([src?.stop(), sink?.stop()]);
});

const FEED = `
    tables: ["$DB.*"]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 2, chunkRows: 500 }`;

describe('MariaDB → MariaDB under repeated SIGKILL', () => {
  it(
    `MariaDB → MariaDB, the transfer workload, ${KILLS} SIGKILLs: every read whole, the sink equals the source`,
    { timeout: 300_000 },
    async () => {
      const db = await src.freshDatabase('to_maria');
      const dst = await sink.freshDatabase('from_maria');
      await src.sql(db.name, mariaDbTransferTablesSql(ACCOUNTS));
      const writer = startMariaDbTransferWriter(() => src.connect(db.name), {
        seed: 20261206,
        accounts: ACCOUNTS,
      });
      const config = writeConfig(`
changefeeds:
  - id: my_my
    source: \${SRC_URL}
    sink: \${DST_URL}${FEED.replace('$DB', db.name)}
`);
      const env = { SRC_URL: db.url, DST_URL: dst.url };
      const reader = invariantReader([() => checkTransfersMysql(dst.url, db.name, ACCOUNTS)]);
      let txns = 0;
      try {
        const epochs = await killRepeatedly({
          config,
          env,
          kills: KILLS,
          random: mulberry32(20261207),
          checkpoints: async () => [await mysqlCheckpoint(dst.url, 'my_my')],
        });
        txns = await writer.stop();
        const last = runCli(['start', '--config', config], { env });
        await waitMariaDbCaughtUp(src, () => mysqlCheckpoint(dst.url, 'my_my'));
        last.child.kill('SIGTERM');
        expect(await last.exited, last.output()).toBe(0);
        expect(epochs.size).toBeGreaterThan(1);
      } finally {
        await writer.stop();
        const { reads, maxLedger } = await reader.stop();
        console.log(
          `mariadb → mariadb: ${txns} transfers, ${reads} invariant reads, ledger up to ${maxLedger} rows`,
        );
        expect(reads).toBeGreaterThan(10);
        expect(maxLedger).toBeGreaterThan(0);
      }
      expect(txns).toBeGreaterThan(100);
      await expectMariaDbEqual(src, db.name, { mysql: (t) => readMysql(dst.url, t) });
    },
  );

  it(
    'binlogs purged while tidemark was down: the restart fails with SOURCE_BINLOG_PURGED naming the position and the fix; the sink keeps its last state',
    { timeout: 180_000 },
    async () => {
      const db = await src.freshDatabase('purged');
      const dst = await sink.freshDatabase('purged_sink');
      await src.sql(db.name, mariaDbTransferTablesSql(ACCOUNTS));
      const config = writeConfig(`
changefeeds:
  - id: my_down
    source: \${SRC_URL}
    sink: \${DST_URL}${FEED.replace('$DB', db.name)}
`);
      const env = { SRC_URL: db.url, DST_URL: dst.url };
      const first = runCli(['start', '--config', config], { env });
      await waitMariaDbCaughtUp(src, () => mysqlCheckpoint(dst.url, 'my_down'));
      first.child.kill('SIGTERM');
      expect(await first.exited, first.output()).toBe(0);
      const kept = (await mysqlCheckpoint(dst.url, 'my_down'))!;
      // Down: transfers, then every binlog but a new one purged.
      const writer = startMariaDbTransferWriter(() => src.connect(db.name), { seed: 7, accounts: ACCOUNTS });
      await new Promise((r) => setTimeout(r, 300));
      await writer.stop();
      await src.sql(null, 'FLUSH BINARY LOGS');
      const [last] = (await src.sql(null, 'SHOW MASTER STATUS')) as { File: string }[];
      for (;;) {
        await src.sql(null, `PURGE BINARY LOGS TO '${last!.File}'`);
        const logs = (await src.sql(null, 'SHOW BINARY LOGS')) as unknown[];
        if (logs.length === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // Its only changefeed failed for good: the process reports it and stops by itself.
      const second = runCli(['start', '--config', config], { env });
      const timer = setTimeout(() => second.child.kill('SIGTERM'), 60_000);
      expect(await second.exited, second.output()).toBe(1);
      clearTimeout(timer);
      const out = second.output();
      expect(out).toContain('SOURCE_BINLOG_PURGED');
      expect(out).toContain(`continues from GTID ${kept.position}`);
      expect(out).toContain(`${last!.File}, from GTID`);
      expect(out).toMatch(/reset them/);
      expect(out).not.toContain(REPL_PASSWORD);
      expect(await mysqlCheckpoint(dst.url, 'my_down')).toEqual(kept);
      expect(await checkTransfersMysql(dst.url, db.name, ACCOUNTS)).toBe(0);
    },
  );
});
