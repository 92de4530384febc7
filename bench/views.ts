/**
 * Benchmark `views`: incremental view maintenance throughput and per-epoch latency, with the
 * state store a changefeed uses (LMDB on local disk).
 *
 *   PostgreSQL: orders (1M rows), customers (10k), regions (50), generated with generate_series
 *     ├─► Tidemark ViewMaintainer (LMDB store): snapshot, then 100k updates in 10 epochs (1% each)
 *     ├─► UPDATE + REFRESH MATERIALIZED VIEW of the same SQL after each batch (same PostgreSQL)
 *     └─► @electric-sql/d2ts: the same computation as a differential dataflow (reduce / join)
 *   TPC-H (views-tpch.ts): the 22 queries as views under refresh batches vs re-running them
 *
 * Two views: a single-table GROUP BY, and a three-way join + GROUP BY. Every figure is printed
 * beside its same-run baselines as a ratio. `rows` scales the orders table (default 1M);
 * TIDEMARK_BENCH_TPCH_SF the TPC-H scale factor (default 0.1; 0 skips TPC-H).
 */
import { D2, MultiSet, join, map, output, reduce, type IStreamBuilder } from '@electric-sql/d2ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { DEFAULT_RSS_LIMIT_BYTES, LmdbStateStore } from '../src/dataflow/lmdb-state-store.ts';
import { MemoryStateStore } from '../src/dataflow/memory-state-store.ts';
import type { StateStore } from '../src/dataflow/state-store.ts';
import { ViewMaintainer } from '../src/dataflow/view-maintainer.ts';
import type { Row } from '../src/core/row.ts';
import type { TableSchema } from '../src/core/table-schema.ts';
import { maskUri } from '../src/errors/mask.ts';
import type { BenchFigure, BenchResult } from './report.ts';

export interface ViewsBenchOptions {
  /** A database to create the bench tables in; without it a private cluster is started. */
  readonly pgUrl?: string;
  /** Rows of the orders table (default 1,000,000). */
  readonly rows?: number | null;
  readonly log: (line: string) => void;
}

const UPDATES = 100_000;
const BATCHES = 10;
const CUSTOMERS = 10_000;
const REGIONS = 50;

const col = (name: string, typeName: string, typeOid: number, isKey = false) => ({
  name,
  typeName,
  typeOid,
  typeMod: -1,
  isKey,
  nullable: !isKey,
});
const table = (name: string, relationId: number, columns: ReturnType<typeof col>[]): TableSchema => ({
  schema: 'public',
  name,
  relationId,
  columns,
  keyColumns: [0],
  keyless: false,
  enums: [],
});
const ORDERS = table('orders', 1, [
  col('id', 'integer', 23, true),
  col('customer_id', 'integer', 23),
  col('amount', 'bigint', 20),
]);
const CUSTOMERS_T = table('customers', 2, [col('id', 'integer', 23, true), col('region_id', 'integer', 23)]);
const REGIONS_T = table('regions', 3, [col('id', 'integer', 23, true), col('name', 'text', 25)]);

const VIEWS = {
  group: 'SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer_id',
  join3:
    'SELECT r.name, count(*) AS n, sum(o.amount) AS total FROM orders o JOIN customers c ON o.customer_id = c.id JOIN regions r ON c.region_id = r.id GROUP BY r.name',
} as const;
type ViewName = keyof typeof VIEWS;

interface Measured {
  readonly changesPerSec: number;
  readonly epochMs: number[];
}

interface BaseRows {
  readonly orders: readonly Row[];
  readonly customers: readonly Row[];
  readonly regions: readonly Row[];
}

