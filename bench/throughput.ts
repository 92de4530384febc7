/**
 * Benchmark `throughput` (issue 14): every aim of the issue, each beside its baseline measured in
 * the same run, with the peak RSS of both sides.
 *
 *   cluster A (source; Tidemark's PostgreSQL sink in another database) ── cluster B (native subscriber)
 *
 *   1. catch-up inserts   `rows` inserts in transactions of 10k, every consumer's slot idle while
 *                         they commit; then each drains alone: Tidemark → PostgreSQL sink,
 *                         pg_recvlogical (decode only, to /dev/null), native subscription on B
 *   2. hot-key updates    `rows` updates over 10k keys (each transaction updates all 10k once);
 *                         Tidemark vs the subscription, drained the same way
 *   3. shared log         1 and 16 changefeeds through one slot and the change log vs one slot per
 *                         changefeed (changelog-fanout.ts, catch-up phase, SQLite sinks)
 *   4. latency            a writer paced at 20k rows/s (1,000-row transactions every 50 ms) into
 *                         the subscription, then into Tidemark; commit → visible downstream
 *   5. peer-shaped        single-row insert/update/delete on a jsonb table (~1 KB payload) at
 *                         rising rates, lag probed every 50 ms; highest sustained rate of each
 *
 * Each phase gets a fresh source database. Figures are printed, never asserted.
 */
import { loadavg } from 'node:os';
import type { PgCluster } from '../test/support/pg-cluster.ts';
import { defineChangefeed, type ChangefeedConfig } from '../src/runtime/changefeed-config.ts';
import type { BenchFigure, BenchOptions, BenchResult } from './report.ts';
import { createDatabase, quantile, sleep, startBenchCluster, withClient } from './bench-cluster.ts';
import {
  drainRecvlogical,
  drainSubscription,
  drainTidemark,
  watchFeed,
  type DrainResult,
} from './replication-consumers.ts';
import { ITEMS_DDL, MARKER_ID, pacedLatency } from './replication-workload.ts';
import { cpuMs, mib, peakRssBytes, resetPeakRss, samplePeakRss } from './peak-rss.ts';
import { fanout, insertLsn } from './changelog-fanout.ts';
import { spawnTidemarkCli, waitCheckpoint, type Child } from './cli-child.ts';
import {
  describeSink,
  peerShaped,
  PEER_DDL,
  PROBE_DDL,
  type PeerRun,
  type PeerStep,
} from './throughput-peer.ts';
import { sinkMeter } from './sink-meter.ts';

const DEFAULT_ROWS = 200_000;
const FULL_ROWS = 1_000_000;
const TXN_ROWS = 10_000;
const HOT_KEYS = 10_000;

