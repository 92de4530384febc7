/**
 * A changefeed run as users run it: the real CLI (`node --import tsx src/cli/main-entry.ts start`,
 * from source) in a child process with its own data directory, so that the benchmark process only
 * writes and probes, and the child's CPU, event loop and peak RSS are its own.
 *
 *   spawnTidemarkCli ─► child (config file, ${SRC_URL}/${DST_URL}) ─► waitCheckpoint(sink ≥ LSN)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { Lsn } from '../src/source/postgres/lsn.ts';
import { sleep } from './bench-cluster.ts';

export const ROOT = resolve(import.meta.dirname, '..');

export interface Child {
  readonly proc: ChildProcess;
  /** null while running, else `exit <code>` / `signal <name>`. */
  exit: string | null;
  /** The last lines the child printed (for error messages). */
  tail(): string;
  /** What the child reported reaching, as ` (…)`, or ''. */
  reached(): string;
  /** SIGTERM, then SIGKILL after 60 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** The node arguments that run `tidemark start` from source on `config` with data in `dataDir`. */
export function cliStartArgs(config: string, dataDir: string): string[] {
  return ['--import', 'tsx', 'src/cli/main-entry.ts', 'start', '--config', config, '--data-dir', dataDir];
}

/**
 * Starts `tidemark start` on a config of one changefeed `id` (source, sink, tables; `extra` is
 * YAML appended under the changefeed, e.g. `    epoch:\n      maxRows: 500000\n`). The data
 * directory is a fresh temporary one, removed by `stop()`.
 */
export function spawnTidemarkCli(opts: {
  id: string;
  srcUrl: string;
  dstUrl: string;
  tables: readonly string[];
  extra?: string;
  logLevel?: string;
}): Child {
  const dir = mkdtempSync(join(tmpdir(), `tidemark-bench-${opts.id}-`));
  // URIs through ${VAR} substitution, so no YAML quoting questions arise.
  const config = join(dir, 'tidemark.yaml');
  writeFileSync(
    config,
    `changefeeds:\n  - id: ${opts.id}\n    source: \${SRC_URL}\n    sink: \${DST_URL}\n    tables: [${opts.tables.join(', ')}]\n${opts.extra ?? ''}`,
  );
  const child = track(
    spawn(process.execPath, cliStartArgs(config, join(dir, 'data')), {
      cwd: ROOT,
      env: {
        ...process.env,
        SRC_URL: opts.srcUrl,
        DST_URL: opts.dstUrl,
        TIDEMARK_LOG_LEVEL: opts.logLevel ?? 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const stop = child.stop;
  child.stop = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return child;
}

export function track(proc: ChildProcess): Child {
  let out = '';
  let progress: { rowsReceived?: number; checkpoint?: string | null } | null = null;
  let partial = '';
  proc.stdout?.on('data', (d: Buffer) => {
    const text = d.toString();
    out = (out + text).slice(-8000);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{"event":"progress"')) continue;
      try {
        progress = JSON.parse(line) as typeof progress;
      } catch {
        // Not one of ours; the tail shows it.
      }
    }
  });
  proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-8000)));
  const exited = new Promise<void>((r) =>
    proc.once('exit', (code, signal) => {
      child.exit = code !== null ? `exit ${code}` : `signal ${signal}`;
      r();
    }),
  );
  const child: Child = {
    proc,
    exit: null,
    tail: () => out.slice(-2000),
    reached: () =>
      progress?.rowsReceived !== undefined
        ? ` (${progress.rowsReceived.toLocaleString('en-US')} rows received from the source)`
        : '',
    async stop() {
      if (child.exit === null) {
        proc.kill('SIGTERM');
        const killed = sleep(60_000).then(() => proc.kill('SIGKILL'));
        await Promise.race([exited, killed]);
      }
      await exited;
    },
  };
  return child;
}

/** Whether changefeed `feedId`'s checkpoint in the PostgreSQL sink is at or past `target`. */
export async function checkpointPassed(sink: pg.Client, feedId: string, target: Lsn): Promise<boolean> {
  const t = await sink.query<{ t: string | null }>(`SELECT to_regclass('tidemark.checkpoints')::text AS t`);
  if (!t.rows[0]?.t) return false;
  const r = await sink.query<{ p: string }>(
    'SELECT position AS p FROM tidemark.checkpoints WHERE changefeed = $1',
    [feedId],
  );
  const p = r.rows[0]?.p;
  return p !== undefined && Lsn.parse(p).compare(target) >= 0;
}

/**
 * Waits until the child's sink checkpoint passes `target` (e.g. the source's WAL insert position
 * taken after the child started: it is then streaming and caught up). Throws with the child's
 * last output when it exits first or `timeoutMs` passes.
 */
export async function waitCheckpoint(opts: {
  child: Child;
  dstUrl: string;
  feedId: string;
  target: Lsn;
  timeoutMs: number;
  what: string;
}): Promise<void> {
  const sink = new pg.Client({ connectionString: opts.dstUrl });
  await sink.connect();
  try {
    const by = Date.now() + opts.timeoutMs;
    while (!(await checkpointPassed(sink, opts.feedId, opts.target))) {
      if (opts.child.exit !== null)
        throw new Error(`${opts.what}: child exited (${opts.child.exit}): ${opts.child.tail()}`);
      if (Date.now() > by)
        throw new Error(
          `${opts.what}: checkpoint not past ${opts.target} after ${opts.timeoutMs} ms: ${opts.child.tail()}`,
        );
      await sleep(50);
    }
  } finally {
    await sink.end();
  }
}
