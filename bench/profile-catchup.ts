/**
 * `node --import tsx bench/profile-catchup.ts [--rows N] [--txn-rows N] [--updates] [--recvlogical] [--cpu-profile FILE] [--perf PREFIX]`:
 * the catch-up path alone, for profiling. A changefeed into a PostgreSQL sink is started once (empty
 * snapshot) and stopped; `rows` inserts commit in transactions of `txn-rows` (default 1M in 100 ×
 * 10k; `--updates` then updates 10k hot keys `rows` times more); the changefeed is started again and
 * timed until it has committed every change. With `--cpu-profile`, the V8 CPU profile of the catch-up
 * alone (not the workload) is written there (open in Chrome DevTools, or summarise with
 * `node bench/profile-summary.mjs FILE`). Prints the CPU time per change of node, of the walsender
 * and of the sink's backends; `--recvlogical` then drains the same WAL with pg_recvlogical from its
 * own slot and prints its time and its walsender's CPU, the decode-only baseline. `--perf PREFIX`
 * records each walsender with `perf record -g` into `PREFIX-walsender.data` (and
 * `PREFIX-recvlogical-walsender.data`); read them with `perf report -i FILE --no-children`.
 * `--strace PREFIX` counts their system calls instead (`strace -c`, into `PREFIX-walsender.txt`);
 * `--perf-stat PREFIX` counts task clock, context switches, page faults and system calls (`perf stat`).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import pg from 'pg';
import { defineChangefeed } from '../src/runtime/changefeed-config.ts';
import { closeBenchEngines } from './bench-engine.ts';
import { createDatabase, startBenchCluster, withClient } from './bench-cluster.ts';
import { watchFeed } from './replication-consumers.ts';
import { peakRssBytes, resetPeakRss } from './peak-rss.ts';
import { ITEMS_DDL } from './replication-workload.ts';
import { mib } from './peak-rss.ts';
import { sessionOptions } from '../src/source/postgres/session-settings.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const rows = Number(arg('--rows') ?? 1_000_000);
const txnRows = Number(arg('--txn-rows') ?? 10_000);
const updates = process.argv.includes('--updates');
const recvlogical = process.argv.includes('--recvlogical');
const perfPrefix = arg('--perf');
const stracePrefix = arg('--strace');
const statPrefix = arg('--perf-stat');
const sinkCluster = process.argv.includes('--sink-cluster');

/** `perf record -g` of a PostgreSQL process until `stop()` (SIGINT); writes `<perfPrefix>-<what>.data`. */
function perfRecord(pid: number, what: string): { stop(): Promise<void> } {
  if (!perfPrefix && !stracePrefix && !statPrefix) return { stop: () => Promise.resolve() };
  const p = statPrefix
    ? spawn(
        'perf',
        [
          'stat',
          '-e',
          'task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_epoll_create1,syscalls:sys_enter_close,syscalls:sys_enter_pread64,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_kill,syscalls:sys_enter_getpid,syscalls:sys_enter_rt_sigprocmask,syscalls:sys_enter_futex',
          '-p',
          String(pid),
          '-o',
          `${statPrefix}-${what}.txt`,
        ],
        { stdio: 'ignore' },
      )
    : perfPrefix
      ? spawn('perf', ['record', '-q', '-g', '-p', String(pid), '-o', `${perfPrefix}-${what}.data`], {
          stdio: 'ignore',
        })
      : spawn('strace', ['-c', '-p', String(pid), '-o', `${stracePrefix}-${what}.txt`], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  return {
    stop: async () => {
      p.kill('SIGINT');
      await exited;
    },
  };
}
const walsenderPid = async (c: pg.Client, appName: string | null): Promise<number | null> => {
  const r = await c.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_replication WHERE ($1::text IS NULL AND application_name NOT LIKE 'recv_%') OR application_name = $1`,
    [appName],
  );
  return r.rows[0]?.pid ?? null;
};
const profileFile = arg('--cpu-profile');

/** user + system CPU of a process so far, in ms (0 when it is gone). */
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}
const CLK_TCK = 100;

/**
 * The baseline on the same WAL: pg_recvlogical (pgoutput proto 1, into /dev/null) from its own
 * slot, with its walsender's and its own CPU time, sampled while they live. `tidemarkOptions`
 * gives it Tidemark's options instead (its publication, `messages 'true'`, its session settings),
 * to tell the plugin's options from the client's behaviour.
 */
async function recvlogicalCpu(
  slot: string,
  endLsn: string,
  changes: number,
  tidemarkMs: number | null,
  tidemarkOptions: string | null,
): Promise<void> {
  const t0 = Date.now();
  const appName = `recv_${slot}`;
  const child = spawn(
    join(cluster.binDir, 'pg_recvlogical'),
    [
      '-d',
      `host=127.0.0.1 port=${cluster.port} dbname=prof_src user=${cluster.user} application_name=${appName}`,
      '-S',
      slot,
      '--start',
      `--endpos=${endLsn}`,
      '--no-loop',
      '-o',
      'proto_version=1',
      '-o',
      `publication_names=${tidemarkOptions ?? 'recv_pub'}`,
      ...(tidemarkOptions ? ['-o', 'messages=true'] : []),
      '-f',
      '/dev/null',
    ],
    {
      env: {
        ...process.env,
        PGPASSWORD: cluster.password,
        ...(tidemarkOptions ? { PGOPTIONS: sessionOptions() } : {}),
      },
      stdio: 'ignore',
    },
  );
  let walsender = 0;
  let client = 0;
  const mon = new pg.Client({ connectionString: cluster.url('postgres') });
  await mon.connect();
  let exited = false;
  const done = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  let recPerf: { stop(): Promise<void> } | null = null;
  while (!exited) {
    const pid = await walsenderPid(mon, appName);
    if (pid !== null) {
      walsender = Math.max(walsender, cpuMsOf(pid));
      recPerf ??= perfRecord(pid, `${slot}-walsender`);
    }
    if (child.pid !== undefined) client = Math.max(client, cpuMsOf(child.pid));
    await Promise.race([done, new Promise((res) => setTimeout(res, 100))]);
  }
  const ms = Date.now() - t0;
  await recPerf?.stop();
  await mon.end();
  const per = (x: number) => ((x * 1000) / changes).toFixed(1);
  const what = tidemarkOptions ? "pg_recvlogical with Tidemark's options" : 'pg_recvlogical';
  console.log(
    `${what} (slot ${slot}): ${ms} ms${tidemarkMs === null ? '' : ` (tidemark/recvlogical rate ${(ms / tidemarkMs).toFixed(2)}x)`}; walsender CPU ${walsender} ms = ${per(walsender)} µs per change (sampled every 100 ms: a lower bound); client ${client} ms = ${per(client)} µs per change`,
  );
}

const cluster = await startBenchCluster();
let dstCluster = cluster;
try {
  const srcUrl = await createDatabase(cluster, 'prof_src');
  // The sink's writes are WAL of the source's cluster unless it has its own: the walsender reads
  // (and skips) them while it catches up, which pg_recvlogical on the same WAL never does.
  dstCluster = sinkCluster ? await startBenchCluster() : cluster;
  const dstUrl = await createDatabase(dstCluster, 'prof_dst');
  const walAt = async () =>
    (
      await withClient(cluster.url('postgres'), (c) =>
        c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'),
      )
    ).rows[0]!.l;
  const walBytes = (a: string, b: string) =>
    withClient(cluster.url('postgres'), async (c) =>
      Number(
        (await c.query<{ n: string }>('SELECT ($2::pg_lsn - $1::pg_lsn)::text AS n', [a, b])).rows[0]!.n,
      ),
    );
  await withClient(srcUrl, (c) => c.query(ITEMS_DDL));
  if (recvlogical) {
    await withClient(srcUrl, async (c) => {
      await c.query('CREATE PUBLICATION recv_pub FOR TABLE public.items');
      for (const slot of ['recv', 'recv_tm', 'recv_conc'])
        await c.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    });
  }
  const cfg = defineChangefeed({ id: 'prof', source: srcUrl, sink: dstUrl, tables: ['public.items'] });
  const first = await watchFeed(cfg);
  await first.streaming;
  await first.feed.stop();
  const src = new pg.Client({ connectionString: srcUrl });
  await src.connect();
  const walStart = await walAt();
  const w0 = Date.now();
  for (let lo = 1; lo <= rows; lo += txnRows) {
    await src.query(
      'INSERT INTO public.items SELECT g, 0, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g',
      [lo, Math.min(rows, lo + txnRows - 1)],
    );
  }
  let changes = rows;
  if (updates) {
    for (let done = 0; done < rows; done += txnRows) {
      const lo = (done % 10_000) + 1;
      await src.query(`UPDATE public.items SET grp = grp + 1 WHERE id BETWEEN $1::bigint AND $2::bigint`, [
        lo,
        lo + Math.min(txnRows, 10_000) - 1,
      ]);
    }
    changes += rows;
  }
  const endLsn = (await src.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
  console.log(`workload: ${changes} changes written in ${Date.now() - w0} ms`);
  const tidemarkPub = recvlogical
    ? (await src.query<{ p: string }>(`SELECT pubname AS p FROM pg_publication WHERE pubname <> 'recv_pub'`))
        .rows[0]!.p
    : '';
  // The same baseline, run beside the catch-up: its walsender shares the CPUs as Tidemark's does.
  const concurrent = recvlogical ? recvlogicalCpu('recv_conc', endLsn, changes, null, null) : null;
  const session = new Session();
  if (profileFile) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  resetPeakRss();
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  const w = await watchFeed(cfg);
  let sentMs: number | null = null;
  let polling = false;
  const sentPoll = setInterval(() => {
    if (polling || sentMs !== null) return;
    polling = true;
    void src
      .query<{ done: boolean }>(
        `SELECT coalesce(bool_or(sent_lsn >= $1::pg_lsn), false) AS done FROM pg_stat_replication WHERE application_name NOT LIKE 'recv_%'`,
        [endLsn],
      )
      .then(
        (q) => {
          if (sentMs === null && q.rows[0]?.done) sentMs = Date.now() - t0;
        },
        () => {},
      )
      .finally(() => (polling = false));
  }, 20);
  await w.streaming;
  const streamingMs = Date.now() - t0;
  // The walsender appears once the hub's session starts streaming (after the feed reports it).
  let wsPid: number | null = null;
  for (let i = 0; i < 100 && wsPid === null; i++) {
    wsPid = await walsenderPid(src, null);
    if (wsPid === null) await new Promise((r) => setTimeout(r, 20));
  }
  const wsPerf = wsPid === null ? null : perfRecord(wsPid, 'walsender');
  await w.untilChanges(changes);
  const ms = Date.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // PostgreSQL's share, read while its processes live: the walsender(s) and the sink's backends.
  const by: Record<string, number> = {};
  for (const cl of new Set([cluster, dstCluster])) {
    await withClient(cl.url('postgres'), async (c) => {
      const r = await c.query<{ pid: number; what: string }>(
        `SELECT pid, CASE WHEN backend_type = 'walsender' THEN 'walsender' ELSE 'sink' END AS what
           FROM pg_stat_activity WHERE (backend_type = 'walsender' AND application_name NOT LIKE 'recv_%') OR (datname = $1 AND pid <> pg_backend_pid())`,
        ['prof_dst'],
      );
      for (const row of r.rows) {
        by[row.what] = (by[row.what] ?? 0) + cpuMsOf(row.pid);
        by[`${row.what}s`] = (by[`${row.what}s`] ?? 0) + 1;
      }
    });
  }
  const pgCpu = by;
  const walEnd = await walAt();
  console.log(
    `source WAL: workload ${((await walBytes(walStart, endLsn)) / 2 ** 20).toFixed(0)} MiB, during the catch-up ${((await walBytes(endLsn, walEnd)) / 2 ** 20).toFixed(0)} MiB (${sinkCluster ? 'the sink has its own cluster' : "the sink's writes are in it"})`,
  );
  clearInterval(sentPoll);
  await wsPerf?.stop();
  await src.end();
  console.log(`walsender sent everything after ${sentMs} ms`);
  await w.feed.stop();
  console.log(
    `node CPU during catch-up: user ${(cpu.user / 1e3).toFixed(0)} ms, system ${(cpu.system / 1e3).toFixed(0)} ms = ${((cpu.user + cpu.system) / changes).toFixed(1)} µs per change`,
  );
  console.log(
    `PostgreSQL CPU (whole life of the processes): ${pgCpu.walsenders ?? 0} walsender(s) ${pgCpu.walsender ?? 0} ms = ${(((pgCpu.walsender ?? 0) * 1000) / changes).toFixed(1)} µs per change; ${pgCpu.sinks ?? 0} sink backend(s) ${pgCpu.sink ?? 0} ms = ${(((pgCpu.sink ?? 0) * 1000) / changes).toFixed(1)} µs per change`,
  );
  const commitMs = w.epochs.reduce((a, e) => a + e.commitMs, 0);
  const r = {
    ms,
    peakRssBytes: peakRssBytes(),
    epochs: { count: w.epochs.length, maxChanges: Math.max(...w.epochs.map((e) => e.changes)) },
  };
  console.log(
    `start → streaming ${streamingMs} ms; → first epoch committed ${(w.epochs[0]?.at ?? 0) - t0} ms; sink commit time (sum over epochs): ${commitMs} ms`,
  );
  if (recvlogical) {
    await concurrent;
    console.log('(the line above: run beside the catch-up; the two below: alone, after it)');
    await recvlogicalCpu('recv', endLsn, changes, ms, null);
    await recvlogicalCpu('recv_tm', endLsn, changes, ms, tidemarkPub);
  }
  if (profileFile) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(profileFile, JSON.stringify(profile));
    session.disconnect();
  }
  const n = await withClient(dstUrl, (c) =>
    c.query<{ n: string }>('SELECT count(*)::text AS n FROM public.items'),
  );
  console.log(
    `catch-up: ${changes} changes in ${r.ms} ms = ${Math.round((changes * 1000) / r.ms)} rows/s; ` +
      `peak RSS ${mib(r.peakRssBytes).toFixed(0)} MiB; ${r.epochs?.count} epochs (largest ${r.epochs?.maxChanges}); sink rows ${n.rows[0]!.n}`,
  );
} finally {
  await closeBenchEngines().catch(() => {});
  if (dstCluster !== cluster) await dstCluster.stop();
  await cluster.stop();
}
