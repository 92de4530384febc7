/**
 * Benchmark `snapshot` (issue 12): copying one N-row table from a PostgreSQL source database into
 * a PostgreSQL sink database, beside the COPY pipe between the same two databases in the same run.
 *
 *   baseline  psql -c "COPY (SELECT …) TO STDOUT" | psql -c "COPY big FROM STDIN"   (text, binary)
 *   initial   the CLI (`start`, from source via tsx) on a new changefeed over `big`: from its
 *             "snapshot started" log line to "snapshot committed" (rows and checkpoint in one
 *             transaction; the sink's row count is checked afterwards)
 *   online    the CLI running a changefeed over `other`; `big` added to its config, SIGHUP: from
 *             the signal to "online copy swapped in" (the chunked path, shadow table, one swap)
 *   sqlite    the initial snapshot again into a SQLite file (no baseline of its own: the pipe's)
 *
 * Peak RSS is the child's VmHWM sampled every 50 ms. Every Tidemark figure is printed as a ratio to
 * the faster COPY pipe. `SNAPBENCH_CPU_PROF=<dir>` runs the CLI children with `--cpu-prof` into
 * that directory (summarise with `node bench/profile-summary.mjs <file>`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createDatabase, sleep, startBenchCluster, withClient } from './bench-cluster.ts';
import { cliStartArgs, ROOT } from './cli-child.ts';
import { PG_BIN_DIR } from './machine.ts';
import { mib, samplePeakRss } from './peak-rss.ts';
import type { BenchFigure, BenchOptions, BenchResult } from './report.ts';

// 10M (the size) took 20 min on this shared 2-CPU machine at load 12–21; `--rows 10000000` runs it.
const DEFAULT_ROWS = 2_000_000;
const FEED_ID = 'snap';
const COLUMNS = 'id, name, amount, created_at, qty';
const DDL = `CREATE TABLE public.big (
  id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2), created_at timestamptz NOT NULL, qty int)`;
/** Five columns of mixed types; about one in twenty `amount`s NULL; names of varying length. */
const FILL = (rows: number) => `INSERT INTO public.big
  SELECT g, 'customer ' || md5(g::text) || repeat('x', g % 17),
         CASE WHEN g % 20 = 0 THEN NULL ELSE round((g % 100000) * 1.37, 2) END,
         timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second', g % 1000
    FROM generate_series(1, ${rows}) g`;
const PHASE_TIMEOUT_MS = 30 * 60_000;

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