export async function run(opts: ViewsBenchOptions): Promise<BenchResult> {
  const rows = opts.rows ?? 1_000_000;
  const log = opts.log;
  let stop: (() => Promise<void>) | null = null;
  let url = opts.pgUrl;
  if (url === undefined) {
    const { startBenchCluster, createDatabase } = await import('./bench-cluster.ts');
    const cluster = await startBenchCluster();
    stop = () => cluster.stop();
    url = await createDatabase(cluster, 'views_bench');
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const figures: BenchFigure[] = [];
  const notes: string[] = [
    `orders ${rows.toLocaleString('en-US')} rows, customers ${CUSTOMERS}, regions ${REGIONS}; ${UPDATES.toLocaleString('en-US')} updates in ${BATCHES} epochs (${((100 * UPDATES) / BATCHES / rows).toFixed(1)}% of the orders per epoch); Tidemark with the LMDB state store in a temp directory; wall-clock times on a shared machine.`,
  ];
  try {
    log(`views: generating tables in ${maskUri(url)}`);
    await client.query(`
      DROP TABLE IF EXISTS orders, customers, regions CASCADE;
      CREATE TABLE regions (id int PRIMARY KEY, name text);
      CREATE TABLE customers (id int PRIMARY KEY, region_id int);
      CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount bigint);
      INSERT INTO regions SELECT i, 'r' || i FROM generate_series(0, ${REGIONS - 1}) i;
      INSERT INTO customers SELECT i, i % ${REGIONS} FROM generate_series(0, ${CUSTOMERS - 1}) i;
      INSERT INTO orders SELECT i, (i * 7) % ${CUSTOMERS}, (i * 13) % 1000 FROM generate_series(0, ${rows - 1}) i;
      ANALYZE orders; ANALYZE customers; ANALYZE regions;`);
    const text = { rowMode: 'array' as const, types: { getTypeParser: () => (v: string) => v } };
    const base: BaseRows = {
      orders: (await client.query({ text: 'SELECT * FROM orders', ...text })).rows as Row[],
      customers: (await client.query({ text: 'SELECT * FROM customers', ...text })).rows as Row[],
      regions: (await client.query({ text: 'SELECT * FROM regions', ...text })).rows as Row[],
    };
    const batches = updateBatches(rows);
    for (const view of ['group', 'join3'] as const) {
      log(`views: ${view}: Tidemark (LMDB)`);
      const dir = mkdtempSync(joinPath(tmpdir(), 'tidemark-views-bench-'));
      let tm: Measured;
      try {
        tm = await runTidemark(view, base, batches, log, openLmdb(dir));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      log(`views: ${view}: UPDATE + REFRESH MATERIALIZED VIEW`);
      const pgm = await runRefresh(client, view, batches);
      log(`views: ${view}: d2ts`);
      const d2 = runD2ts(view, base, batches, log);
      for (const [name, b] of [
        ['REFRESH MATERIALIZED VIEW', pgm],
        ['d2ts', d2],
      ] as const) {
        figures.push({
          metric: `${view} changes/s`,
          tidemark: tm.changesPerSec,
          baseline: b.changesPerSec,
          baselineName: name,
          unit: 'changes/s',
          higherIsBetter: true,
        });
        figures.push({
          metric: `${view} epoch p50 ms`,
          tidemark: median(tm.epochMs),
          baseline: median(b.epochMs),
          baselineName: name,
          unit: 'ms',
          higherIsBetter: false,
        });
      }
      // Restore the base data for the next view.
      await client.query(
        `UPDATE orders SET customer_id = (id * 7) % ${CUSTOMERS}, amount = (id * 13) % 1000`,
      );
    }
    const sf = Number(process.env['TIDEMARK_BENCH_TPCH_SF'] ?? '0.1');
    if (sf > 0) {
      const { runTpch } = await import('./views-tpch.ts');
      const tpch = await runTpch({ client, sf, log });
      figures.push(...tpch.figures);
      notes.push(...tpch.notes);
    }
    for (const f of figures) {
      log(
        `views: ${f.metric}: tidemark ${f.tidemark.toFixed(1)} vs ${f.baselineName} ${f.baseline.toFixed(1)} ` +
          `(ratio ${(f.tidemark / f.baseline).toFixed(2)})`,
      );
    }
  } finally {
    await client.end();
    await stop?.();
  }
  return { name: 'views', figures, notes };
}

export interface CpuBenchOptions {
  /** Rows of the generated orders table (default 200,000). */
  readonly rows?: number;
  readonly store: 'memory' | 'lmdb';
  readonly views?: readonly ViewName[];
  readonly log: (line: string) => void;
}

/**
 * The same computations without PostgreSQL: base rows generated in JS as the database would
 * print them, so figures are stable on a loaded machine (Tidemark vs d2ts only).
 */
export async function runCpu(opts: CpuBenchOptions): Promise<Record<string, number>> {
  const rows = opts.rows ?? 200_000;
  const base: BaseRows = {
    orders: Array.from({ length: rows }, (_, i) => [
      String(i),
      String((i * 7) % CUSTOMERS),
      String((i * 13) % 1000),
    ]),
    customers: Array.from({ length: CUSTOMERS }, (_, i) => [String(i), String(i % REGIONS)]),
    regions: Array.from({ length: REGIONS }, (_, i) => [String(i), `r${i}`]),
  };
  const batches = updateBatches(rows);
  const out: Record<string, number> = {};
  for (const view of opts.views ?? (['group', 'join3'] as const)) {
    const dir = opts.store === 'lmdb' ? mkdtempSync(joinPath(tmpdir(), 'tidemark-views-bench-')) : null;
    try {
      const store = dir === null ? new MemoryStateStore() : openLmdb(dir);
      const cpu0 = process.cpuUsage();
      const tm = await runTidemark(view, base, batches, opts.log, store);
      const cpu = process.cpuUsage(cpu0);
      const d2 = runD2ts(view, base, batches, opts.log);
      opts.log(
        `views-cpu: ${view} (${opts.store}): tidemark ${Math.round(tm.changesPerSec)} changes/s, ` +
          `d2ts ${Math.round(d2.changesPerSec)} changes/s, epoch p50 ${median(tm.epochMs).toFixed(1)} ms, ` +
          `cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (snapshot included)`,
      );
      out[`${view} tidemark`] = tm.changesPerSec;
      out[`${view} d2ts`] = d2.changesPerSec;
    } finally {
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/**
 * The LMDB store as a changefeed opens it, with the RSS limit raised by what this process holds
 * for the bench itself when the store opens (the base rows, the client): the store gets the
 * default limit as headroom above that. TM_MEMTABLE_MIB=<n>: committed epochs held in memory
 * before a merge into the B-tree (default: the store's), to measure merges in steady state.
 */
export function openLmdb(path: string): LmdbStateStore {
  const memtable = process.env['TM_MEMTABLE_MIB'];
  return LmdbStateStore.open({
    path,
    rssLimitBytes: DEFAULT_RSS_LIMIT_BYTES + process.memoryUsage.rss(),
    ...(memtable === undefined ? {} : { memtableBytes: Number(memtable) * 2 ** 20 }),
  });
}

/** Deterministic updates: each changes one order's customer and amount. */
function updateBatches(rows: number): Row[][] {
  const out: Row[][] = [];
  const per = UPDATES / BATCHES;
  for (let b = 0; b < BATCHES; b++) {
    const batch: Row[] = [];
    const seen = new Set<number>();
    for (let j = 0; j < per; j++) {
      const id = ((b * per + j) * 7919) % rows;
      if (seen.has(id)) continue;
      seen.add(id);
      batch.push([String(id), String((id * 11 + b + 1) % CUSTOMERS), String((id * 17 + b) % 1000)]);
    }
    out.push(batch);
  }
  return out;
}

async function runTidemark(
  view: ViewName,
  base: BaseRows,
  batches: readonly Row[][],
  log: (line: string) => void,
  store: StateStore,
): Promise<Measured> {
  const vm = await ViewMaintainer.open({
    views: [{ name: view, sql: VIEWS[view] }],
    catalog: [ORDERS, CUSTOMERS_T, REGIONS_T],
    store,
  });
  let t = performance.now();
  await vm.loadSnapshot({ table: REGIONS_T, rows: base.regions });
  await vm.loadSnapshot({ table: CUSTOMERS_T, rows: base.customers });
  for (let i = 0; i < base.orders.length; i += 50_000)
    await vm.loadSnapshot({ table: ORDERS, rows: base.orders.slice(i, i + 50_000) });
  for await (const chunk of vm.finishSnapshot()) void chunk;
  await vm.commit(0);
  const merges0 = store instanceof LmdbStateStore ? store.merges : 0;
  log(
    `views: ${view}: Tidemark snapshot ${Math.round(performance.now() - t)} ms, RSS ${mibOf(process.memoryUsage())}${store instanceof LmdbStateStore ? `, ${store.remaps} re-maps, ${store.collections} collections so far` : ''}`,
  );
  const epochMs: number[] = [];
  let changes = 0;
  // TM_PROF=<path prefix>: a CPU profile of the upkeep epochs only (not the snapshot).
  const prof = process.env['TM_PROF'];
  let session: Session | null = null;
  if (prof !== undefined) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  // TM_HEAP_PROF=<path prefix>: a V8 heap sampling profile of the upkeep epochs, objects that
  // scavenges or full collections freed included (what the upkeep allocates, not what it keeps).
  const heapProf = process.env['TM_HEAP_PROF'];
  if (heapProf !== undefined) {
    if (session === null) {
      session = new Session();
      session.connect();
    }
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  t = performance.now();
  const cpu0 = process.cpuUsage();
  for (const [i, batch] of batches.entries()) {
    const t0 = performance.now();
    await vm.step(i + 1, [
      { table: ORDERS, truncate: false, deletes: [], upserts: batch, partialUpdates: [], rowDeltas: [] },
    ]);
    await vm.commit(i + 1);
    epochMs.push(performance.now() - t0);
    changes += batch.length;
  }
  const total = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  log(
    `views: ${view}: Tidemark upkeep ${Math.round(total)} ms wall, ${Math.round((cpu.user + cpu.system) / 1000)} ms CPU: ${((cpu.user + cpu.system) / changes).toFixed(1)} µs CPU per change`,
  );
  if (store instanceof LmdbStateStore)
    log(
      `views: ${view}: ${store.remaps} re-maps of the LMDB map, ${store.collections} collections, ${store.merges - merges0} merges into the B-tree, RSS ${mibOf(process.memoryUsage())}`,
    );
  if (session !== null && prof !== undefined) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(`${prof}-${view}.cpuprofile`, JSON.stringify(profile));
  }
  if (session !== null && heapProf !== undefined) {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    writeFileSync(`${heapProf}-${view}.heapprofile`, JSON.stringify(profile));
  }
  await vm.close();
  return { changesPerSec: (changes / total) * 1000, epochMs };
}

async function runRefresh(client: pg.Client, view: ViewName, batches: readonly Row[][]): Promise<Measured> {
  await client.query(
    `DROP MATERIALIZED VIEW IF EXISTS mv_${view}; CREATE MATERIALIZED VIEW mv_${view} AS ${VIEWS[view]}`,
  );
  const epochMs: number[] = [];
  let changes = 0;
  const start = performance.now();
  for (const batch of batches) {
    const t0 = performance.now();
    const values = batch.map((r) => `(${r[0]}, ${r[1]}, ${r[2]})`).join(',');
    await client.query(
      `UPDATE orders o SET customer_id = v.c, amount = v.a FROM (VALUES ${values}) v(id, c, a) WHERE o.id = v.id`,
    );
    await client.query(`REFRESH MATERIALIZED VIEW mv_${view}`);
    epochMs.push(performance.now() - t0);
    changes += batch.length;
  }
  const total = performance.now() - start;
  await client.query(`DROP MATERIALIZED VIEW mv_${view}`);
  return { changesPerSec: (changes / total) * 1000, epochMs };
}

type Order = [customerId: number, amount: number];

function runD2ts(
  view: ViewName,
  base: BaseRows,
  batches: readonly Row[][],
  log: (line: string) => void,
): Measured {
  const graph = new D2({ initialFrontier: 0 });
  const orders = graph.newInput<[number, Order]>();
  const customers = graph.newInput<[number, number]>();
  const regions = graph.newInput<[number, string]>();
  const sumCount = reduce((values: [number, number][]) => {
    let n = 0;
    let s = 0;
    for (const [amount, mult] of values) {
      n += mult;
      s += amount * mult;
    }
    return n === 0 ? [] : [[[n, s] as [number, number], 1]];
  });
  let outputs = 0;
  const byCustomer = orders.pipe(map(([, o]: [number, Order]) => [o[0], o[1]] as [number, number]));
  const grouped: IStreamBuilder<[number | string, [number, number]]> =
    view === 'group'
      ? byCustomer.pipe(sumCount)
      : byCustomer.pipe(
          join(customers),
          map(([, [amount, region]]) => [region ?? 0, amount ?? 0] as [number, number]),
          join(regions),
          map(([, [amount, name]]) => [name ?? '', amount ?? 0] as [string, number]),
          sumCount,
        );
  grouped.pipe(output(() => outputs++));
  graph.finalize();
  const current = new Map<number, Order>();
  let t = performance.now();
  regions.sendData(0, new MultiSet(base.regions.map((r) => [[Number(r[0]), r[1] ?? ''], 1])));
  customers.sendData(0, new MultiSet(base.customers.map((r) => [[Number(r[0]), Number(r[1])], 1])));
  orders.sendData(
    0,
    new MultiSet(
      base.orders.map((r) => {
        const o: Order = [Number(r[1]), Number(r[2])];
        current.set(Number(r[0]), o);
        return [[Number(r[0]), o], 1];
      }),
    ),
  );
  for (const input of [orders, customers, regions]) input.sendFrontier(1);
  graph.run();
  log(`views: ${view}: d2ts snapshot ${Math.round(performance.now() - t)} ms`);
  const epochMs: number[] = [];
  let changes = 0;
  t = performance.now();
  const cpu0 = process.cpuUsage();
  for (const [i, batch] of batches.entries()) {
    const t0 = performance.now();
    const version = i + 1;
    const data: [[number, Order], number][] = [];
    for (const r of batch) {
      const id = Number(r[0]);
      const next: Order = [Number(r[1]), Number(r[2])];
      const prev = current.get(id);
      if (prev !== undefined) data.push([[id, prev], -1]);
      data.push([[id, next], 1]);
      current.set(id, next);
    }
    orders.sendData(version, new MultiSet(data));
    for (const input of [orders, customers, regions]) input.sendFrontier(version + 1);
    graph.run();
    epochMs.push(performance.now() - t0);
    changes += batch.length;
  }
  const total = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  log(
    `views: ${view}: d2ts upkeep ${Math.round(total)} ms wall, ${Math.round((cpu.user + cpu.system) / 1000)} ms CPU: ${((cpu.user + cpu.system) / changes).toFixed(1)} µs CPU per change`,
  );
  return { changesPerSec: (changes / total) * 1000, epochMs };
}

const mibOf = (m: NodeJS.MemoryUsage) =>
  `${Math.round(m.rss / 2 ** 20)} MiB (heap ${Math.round(m.heapUsed / 2 ** 20)} of ${Math.round(m.heapTotal / 2 ** 20)})`;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

// `node --import tsx bench/views.ts --cpu [memory|lmdb] [rows] [group|join3]`: the CPU-only figures.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [flag, store = 'memory', rows = '200000', view] = process.argv.slice(2);
  if (flag !== '--cpu') throw new Error('usage: bench/views.ts --cpu [memory|lmdb] [rows] [group|join3]');
  await runCpu({
    store: store === 'lmdb' ? 'lmdb' : 'memory',
    rows: Number(rows),
    ...(view === 'group' || view === 'join3' ? { views: [view] } : {}),
    log: (line) => console.log(line),
  });
}
