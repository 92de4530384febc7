/**
 * A private MariaDB server for the sinks benchmark. `test/support/mariadb.ts` cannot be imported
 * outside vitest (it imports `onTestFinished`), so this is its start/stop path without the
 * per-test databases; returns null when `mariadbd` is not installed (the target is skipped).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { sleep } from './bench-cluster.ts';

const MARIADBD = '/usr/sbin/mariadbd';

export interface BenchMariaDb {
  /** mysql://user:pw@127.0.0.1:port/<database>, the database created empty. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startMariaDb(options: { port: number }): Promise<BenchMariaDb | null> {
  if (!existsSync(MARIADBD)) return null;
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-bench-maria-'));
  const dataDir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  execFileSync(
    'mariadb-install-db',
    [`--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asRoot],
    { stdio: 'pipe' },
  );
  const proc = spawn(
    MARIADBD,
    [
      '--no-defaults',
      `--datadir=${dataDir}`,
      `--socket=${socket}`,
      `--port=${options.port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${join(dir, 'mysqld.pid')}`,
      `--log-error=${join(dir, 'error.log')}`,
      '--innodb-buffer-pool-size=256M',
      '--innodb-flush-log-at-trx-commit=2',
      '--skip-log-bin',
      '--max-connections=50',
      ...asRoot,
    ],
    { stdio: 'ignore' },
  );
  const root = () =>
    mysql.createConnection({ socketPath: socket, user: 'root', password: '', multipleStatements: true });
  const query = async (sql: string) => {
    const c = await root();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  const stop = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const user = 'tidemark';
  const password = 'tidemark-bench-pw';
  try {
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) throw new Error('mariadbd exited during start');
      try {
        await query('SELECT 1');
        break;
      } catch (err) {
        if (i > 300) throw err;
        await sleep(200);
      }
    }
    await query(
      `CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL ON *.* TO '${user}'@'127.0.0.1';`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    async createDatabase(name) {
      await query(`CREATE DATABASE \`${name}\``);
      return `mysql://${user}:${password}@127.0.0.1:${options.port}/${name}`;
    },
    stop,
  };
}