export async function run(options: ThroughputOptions): Promise<BenchResult> {
  const only = options.phases ?? null;
  const unknown = only?.filter((n) => !PHASES.some(([k]) => k === n)) ?? [];
  if (unknown.length > 0)
    throw new Error(`unknown phase ${unknown.join(', ')}; known: ${PHASES.map(([k]) => k).join(', ')}`);
  const rows = Math.max(TXN_ROWS, options.rows ?? DEFAULT_ROWS);
  const notes: string[] = [];
  const figures: BenchFigure[] = [];
  const load0 = loadavg();
  const a = await startBenchCluster();
  const b = await startBenchCluster();
  options.log(`source cluster on port ${a.port}, subscriber cluster on port ${b.port}`);
  const ctx: Ctx = { a, b, rows, log: options.log, notes, figures, n: 0 };
  try {
    // A phase that fails is reported in the notes; the others still run.
    for (const [name, phase] of PHASES) {
      if (only !== null && !only.includes(name)) continue;
      try {
        await phase(ctx);
      } catch (err) {
        const what = err instanceof Error ? err.message : String(err);
        options.log(`${name}: FAILED: ${what}`);
        notes.push(`${name}: FAILED, no figures: ${what}`);
      }
    }
  } finally {
    await a.stop();
    await b.stop();
  }
  const load1 = loadavg();
  notes.unshift(
    `rows: ${rows.toLocaleString('en-US')} per drain phase${rows === DEFAULT_ROWS ? ` (default; the issue's size is --rows ${FULL_ROWS})` : ''}; ${TXN_ROWS.toLocaleString('en-US')} rows per source transaction`,
    "drains: every consumer's slot exists and is idle while the workload commits; then each drains alone, in turn (Tidemark first); time = consumer start → the marker row (committed last) applied",
    "tidemark: PostgreSQL sink in a database of the subscriber's cluster (not the source's: its writes would be WAL that the source's walsender reads while it catches up), default options; drains: in-process changefeed, RSS = this node process, peak reset before each phase; latency and peer-shaped: `tidemark start` in a child process (the writers and probes run here), RSS = the child, peak reset once it caught up",
    'pg_recvlogical: pgoutput proto 1 over TCP into /dev/null (decode + transfer, no apply); RSS = the client process',
    'subscription: native logical replication into a second cluster on this machine (create_slot=false, copy_data=false); RSS = its apply worker, sampled every 100 ms',
    `machine load average (1/5/15 min): before ${fmtLoad(load0)}, after ${fmtLoad(load1)}; other work shares these 2 CPUs, so compare ratios, not rates`,
  );
  return { name: 'throughput', figures, notes };
}

/** `--phases` (run.ts) selects these by name; all run by default. */
interface ThroughputOptions extends BenchOptions {
  readonly phases?: readonly string[] | null;
}

const PHASES: readonly (readonly [string, (c: Ctx) => Promise<void>])[] = [
  ['catch-up', catchUpInserts],
  ['hot-keys', hotKeyUpdates],
  ['shared-log', sharedLog],
  ['latency', latency],
  ['peer', peer],
];

interface Ctx {
  readonly a: PgCluster;
  readonly b: PgCluster;
  readonly rows: number;
  readonly log: (line: string) => void;
  readonly notes: string[];
  readonly figures: BenchFigure[];
  /** Phase counter: database and slot names. */
  n: number;
}

const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
const num = (n: number) => n.toLocaleString('en-US');

/** A fresh source database on A with `ddl`, its publication, and a disabled subscription on B. */
async function prepare(
  ctx: Ctx,
  ddl: readonly string[],
  opts: { recvlogical: boolean; tables: readonly string[]; inProcess?: boolean },
): Promise<{ srcUrl: string; dstUrl: string; subUrl: string; db: string; cfg: ChangefeedConfig }> {
  const db = `tp_${++ctx.n}`;
  const srcUrl = await createDatabase(ctx.a, db);
  // The sink is on B, as the subscriber is: a sink on A writes WAL that A's walsender reads and
  // skips while it catches up (profile-catchup --sink-cluster: +4 µs of walsender CPU per change).
  const dstUrl = await createDatabase(ctx.b, `${db}_tm`);
  const subUrl = await createDatabase(ctx.b, `${db}_sub`);
  await withClient(srcUrl, async (c) => {
    for (const d of ddl) await c.query(d);
    await c.query(`CREATE PUBLICATION pub FOR TABLE ${opts.tables.join(', ')}`);
    if (opts.recvlogical) await c.query(`SELECT pg_create_logical_replication_slot('recv', 'pgoutput')`);
    await c.query(`SELECT pg_create_logical_replication_slot('sub_${db}', 'pgoutput')`);
  });
  await withClient(subUrl, async (c) => {
    for (const d of ddl) await c.query(d);
    const conn = `host=127.0.0.1 port=${ctx.a.port} dbname=${db} user=${ctx.a.user} password=${ctx.a.password}`;
    await c.query(
      `CREATE SUBSCRIPTION sub CONNECTION '${conn}' PUBLICATION pub
         WITH (create_slot = false, slot_name = 'sub_${db}', enabled = false, copy_data = false)`,
    );
  });
  const cfg = defineChangefeed({ id: `tp${ctx.n}`, source: srcUrl, sink: dstUrl, tables: [...opts.tables] });
  // The drains' changefeed exists (slot, snapshot) before the workload; a CLI child starts its own.
  if (opts.inProcess !== false) {
    const first = await watchFeed(cfg);
    await first.streaming;
    await first.feed.stop();
  }
  return { srcUrl, dstUrl, subUrl, db, cfg };
}

async function subscriptionDrain(subUrl: string): Promise<DrainResult> {
  return drainSubscription({ subscriberUrl: subUrl, subscription: 'sub', timeoutMs: 900_000 });
}

function push(
  ctx: Ctx,
  metric: string,
  unit: string,
  higherIsBetter: boolean,
  tidemark: number,
  baseline: number,
  baselineName: string,
): void {
  ctx.figures.push({ metric, unit, higherIsBetter, tidemark, baseline, baselineName });
}

function drainFigures(
  ctx: Ctx,
  what: string,
  changes: number,
  tm: DrainResult,
  bases: [string, DrainResult][],
) {
  const perSec = (ms: number) => (changes * 1000) / ms;
  for (const [name, r] of bases)
    push(ctx, `${what}: rows/s`, 'rows/s', true, perSec(tm.ms), perSec(r.ms), name);
  for (const [name, r] of bases)
    push(ctx, `${what}: peak RSS`, 'MiB', false, mib(tm.peakRssBytes), mib(r.peakRssBytes), name);
  ctx.notes.push(
    `${what}: tidemark ${(tm.ms / 1000).toFixed(2)} s (${tm.epochs?.count ?? '?'} epochs, largest ${num(tm.epochs?.maxChanges ?? 0)} changes); ` +
      bases.map(([n, r]) => `${n} ${(r.ms / 1000).toFixed(2)} s`).join('; '),
  );
}

/** Aim: catch-up of 1M inserts ≥ 1.0× pg_recvlogical decode-only, ≥ 1.3× native. */
async function catchUpInserts(ctx: Ctx): Promise<void> {
  const p = await prepare(ctx, [ITEMS_DDL], { recvlogical: true, tables: ['public.items'] });
  ctx.log(`catch-up inserts: writing ${num(ctx.rows)} rows`);
  const endLsn = await withClient(p.srcUrl, async (c) => {
    for (let lo = 1; lo <= ctx.rows; lo += TXN_ROWS) {
      await c.query(
        'INSERT INTO public.items SELECT g, 0, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g',
        [lo, Math.min(ctx.rows, lo + TXN_ROWS - 1)],
      );
    }
    await c.query(`INSERT INTO public.items VALUES (${MARKER_ID}, 0, 'end of workload')`);
    return (await c.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
  });
  const changes = ctx.rows + 1;
  ctx.log('catch-up inserts: tidemark');
  const tm = await drainTidemark(p.cfg, changes);
  ctx.log(`catch-up inserts: tidemark ${tm.ms} ms; pg_recvlogical`);
  const recv = await drainRecvlogical({
    cluster: ctx.a,
    dbname: p.db,
    slot: 'recv',
    publication: 'pub',
    endLsn,
  });
  await withClient(p.srcUrl, (c) => c.query(`SELECT pg_drop_replication_slot('recv')`));
  ctx.log(`catch-up inserts: pg_recvlogical ${recv.ms} ms; subscription`);
  const sub = await subscriptionDrain(p.subUrl);
  ctx.log(`catch-up inserts: subscription ${sub.ms} ms`);
  drainFigures(ctx, `catch-up ${num(ctx.rows)} inserts`, changes, tm, [
    ['pg_recvlogical', recv],
    ['native subscription', sub],
  ]);
  await withClient(p.subUrl, (c) => c.query('ALTER SUBSCRIPTION sub DISABLE'));
}

/** Aim: 1M updates on 10k hot keys ≥ 3× native (collapsing per key per epoch). */
async function hotKeyUpdates(ctx: Ctx): Promise<void> {
  const seed = `INSERT INTO public.items SELECT g, 0, md5(g::text) FROM generate_series(1, ${HOT_KEYS}) g`;
  // The hot keys exist on both sides before any slot: the subscriber gets them by the same INSERT.
  const p = await prepare(ctx, [ITEMS_DDL, seed], { recvlogical: false, tables: ['public.items'] });
  ctx.log(`hot-key updates: writing ${num(ctx.rows)} updates over ${num(HOT_KEYS)} keys`);
  await withClient(p.srcUrl, async (c) => {
    for (let done = 0; done < ctx.rows; done += HOT_KEYS) {
      await c.query(`UPDATE public.items SET grp = grp + 1, payload = md5(payload) WHERE id <= ${HOT_KEYS}`);
    }
    await c.query(`INSERT INTO public.items VALUES (${MARKER_ID}, 0, 'end of workload')`);
  });
  const changes = Math.ceil(ctx.rows / HOT_KEYS) * HOT_KEYS + 1;
  ctx.log('hot-key updates: tidemark');
  const tm = await drainTidemark(p.cfg, changes);
  ctx.log(`hot-key updates: tidemark ${tm.ms} ms; subscription`);
  const sub = await subscriptionDrain(p.subUrl);
  ctx.log(`hot-key updates: subscription ${sub.ms} ms`);
  const same = await withClient(p.dstUrl, (c) =>
    c.query<{ s: string }>('SELECT sum(grp)::text AS s FROM public.items'),
  );
  drainFigures(ctx, `${num(changes - 1)} updates on ${num(HOT_KEYS)} hot keys`, changes, tm, [
    ['native subscription', sub],
  ]);
  ctx.notes.push(`hot-key updates: tidemark sink sum(grp) = ${same.rows[0]?.s} (expected ${changes - 1})`);
  await withClient(p.subUrl, (c) => c.query('ALTER SUBSCRIPTION sub DISABLE'));
}

/** Aims: one changefeed through the log ≥ 0.95× a direct slot; 16 on one slot ≥ 4× 16 slots. */
async function sharedLog(ctx: Ctx): Promise<void> {
  const half = Math.max(1000, Math.floor(ctx.rows / 10 / 1000) * 1000);
  const workload = { rows: half, hotKeys: Math.min(10_000, half), txnRows: 1000 };
  for (const n of [1, 16]) {
    const r: Record<string, { ms: number; rss: number | null; changes: number }> = {};
    for (const variant of ['tidemark', 'slots'] as const) {
      ctx.log(`shared log: ${variant} ×${n}`);
      resetPeakRss();
      const x = await fanout({ cluster: ctx.a, variant, n, workload, log: ctx.log });
      r[variant] = { ms: x.catchUp.ms, rss: peakRssBytes(), changes: x.changesPerFeed * n };
    }
    const tm = r.tidemark!;
    const sl = r.slots!;
    const what = `${n} changefeed${n > 1 ? 's' : ''} catch-up (SQLite sinks)`;
    push(
      ctx,
      `${what}: rows/s`,
      'rows/s',
      true,
      (tm.changes * 1000) / tm.ms,
      (sl.changes * 1000) / sl.ms,
      `${n} slot${n > 1 ? 's' : ''}, direct`,
    );
    push(
      ctx,
      `${what}: peak RSS`,
      'MiB',
      false,
      mib(tm.rss),
      mib(sl.rss),
      `${n} slot${n > 1 ? 's' : ''}, direct`,
    );
    ctx.notes.push(
      `shared log ×${n}: ${num(2 * half)} changes per changefeed (half inserts, half hot-key updates, 1,000 per transaction); catch-up tidemark ${(tm.ms / 1000).toFixed(2)} s, direct slots ${(sl.ms / 1000).toFixed(2)} s; the direct baseline is bench/slot-per-changefeed.ts (PostgresSource → EpochBuilder → sink, its own slot); RSS covers the live and catch-up phases`,
    );
  }
}

/**
 * Starts the changefeed of `p` as a CLI child process and waits until it is streaming and has
 * caught up with everything committed so far (its sink checkpoint past the WAL insert position
 * taken once it started). Its peak RSS is then reset, so that it covers what follows.
 */
async function startChild(
  p: { srcUrl: string; dstUrl: string; cfg: ChangefeedConfig },
  what: string,
): Promise<Child> {
  const child = spawnTidemarkCli({
    id: p.cfg.id,
    srcUrl: p.srcUrl,
    dstUrl: p.dstUrl,
    tables: p.cfg.tables ?? [],
    logLevel: 'warn',
  });
  try {
    // A large table's initial snapshot goes through a shadow, swapped in once whole: the checkpoint
    // passes the snapshot's position before that, so first wait for the tables to exist downstream.
    const target = await insertLsn(p.srcUrl);
    await waitCheckpoint({ child, dstUrl: p.dstUrl, feedId: p.cfg.id, target, timeoutMs: 600_000, what });
    await waitTables(child, p.dstUrl, p.cfg.tables ?? [], what);
    const live = await insertLsn(p.srcUrl);
    await waitCheckpoint({
      child,
      dstUrl: p.dstUrl,
      feedId: p.cfg.id,
      target: live,
      timeoutMs: 600_000,
      what,
    });
    if (child.proc.pid !== undefined) resetPeakRss(child.proc.pid);
    return child;
  } catch (err) {
    await child.stop();
    throw err;
  }
}

/** Waits until every one of `tables` exists downstream (the child's initial snapshot swapped it in). */
async function waitTables(
  child: Child,
  dstUrl: string,
  tables: readonly string[],
  what: string,
): Promise<void> {
  await withClient(dstUrl, async (c) => {
    const by = Date.now() + 600_000;
    for (;;) {
      const r = await c.query<{ n: number }>(
        'SELECT count(to_regclass(t))::int AS n FROM unnest($1::text[]) AS t',
        [tables],
      );
      if (r.rows[0]!.n === tables.length) return;
      if (child.exit !== null) throw new Error(`${what}: child exited (${child.exit}): ${child.tail()}`);
      if (Date.now() > by) throw new Error(`${what}: tables not downstream after 600 s: ${child.tail()}`);
      await sleep(50);
    }
  });
}

/** Aim: commit-to-visible p99 ≤ 50 ms at 20k rows/s sustained. */
async function latency(ctx: Ctx): Promise<void> {
  const L = {
    rowsPerSec: 20_000,
    seconds: ctx.rows >= FULL_ROWS ? 30 : 15,
    tickMs: 50,
    pollMs: 5,
    warmupSeconds: 5,
  };
  const p = await prepare(ctx, [ITEMS_DDL], {
    recvlogical: false,
    tables: ['public.items'],
    inProcess: false,
  });
  const paced = (probeUrl: string, firstId: number) =>
    withClient(p.srcUrl, async (writer) => {
      await writer.query('SET synchronous_commit = on');
      return withClient(probeUrl, (probe) => pacedLatency({ ...L, firstId, writer, probe }));
    });
  ctx.log(`latency: subscription at ${num(L.rowsPerSec)} rows/s for ${L.seconds} s`);
  await withClient(p.subUrl, (c) => c.query('ALTER SUBSCRIPTION sub ENABLE'));
  let subPid: number | null = null;
  const subRss = samplePeakRss({ pid: () => subPid, intervalMs: 100 });
  const pidTimer = setInterval(() => {
    if (subPid !== null) return;
    void withClient(p.subUrl, (c) =>
      c.query<{ pid: number | null }>(
        `SELECT pid FROM pg_stat_subscription WHERE subname = 'sub' AND relid IS NULL`,
      ),
    ).then(
      (r) => (subPid = r.rows[0]?.pid ?? null),
      () => {},
    );
  }, 200);
  const sub = await paced(p.subUrl, 1);
  clearInterval(pidTimer);
  const subPeak = subRss.stop();
  await withClient(p.subUrl, (c) => c.query('ALTER SUBSCRIPTION sub DISABLE'));

  ctx.log('latency: tidemark (CLI child process; snapshot of the rows written so far, then live)');
  const child = await startChild(p, 'latency');
  try {
    const rss = samplePeakRss({ pid: () => child.proc.pid ?? null, intervalMs: 100 });
    const meter = await sinkMeter(p.dstUrl, p.cfg.id);
    const sink0 = await meter.read();
    const cpu0 = child.proc.pid === undefined ? null : cpuMs(child.proc.pid);
    const tm = await paced(p.dstUrl, 1_000_000_000);
    const cpu1 = child.proc.pid === undefined ? null : cpuMs(child.proc.pid);
    const sink1 = await meter.read();
    await meter.close();
    const tmPeak = rss.stop();
    const rows = tm.lastId - 1_000_000_000 + 1;
    const cpuPerRow = cpu0 === null || cpu1 === null ? 'n/a' : (((cpu1 - cpu0) * 1000) / rows).toFixed(1);
    const epochs = sink1.epoch - sink0.epoch;
    const backendMs = sink0.cpuMs === null || sink1.cpuMs === null ? null : sink1.cpuMs - sink0.cpuMs;
    const per = (ms: number | null, n: number) =>
      ms === null || n === 0 ? 'n/a' : ((ms * 1000) / n).toFixed(1);
    const sinkNote = `; sink backend ${per(backendMs, rows)} µs per row; ${num(epochs)} epochs (${epochs ? Math.round(rows / epochs) : 'n/a'} rows each): tidemark ${per(cpu0 === null || cpu1 === null ? null : cpu1 - cpu0, epochs)} µs, sink backend ${per(backendMs, epochs)} µs per epoch`;
    const rate = `@${num(L.rowsPerSec)} rows/s`;
    for (const q of [0.5, 0.99]) {
      push(
        ctx,
        `commit-to-visible p${q * 100} ${rate}`,
        'ms',
        false,
        quantile(tm.latenciesMs, q),
        quantile(sub.latenciesMs, q),
        'native subscription',
      );
    }
    for (const q of [0.5, 0.99]) {
      push(
        ctx,
        `commit-to-visible p${q * 100} ${rate}, after ${L.warmupSeconds} s warm-up`,
        'ms',
        false,
        quantile(tm.steadyLatenciesMs, q),
        quantile(sub.steadyLatenciesMs, q),
        'native subscription',
      );
    }
    push(
      ctx,
      `latency run ${rate}: peak RSS`,
      'MiB',
      false,
      mib(tmPeak),
      mib(subPeak),
      'native subscription',
    );
    ctx.notes.push(
      `latency: writer paced at ${num(L.rowsPerSec)} rows/s (achieved: subscription ${num(Math.round(sub.achievedRowsPerSec))}, tidemark ${num(Math.round(tm.achievedRowsPerSec))}), ${L.tickMs} ms per 1,000-row transaction, ${L.seconds} s, synchronous_commit on; latency = COMMIT returned → first ${L.pollMs} ms poll of downstream max(id) that sees it; tidemark runs as \`tidemark start\` in a child process (writer and prober in the benchmark's process, as for the subscription); its CPU ${cpuPerRow} µs per row${sinkNote}`,
    );
  } finally {
    await child.stop();
  }
}

/** Aim: the peer-shaped workload at rising rates; the highest sustained rate of each side. */
async function peer(ctx: Ctx): Promise<void> {
  const p = await prepare(ctx, [PEER_DDL, PROBE_DDL], {
    recvlogical: false,
    tables: ['public.peer_events', 'public.lag_probe'],
    inProcess: false,
  });
  const full = ctx.rows >= FULL_ROWS;
  const rates = full ? [1000, 2000, 4000, 6000, 8000, 12_000, 16_000] : [1000, 2000, 4000, 8000];
  const stepSeconds = full ? 15 : 6;
  ctx.log(`peer-shaped: subscription, rates ${rates.join(', ')} ops/s, ${stepSeconds} s each`);
  await withClient(p.subUrl, (c) => c.query('ALTER SUBSCRIPTION sub ENABLE'));
  const sub = await peerShaped({
    srcUrl: p.srcUrl,
    probeUrl: p.subUrl,
    rates,
    stepSeconds,
    log: ctx.log,
    rssPid: async () =>
      withClient(p.subUrl, async (c) => {
        const r = await c.query<{ pid: number | null }>(
          `SELECT pid FROM pg_stat_subscription WHERE subname = 'sub' AND relid IS NULL`,
        );
        return r.rows[0]?.pid ?? null;
      }),
  });
  await withClient(p.subUrl, (c) => c.query('ALTER SUBSCRIPTION sub DISABLE'));
  ctx.log('peer-shaped: tidemark (CLI child process)');
  const child = await startChild(p, 'peer-shaped');
  let tm: PeerRun;
  try {
    const meter = await sinkMeter(p.dstUrl, p.cfg.id);
    try {
      tm = await peerShaped({
        srcUrl: p.srcUrl,
        probeUrl: p.dstUrl,
        rates,
        stepSeconds,
        log: ctx.log,
        rssPid: () => Promise.resolve(child.proc.pid ?? null),
        sinkMeter: meter,
      });
    } finally {
      await meter.close();
    }
  } finally {
    await child.stop();
  }
  // The highest rate achieved in a sustained step (a later step's writers may have achieved less).
  const best = (r: PeerRun) =>
    r.steps
      .filter((s) => s.sustained)
      .reduce<PeerStep | undefined>((b, s) => (b && b.achieved >= s.achieved ? b : s), undefined);
  const tb = best(tm);
  const sb = best(sub);
  push(
    ctx,
    'peer-shaped: highest sustained ops/s',
    'ops/s',
    true,
    tb?.achieved ?? 0,
    sb?.achieved ?? 0,
    'native subscription',
  );
  push(
    ctx,
    'peer-shaped: p99 lag at that rate',
    'ms',
    false,
    tb?.p99 ?? Number.NaN,
    sb?.p99 ?? Number.NaN,
    'native subscription',
  );
  push(
    ctx,
    'peer-shaped: peak RSS',
    'MiB',
    false,
    mib(tm.peakRssBytes),
    mib(sub.peakRssBytes),
    'native subscription',
  );
  const describe = (r: PeerRun) =>
    r.steps
      .map(
        (s) =>
          `${num(s.target)}→${num(Math.round(s.achieved))} ops/s p50 ${s.p50} p99 ${s.p99} ms${s.cpuUsPerOp === null ? '' : ` ${Math.round(s.cpuUsPerOp)} µs CPU/op`}${s.sink ? ` (${describeSink(s.sink)})` : ''}${s.sustained ? '' : ' (lag grows)'}`,
      )
      .join('; ');
  ctx.notes.push(
    `peer-shaped: one table (id bigint key, kind text, payload jsonb ~1 KB), single-row transactions, 50% insert / 35% update / 15% delete, 8 writer connections (synchronous_commit on); lag = commit of a lag_probe row update (every 50 ms, same publication) → first 10 ms poll that sees it downstream; a step is sustained when p99 lag stays under 1 s and the consumer caught up; its figure is the rate the writers achieved; rates rise until a step is not sustained or the writers stop going faster`,
    `peer-shaped tidemark: ${describe(tm)}`,
    `peer-shaped subscription: ${describe(sub)}`,
  );
}
