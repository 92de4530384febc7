/**
 * Benchmark `mysql-source`: binlog catch-up through the MariaDB connector, beside
 * `mariadb-binlog --read-from-remote-server` decoding the same binlog range to /dev/null.
 *
 *   private MariaDB (row binlog, FULL image + metadata, GTID) ─► FLUSH BINARY LOGS (range starts)
 *   ─► sysbench oltp_write_only prepare (bulk inserts) + run (update/update/delete/insert txns)
 *   ─► tidemark: MysqlConnector.replicate(after = start) until the end GTID: rows/s
 *   ─► baseline: mariadb-binlog --read-from-remote-server --base64-output=decode-rows -v
 *                <first file> --to-last-log > /dev/null: the same rows / its wall time
 *
 * Both read over TCP from the same server; the row count is the connector's (each row change
 * once). `--rows N` sets the prepared table rows (default 200,000; the run adds N/10 events of
 * four row changes each).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MysqlConnector } from '../src/source/mysql/mysql-connector.ts';
import type { BinlogPosition } from '../src/source/mysql/binlog-position.ts';
import { startMariaDb, mariaDbInstalled } from '../test/support/mariadb.ts';
import { freePort } from '../test/support/pg-cluster.ts';
import type { BenchOptions, BenchResult } from './report.ts';

const run = promisify(execFile);

export async function runMysqlSource(options: BenchOptions): Promise<BenchResult | null> {
  if (!mariaDbInstalled()) {
    options.log('mariadbd is not installed: skipped');
    return null;
  }
  const tableRows = options.rows ?? 200_000;
  const tables = 4;
  const events = Math.max(1000, Math.floor(tableRows / 10));
  const port = await freePort(55761);
  const maria = await startMariaDb({ port, bufferPoolMb: 256, binlog: {} });
  try {
    await maria.query('CREATE DATABASE sbtest');
    await maria.query('FLUSH BINARY LOGS');
    const [status] = (await maria.query('SHOW MASTER STATUS')) as { File: string }[];
    const file = status!.File;
    const gtidPos = async () =>
      ((await maria.query('SELECT @@gtid_binlog_pos AS g')) as { g: string }[])[0]!.g;
    const startGtid = await gtidPos();
    const sb = (...args: string[]) =>
      run(
        'sysbench',
        [
          'oltp_write_only',
          '--db-driver=mysql',
          '--mysql-host=127.0.0.1',
          `--mysql-port=${port}`,
          `--mysql-user=${maria.user}`,
          `--mysql-password=${maria.password}`,
          '--mysql-db=sbtest',
          `--tables=${tables}`,
          `--table-size=${Math.ceil(tableRows / tables)}`,
          ...args,
        ],
        { maxBuffer: 64 * 1024 * 1024 },
      );
    options.log(`sysbench prepare: ${tables} tables × ${Math.ceil(tableRows / tables)} rows`);
    await sb('prepare');
    options.log(`sysbench oltp_write_only run: ${events} transactions`);
    await sb('--threads=2', `--events=${events}`, '--time=0', '--rand-seed=42', 'run');
    const endGtid = await gtidPos();
    const logs = (await maria.query('SHOW BINARY LOGS')) as { Log_name: string; File_size: number }[];
    const size = logs.filter((l) => l.Log_name >= file).reduce((n, l) => n + Number(l.File_size), 0);
    options.log(`binlog range ${file}… ${(size / 1e6).toFixed(1)} MB, GTID ${startGtid} → ${endGtid}`);

    const url = maria.url('sbtest');
    const connector = new MysqlConnector({ uri: url });
    let rows = 0;
    let seconds: number;
    try {
      const known = (await connector.describe(['sbtest.*'])).tables;
      await connector.capture(known);
      const end = connector.positions.parse(endGtid);
      const t0 = process.hrtime.bigint();
      const session = await connector.replicate({
        after: connector.positions.parse(startGtid),
        knownTables: known,
        acceptStartAfter: () => false,
      });
      let last: BinlogPosition | null = null;
      for await (const batch of session.events) {
        for (const e of batch) {
          if (e.tag === 'insert' || e.tag === 'update' || e.tag === 'delete') rows++;
          else if (e.tag === 'commit') last = e.position;
        }
        if (last !== null && last.compare(end) >= 0) break;
      }
      seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      await session.close();
    } finally {
      await connector.close();
    }
    options.log(`tidemark: ${rows} row changes in ${seconds.toFixed(2)} s`);

    const t1 = process.hrtime.bigint();
    await run(
      'sh',
      [
        '-c',
        `mariadb-binlog --read-from-remote-server --host=127.0.0.1 --port=${port} --user=${maria.user} --password="$PW" --base64-output=decode-rows --verbose ${file} --to-last-log > /dev/null`,
      ],
      { env: { ...process.env, PW: maria.password }, maxBuffer: 1024 * 1024 },
    );
    const baselineSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
    options.log(`mariadb-binlog: ${baselineSeconds.toFixed(2)} s`);
    return {
      name: 'mysql-source',
      figures: [
        {
          metric: 'catch-up row changes/s',
          tidemark: rows / seconds,
          baseline: rows / baselineSeconds,
          baselineName: 'mariadb-binlog -v > /dev/null',
          unit: 'rows/s',
          higherIsBetter: true,
        },
        {
          metric: 'catch-up binlog MB/s',
          tidemark: size / 1e6 / seconds,
          baseline: size / 1e6 / baselineSeconds,
          baselineName: 'mariadb-binlog -v > /dev/null',
          unit: 'MB/s',
          higherIsBetter: true,
        },
      ],
      notes: [
        `${rows} row changes (${tableRows} prepared rows + ${events} oltp_write_only transactions), ${(size / 1e6).toFixed(1)} MB of binlog, both readers over TCP from the same server.`,
        'tidemark = binlog dump, CRC32 check, event and row decode into text cells, transaction assembly (SourceEvents); baseline = mariadb-binlog decoding rows to pseudo-SQL into /dev/null.',
      ],
    };
  } finally {
    await maria.stop();
  }
}

export { runMysqlSource as run };
