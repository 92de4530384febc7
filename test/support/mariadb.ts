/**
 * A private MariaDB instance for tests: its own datadir and socket in a temp dir, 127.0.0.1 on a
 * given port, a password user (so the wrong-password test is real). Installs Debian's
 * `mariadb-server` if `mariadbd` is missing. Use:
 *
 *   const maria = await startMariaDb({ port: 33306 });   // beforeAll
 *   const db = await maria.freshDatabase();              // per test: { name, url }
 *   await maria.stop();                                  // afterAll
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { PortTakenError, withFreePort } from './ports.ts';

export interface MariaDb {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  url(database: string): string;
  /** A new empty database, dropped when the test finishes (inside vitest only). */
  freshDatabase(label?: string): Promise<{ name: string; url: string }>;
  /** A new empty database named `name` (benchmarks); returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** The server's private directory (data, binary logs, socket). */
  readonly dir: string;
  /** Runs SQL as root over the socket. */
  query(sql: string, params?: unknown[]): Promise<unknown>;
  stop(): Promise<void>;
}

const MARIADBD = '/usr/sbin/mariadbd';

export function ensureMariaDbInstalled(): void {
  if (existsSync(MARIADBD)) return;
  execFileSync(
    'flock',
    ['/tmp/apt.lock', 'sh', '-c', 'apt-get update && apt-get install -y mariadb-server'],
    {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    },
  );
}

/** Whether Debian's MariaDB server is installed (benchmarks skip their MySQL target without it). */
export function mariaDbInstalled(): boolean {
  return existsSync(MARIADBD);
}

/**
 * The binary log a source test needs (`undefined`: none, as a sink needs none). Each field is the
 * server option of the same name; the defaults are what a Tidemark source requires, so a
 * bad-input test overrides one of them.
 */
export interface BinlogOptions {
  /** `binlog_format` (default `ROW`). */
  readonly format?: 'ROW' | 'STATEMENT' | 'MIXED';
  /** `binlog_row_image` (default `FULL`). */
  readonly rowImage?: 'FULL' | 'MINIMAL' | 'NOBLOB';
  /** `binlog_row_metadata` (default `FULL`: column names, signedness, keys in each table map). */
  readonly rowMetadata?: 'FULL' | 'MINIMAL' | 'NO_LOG';
  /** `server_id` (default 1). */
  readonly serverId?: number;
  /** `gtid_domain_id` (default 0). */
  readonly domainId?: number;
  /** `binlog_checksum` (default `CRC32`). */
  readonly checksum?: 'CRC32' | 'NONE';
  /** `max_binlog_size` in bytes (default 1 GiB; small to force rotations). */
  readonly maxBinlogSize?: number;
}

export async function startMariaDb(options: {
  /** The first port tried; if it is taken when the server binds, another free one (see ports.ts). */
  port: number;
  bufferPoolMb?: number;
  /** Turns the binary log on (a replication source); off by default. */
  binlog?: BinlogOptions;
}): Promise<MariaDb> {
  ensureMariaDbInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-maria-'));
  const dataDir = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  // Its own temporary directory: bootstraps running at once in the shared /tmp failed deleting
  // their temporary tables ("Error on delete of '/tmp/#sql-temptable-…' (Errcode: 2)").
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  execFileSync(
    'mariadb-install-db',
    [
      `--datadir=${dataDir}`,
      `--tmpdir=${tmp}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      ...asRoot,
    ],
    { stdio: 'pipe' },
  );
  const errLog = join(dir, 'error.log');
  const root = () =>
    mysql.createConnection({ socketPath: socket, user: 'root', password: '', multipleStatements: true });
  const launch = async (port: number): Promise<ChildProcess> => {
    writeFileSync(errLog, '');
    const p: ChildProcess = spawn(
      MARIADBD,
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--tmpdir=${tmp}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${join(dir, 'mysqld.pid')}`,
        `--log-error=${errLog}`,
        `--innodb-buffer-pool-size=${options.bufferPoolMb ?? 128}M`,
        '--innodb-flush-log-at-trx-commit=2',
        ...binlogArgs(options.binlog),
        '--max-connections=200',
        ...asRoot,
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 60_000;
    // Through the socket in the server's own directory, which it creates after binding TCP: a
    // server of someone else on the port never answers here.
    for (;;) {
      if (p.exitCode !== null) {
        const log = tail(errLog);
        if (/Address already in use/.test(log)) throw new PortTakenError(port, log);
        throw new Error(`mariadbd exited during start:\n${log}`);
      }
      try {
        const c = await root();
        await c.end();
        return p;
      } catch (err) {
        if (Date.now() > deadline) {
          p.kill('SIGKILL');
          throw new Error(`mariadbd did not start: ${String(err)}\n${tail(errLog)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  let port = options.port;
  const proc = await withFreePort(options.port, (p) => {
    port = p;
    return launch(p);
  });
  const user = 'tidemark';
  const password = 'tidemark-maria-pw';
  const query = async (sql: string, params?: unknown[]) => {
    const c = await root();
    try {
      return (await c.query(sql, params))[0];
    } finally {
      await c.end();
    }
  };
  await query(
    `CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL ON *.* TO '${user}'@'127.0.0.1';`,
  );
  const url = (database: string) => `mysql://${user}:${password}@127.0.0.1:${port}/${database}`;
  return {
    port,
    dir,
    user,
    password,
    url,
    query,
    async createDatabase(name) {
      await query(`CREATE DATABASE \`${name}\``);
      return url(name);
    },
    async freshDatabase(label = 'db') {
      const name = `t_${label.replace(/\W/g, '_').slice(0, 20)}_${randomBytes(5).toString('hex')}`;
      await query(`CREATE DATABASE \`${name}\``);
      // Imported here, so benchmarks can start a server outside vitest.
      const { onTestFinished } = await import('vitest');
      onTestFinished(async () => {
        await query(`DROP DATABASE IF EXISTS \`${name}\``);
      });
      return { name, url: url(name) };
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function binlogArgs(b: BinlogOptions | undefined): string[] {
  if (b === undefined) return ['--skip-log-bin'];
  return [
    '--log-bin=mariadb-bin',
    `--binlog-format=${b.format ?? 'ROW'}`,
    `--binlog-row-image=${b.rowImage ?? 'FULL'}`,
    `--binlog-row-metadata=${b.rowMetadata ?? 'FULL'}`,
    `--server-id=${b.serverId ?? 1}`,
    `--gtid-domain-id=${b.domainId ?? 0}`,
    `--binlog-checksum=${b.checksum ?? 'CRC32'}`,
    `--max-binlog-size=${b.maxBinlogSize ?? 1024 * 1024 * 1024}`,
    '--gtid-strict-mode=1',
  ];
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-4000);
  } catch {
    return '';
  }
}
