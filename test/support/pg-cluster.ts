/**
 * Starts a private PostgreSQL cluster for tests and benchmarks: its own data directory in a temp
 * dir, 127.0.0.1 only, a non-default port, wal_level=logical, password auth over TCP (so the
 * wrong-password test is real). PostgreSQL 15 from Debian by default; initdb refuses root, so as
 * root it runs as the `postgres` user.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PortTakenError, withFreePort } from './ports.ts';

// Where tests imported it from before ports.ts existed.
export { freePort } from './ports.ts';

export interface PgCluster {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly binDir: string;
  /** postgres://user:password@127.0.0.1:port/dbname */
  url(dbname: string): string;
  /** Stops the server (immediate shutdown, like a crash or a pulled plug), keeping its data. */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port and data; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Stops the server for good and deletes its data. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** The first port tried; if it is taken when the server binds, another free one (see ports.ts). */
  port: number;
  binDir?: string;
  /** Extra postgresql.conf lines. */
  settings?: Record<string, string | number>;
  walLevel?: 'logical' | 'replica';
  /**
   * The whole pg_hba.conf (e.g. `hostssl` lines only); keep `local all all trust`: the start
   * probe connects through the cluster's own Unix socket.
   */
  hba?: string;
}

const DEFAULT_BIN = '/usr/lib/postgresql/15/bin';

function asPostgresArgs(cmd: string, args: string[]): [string, string[]] {
  const isRoot = process.getuid?.() === 0;
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

export async function startCluster(options: StartClusterOptions): Promise<PgCluster> {
  const binDir = options.binDir ?? DEFAULT_BIN;
  if (!existsSync(join(binDir, 'initdb'))) {
    throw new Error(`PostgreSQL binaries not found in ${binDir} (expected PostgreSQL 15 from Debian)`);
  }
  const user = 'tidemark';
  const password = 'tidemark-test-pw';
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-pg-'));
  const isRoot = process.getuid?.() === 0;
  if (isRoot) execFileSync('chown', ['postgres:postgres', dir]);
  chmodSync(dir, 0o700);
  const dataDir = join(dir, 'data');
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, password);
  if (isRoot) execFileSync('chown', ['postgres:postgres', pwFile]);
  const [initCmd, initArgs] = asPostgresArgs(join(binDir, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    user,
    `--pwfile=${pwFile}`,
    '-A',
    'scram-sha-256',
    '--auth-local=trust',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
    '--no-sync',
  ]);
  execFileSync(initCmd, initArgs, { stdio: 'pipe' });
  const settings: Record<string, string | number> = {
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dir}'`,
    wal_level: options.walLevel ?? 'logical',
    max_replication_slots: 64,
    max_wal_senders: 64,
    max_connections: 400,
    max_prepared_transactions: 20,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: "'256MB'",
    max_wal_size: "'4GB'",
    wal_sender_timeout: "'60s'",
    logging_collector: 'off',
    ...options.settings,
  };
  appendFileSync(
    join(dataDir, 'postgresql.conf'),
    Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join(''),
  );
  if (options.hba !== undefined) writeFileSync(join(dataDir, 'pg_hba.conf'), options.hba);
  let port = options.port;
  const url = (db: string) => `postgres://${user}:${password}@127.0.0.1:${port}/${db}`;
  let proc: ChildProcess;
  let stderr = '';
  const launch = async () => {
    // The port on the command line, so a retry on another port needs no config edit.
    const [cmd, args] = asPostgresArgs(join(binDir, 'postgres'), ['-D', dataDir, '-p', String(port)]);
    const p: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    proc = p;
    stderr = '';
    p.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
    });
    const closed = new Promise((r) => p.once('close', r));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (p.exitCode !== null) {
        await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
        if (/Address already in use/.test(stderr)) throw new PortTakenError(port, stderr);
        throw new Error(`PostgreSQL exited during start:\n${stderr}`);
      }
      // Through the Unix socket in the cluster's own directory: a server of someone else that
      // holds the TCP port (same user and password: another test cluster) must not answer.
      // PostgreSQL creates its Unix socket after binding TCP, so an answer here means both.
      const c = new pg.Client({ host: dir, port, user, database: 'postgres' });
      try {
        await c.connect();
        await c.end();
        break;
      } catch (err) {
        await c.end().catch(() => {});
        if (Date.now() > deadline) throw new Error(`PostgreSQL did not start: ${String(err)}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  // As root the child is `runuser`, which does not forward signals: stop the postmaster itself
  // with pg_ctl and wait, so the port is free afterwards.
  const shutdown = async (mode: 'fast' | 'immediate') => {
    if (proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    const [ctl, ctlArgs] = asPostgresArgs(join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', mode, '-w', 'stop']);
    try {
      execFileSync(ctl, ctlArgs, { stdio: 'ignore', timeout: 30_000 });
    } catch {
      proc.kill('SIGKILL');
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    proc.stderr?.destroy();
  };
  await withFreePort(options.port, async (p) => {
    port = p;
    await launch();
  });
  return {
    port,
    user,
    password,
    binDir,
    url,
    halt: () => shutdown('immediate'),
    restart: launch,
    async stop() {
      await shutdown('fast');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