interface Timed {
  readonly ms: number;
  readonly peakRssBytes: number | null;
  readonly load: string;
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const rows = options.rows ?? DEFAULT_ROWS;
  const log = options.log;
  const notes: string[] = [];
  const cluster = await startBenchCluster();
  const work = mkdtempSync(join(tmpdir(), 'tidemark-bench-snapshot-'));
  try {
    const src = await createDatabase(cluster, 'snap_src');
    log(`filling public.big with ${rows.toLocaleString('en-US')} rows (load ${load()})`);
    const tFill = performance.now();
    await withClient(src, async (c) => {
      await c.query(DDL);
      await c.query(FILL(rows));
      await c.query(
        'CREATE TABLE public.other (id int PRIMARY KEY, v text); INSERT INTO public.other VALUES (1, $$a$$)',
      );
      await c.query('VACUUM ANALYZE public.big');
    });
    const size = await withClient(
      src,
      async (c) =>
        (await c.query<{ s: string }>(`SELECT pg_size_pretty(pg_table_size('public.big')) AS s`)).rows[0]!.s,
    );
    notes.push(
      `table: ${rows.toLocaleString('en-US')} rows, 5 columns (bigint key, text, numeric, timestamptz, int), ${size}; filled in ${((performance.now() - tFill) / 1000).toFixed(1)} s`,
    );

    const text = await copyPipe(cluster.url.bind(cluster), src, 'text', rows, log);
    const binary = await copyPipe(cluster.url.bind(cluster), src, 'binary', rows, log);
    const initial = await initialSnapshot(cluster.url.bind(cluster), src, rows, work, log);
    const online = await onlineCopy(cluster.url.bind(cluster), src, rows, work, log);
    const sqlite = await initialSnapshotSqlite(src, rows, work, log);
    const textAgain = await copyPipe(cluster.url.bind(cluster), src, 'text', rows, log, '2');

    const rate = (t: Timed) => (rows * 1000) / t.ms;
    const pipe = text.ms <= binary.ms ? text : binary;
    const pipeName = `COPY pipe (${text.ms <= binary.ms ? 'text' : 'binary'})`;
    const figures: BenchFigure[] = [];
    const add = (metric: string, t: Timed) => {
      figures.push({
        metric: `${metric}: rows/s`,
        tidemark: rate(t),
        baseline: rate(pipe),
        baselineName: pipeName,
        unit: 'rows/s',
        higherIsBetter: true,
      });
    };
    add('initial snapshot → PostgreSQL', initial);
    add('online copy → PostgreSQL', online);
    add('initial snapshot → SQLite', sqlite);
    for (const [name, t] of [
      ['COPY pipe, text', text],
      ['COPY pipe, binary', binary],
      ['COPY pipe, text (again, last)', textAgain],
      ['initial snapshot → PostgreSQL', initial],
      ['online copy → PostgreSQL', online],
      ['initial snapshot → SQLite', sqlite],
    ] as const) {
      notes.push(
        `${name}: ${(t.ms / 1000).toFixed(1)} s, ${Math.round(rate(t)).toLocaleString('en-US')} rows/s, ` +
          `${(t.ms / pipe.ms).toFixed(2)}× the pipe's time, peak RSS ${mib(t.peakRssBytes).toFixed(0)} MiB, load after ${t.load}`,
      );
    }
    notes.push(
      'peak RSS: the Tidemark CLI child (VmHWM every 50 ms); for a pipe, its two psql processes summed. ' +
        'Timings from the "snapshot started" / SIGHUP to the "snapshot committed" log line / the copied rows visible downstream (the epoch of the swap committed).',
    );
    return { name: 'snapshot', figures, notes };
  } finally {
    await cluster.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

/** `psql COPY … TO STDOUT | psql COPY … FROM STDIN` into a fresh database; both psql RSS peaks summed. */
async function copyPipe(
  urlOf: (db: string) => string,
  src: string,
  format: 'text' | 'binary',
  rows: number,
  log: (line: string) => void,
  suffix = '',
): Promise<Timed> {
  const dst = await createDatabaseUrl(urlOf, `snap_pipe_${format}${suffix}`);
  await withClient(dst, (c) => c.query(DDL));
  const fmt = format === 'binary' ? ' WITH (FORMAT binary)' : '';
  const psql = join(PG_BIN_DIR, 'psql');
  const t0 = performance.now();
  const out = spawn(
    psql,
    [
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-d',
      src,
      '-c',
      `COPY (SELECT ${COLUMNS} FROM public.big) TO STDOUT${fmt}`,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const into = spawn(
    psql,
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', dst, '-c', `COPY public.big (${COLUMNS}) FROM STDIN${fmt}`],
    {
      stdio: [out.stdout, 'pipe', 'pipe'],
    },
  );
  const a = samplePeakRss({ pid: () => out.pid ?? null, intervalMs: 50 });
  const b = samplePeakRss({ pid: () => into.pid ?? null, intervalMs: 50 });
  const [ea, eb] = await Promise.all([exitOf(out), exitOf(into)]);
  const ms = performance.now() - t0;
  const peak = (a.stop() ?? 0) + (b.stop() ?? 0);
  if (ea.code !== 0 || eb.code !== 0) throw new Error(`COPY pipe (${format}) failed: ${ea.err}${eb.err}`);
  await expectRows(dst, rows);
  log(`COPY pipe (${format}): ${(ms / 1000).toFixed(1)} s (load ${load()})`);
  return { ms, peakRssBytes: peak, load: load() };
}

async function initialSnapshot(
  urlOf: (db: string) => string,
  src: string,
  rows: number,
  work: string,
  log: (line: string) => void,
): Promise<Timed> {
  const dst = await createDatabaseUrl(urlOf, 'snap_initial');
  const dir = mkdtempSync(join(work, 'initial-'));
  const config = feedConfig(dir, 'public.big');
  const child = spawnCli(dir, config, { SRC_URL: src, DST_URL: dst }, 'initial');
  const rss = samplePeakRss({ pid: () => child.proc.pid ?? null, intervalMs: 50 });
  try {
    await child.until('snapshot started');
    await child.until('snapshot committed');
    const ms = child.seen.get('snapshot committed')! - child.seen.get('snapshot started')!;
    const peak = rss.stop();
    await expectRows(dst, rows);
    log(`initial snapshot: ${(ms / 1000).toFixed(1)} s (load ${load()})`);
    return { ms, peakRssBytes: peak, load: load() };
  } finally {
    rss.stop();
    await child.stop();
    await dropSlots(src);
  }
}

async function onlineCopy(
  urlOf: (db: string) => string,
  src: string,
  rows: number,
  work: string,
  log: (line: string) => void,
): Promise<Timed> {
  const dst = await createDatabaseUrl(urlOf, 'snap_online');
  const dir = mkdtempSync(join(work, 'online-'));
  const config = feedConfig(dir, 'public.other');
  const child = spawnCli(dir, config, { SRC_URL: src, DST_URL: dst }, 'online');
  try {
    await child.until('snapshot committed');
    feedConfig(dir, 'public.other, public.big');
    const rss = samplePeakRss({ pid: () => child.proc.pid ?? null, intervalMs: 50 });
    const t0 = performance.now();
    child.proc.kill('SIGHUP');
    await child.until('online copy swapped in');
    // The swap is logged when it joins the epoch being built: timed until that epoch committed.
    await untilVisible(dst, rows);
    const ms = performance.now() - t0;
    const peak = rss.stop();
    log(`online copy: ${(ms / 1000).toFixed(1)} s (load ${load()})`);
    return { ms, peakRssBytes: peak, load: load() };
  } finally {
    await child.stop();
    await dropSlots(src);
  }
}

async function initialSnapshotSqlite(
  src: string,
  rows: number,
  work: string,
  log: (line: string) => void,
): Promise<Timed> {
  const dir = mkdtempSync(join(work, 'sqlite-'));
  const file = join(dir, 'sink.db');
  const config = feedConfig(dir, 'public.big');
  const child = spawnCli(dir, config, { SRC_URL: src, DST_URL: `sqlite://${file}` }, 'sqlite');
  const rss = samplePeakRss({ pid: () => child.proc.pid ?? null, intervalMs: 50 });
  try {
    await child.until('snapshot started');
    await child.until('snapshot committed');
    const ms = child.seen.get('snapshot committed')! - child.seen.get('snapshot started')!;
    const peak = rss.stop();
    await child.stop();
    if (!existsSync(file)) throw new Error(`no SQLite file at ${file}`);
    const db = new Database(file, { readonly: true });
    try {
      const n = (db.prepare('SELECT count(*) AS n FROM big').get() as { n: number }).n;
      if (n !== rows) throw new Error(`SQLite sink holds ${n} rows, expected ${rows}`);
    } finally {
      db.close();
    }
    log(`initial snapshot → SQLite: ${(ms / 1000).toFixed(1)} s (load ${load()})`);
    return { ms, peakRssBytes: peak, load: load() };
  } finally {
    rss.stop();
    await child.stop();
    await dropSlots(src);
  }
}

function feedConfig(dir: string, tables: string): string {
  const path = join(dir, 'tidemark.yaml');
  writeFileSync(
    path,
    `changefeeds:\n  - id: ${FEED_ID}\n    source: \${SRC_URL}\n    sink: \${DST_URL}\n    tables: [${tables}]\n`,
  );
  return path;
}

interface Cli {
  readonly proc: ChildProcess;
  /** performance.now() at which each awaited log message was first seen. */
  readonly seen: Map<string, number>;
  until(msg: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function spawnCli(dir: string, config: string, env: Record<string, string>, label: string): Cli {
  const prof = process.env.SNAPBENCH_CPU_PROF;
  const args = [
    ...(prof
      ? [
          '--cpu-prof',
          '--cpu-prof-dir',
          prof,
          '--cpu-prof-name',
          `snapshot-${label}-${Date.now()}.cpuprofile`,
        ]
      : []),
    ...cliStartArgs(config, join(dir, 'data')),
  ];
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env, TIDEMARK_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const seen = new Map<string, number>();
  const waiting: { msg: string; wake: () => void }[] = [];
  let tail = '';
  let partial = '';
  let exit: string | null = null;
  const onText = (d: Buffer) => {
    const text = d.toString();
    tail = (tail + text).slice(-6000);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /"msg":"([^"]*)"/.exec(line);
      if (!m || seen.has(m[1]!)) continue;
      seen.set(m[1]!, performance.now());
      for (const w of waiting.filter((x) => x.msg === m[1])) w.wake();
    }
  };
  proc.stdout.on('data', onText);
  proc.stderr.on('data', onText);
  const exited = new Promise<void>((r) =>
    proc.once('exit', (code, signal) => {
      exit = code !== null ? `exit ${code}` : `signal ${signal}`;
      for (const w of waiting) w.wake();
      r();
    }),
  );
  return {
    proc,
    seen,
    async until(msg, timeoutMs = PHASE_TIMEOUT_MS) {
      const deadline = Date.now() + timeoutMs;
      while (!seen.has(msg)) {
        if (exit !== null) throw new Error(`${label}: the CLI exited (${exit}) before "${msg}":\n${tail}`);
        if (Date.now() > deadline) throw new Error(`${label}: no "${msg}" after ${timeoutMs} ms:\n${tail}`);
        await new Promise<void>((r) => {
          const w = { msg, wake: r };
          waiting.push(w);
          setTimeout(r, 1000);
        });
        waiting.splice(0, waiting.length, ...waiting.filter((w) => !seen.has(w.msg)));
      }
    },
    async stop() {
      if (exit === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

function exitOf(p: ChildProcess): Promise<{ code: number | null; err: string }> {
  let err = '';
  p.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  return new Promise((r) => p.once('exit', (code) => r({ code, err })));
}

async function createDatabaseUrl(urlOf: (db: string) => string, name: string): Promise<string> {
  await withClient(urlOf('postgres'), (c) => c.query(`CREATE DATABASE "${name}"`));
  return urlOf(name);
}

async function countRows(url: string): Promise<number> {
  return withClient(url, async (c) =>
    Number((await c.query<{ n: string }>('SELECT count(*)::text AS n FROM public.big')).rows[0]!.n),
  );
}

/** Polls until `public.big` downstream holds `rows` rows (bounded by the phase timeout). */
async function untilVisible(url: string, rows: number): Promise<void> {
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  for (;;) {
    const n = await countRows(url).catch(() => -1);
    if (n === rows) return;
    if (Date.now() > deadline) throw new Error(`the sink holds ${n} rows, expected ${rows}`);
    await sleep(20);
  }
}

async function expectRows(url: string, rows: number): Promise<void> {
  const n = await countRows(url);
  if (n !== rows) throw new Error(`the sink holds ${n} rows, expected ${rows}`);
}

/** Slots of finished runs would hold WAL (and decode it) for the runs after them. */
async function dropSlots(src: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const left = await withClient(src, async (c) => {
      const { rows } = await c.query<{ n: string }>(
        `SELECT count(pg_drop_replication_slot(slot_name))::text AS n FROM pg_replication_slots
          WHERE database = current_database() AND NOT active`,
      );
      const { rows: active } = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_replication_slots WHERE database = current_database()`,
      );
      void rows;
      return Number(active[0]!.n);
    });
    if (left === 0) return;
    await sleep(100);
  }
}
