/**
 * Benchmark `replication` (issue 2): end-to-end throughput and commit-to-visible latency of a
 * Tidemark changefeed (PostgreSQL → PostgreSQL), beside pg_recvlogical and native logical
 * replication on the same WAL.
 *
 *   1. slots: Tidemark's (a first start snapshots the empty table), pg_recvlogical's (pgoutput),
 *      and a disabled subscription's — all created before the workload, all idle during it
 *   2. workload (replication-workload.ts): `rows` inserts, then `rows` updates over hot keys
 *   3. drain: each consumer alone, in turn, from its slot to the marker row; rows/s = changes / time
 *   4. latency: a writer paced at 10k rows/s for 20 s, first into the subscription, then into a
 *      Tidemark changefeed; per-transaction latency by polling the downstream `max(id)`
 */
import type { PgCluster } from '../test/support/pg-cluster.ts';
import { defineChangefeed } from '../src/runtime/changefeed-config.ts';
import type { BenchFigure, BenchOptions, BenchResult } from './report.ts';
import { createDatabase, quantile, startBenchCluster, withClient } from './bench-cluster.ts';
import { drainRecvlogical, drainSubscription, drainTidemark, watchFeed } from './replication-consumers.ts';
import {
  ITEMS_DDL,
  pacedLatency,
  runWorkload,
  workloadChanges,
  type WorkloadShape,
} from './replication-workload.ts';
import { mib } from './peak-rss.ts';
import pg from 'pg';

const DEFAULT_ROWS = 1_000_000;
const LATENCY = { rowsPerSec: 10_000, seconds: 20, tickMs: 50, pollMs: 5, firstId: 1_000_000_000_000 };

export async function run(options: BenchOptions): Promise<BenchResult> {
  const rows = Math.max(10_000, options.rows ?? DEFAULT_ROWS);
  const shape: WorkloadShape = { rows, hotKeys: Math.min(10_000, rows), txnRows: 1000 };
  const notes = [
    `workload: ${rows.toLocaleString('en-US')} inserts then ${rows.toLocaleString('en-US')} updates over ${shape.hotKeys.toLocaleString('en-US')} hot keys, ${shape.txnRows} rows per transaction` +
      (rows === DEFAULT_ROWS ? '' : ` (scaled from ${DEFAULT_ROWS.toLocaleString('en-US')} by --rows)`),
    'method: all slots created first and idle during the workload; then each consumer drains the same WAL alone, in turn; time = consumer start → marker row applied',
    'tidemark: in-process changefeed, PostgreSQL sink in another database of the same cluster, default epoch options; RSS = this node process (peak reset before the drain)',
    'pg_recvlogical: pgoutput proto 1 over TCP into /dev/null (decode + transfer only, no apply); RSS = the client process',
    'subscription: CREATE SUBSCRIPTION into another database of the same cluster; RSS = the apply worker (includes shared buffers it touched)',
  ];
  const cluster = await startBenchCluster();
  options.log(`postgres cluster on port ${cluster.port}`);
  try {
    const figures = await measure(cluster, shape, options, notes);
    return { name: 'replication', figures, notes };
  } finally {
    await cluster.stop();
  }
}

async function measure(
  cluster: PgCluster,
  shape: WorkloadShape,
  options: BenchOptions,
  notes: string[],
): Promise<BenchFigure[]> {
  const srcUrl = await createDatabase(cluster, 'bench_src');
  const tmUrl = await createDatabase(cluster, 'bench_tidemark');
  const subUrl = await createDatabase(cluster, 'bench_sub');
  const src = new pg.Client({ connectionString: srcUrl });
  await src.connect();
  try {
    await src.query(ITEMS_DDL);
    await src.query('CREATE PUBLICATION bench_pub FOR TABLE public.items');
    await src.query(`SELECT pg_create_logical_replication_slot('bench_recv', 'pgoutput')`);
    await src.query(`SELECT pg_create_logical_replication_slot('bench_sub', 'pgoutput')`);
    await withClient(subUrl, async (c) => {
      await c.query(ITEMS_DDL);
      const conn = `host=127.0.0.1 port=${cluster.port} dbname=bench_src user=${cluster.user} password=${cluster.password}`;
      await c.query(
        `CREATE SUBSCRIPTION bench_sub CONNECTION '${conn}' PUBLICATION bench_pub
           WITH (create_slot = false, slot_name = 'bench_sub', enabled = false, copy_data = false)`,
      );
    });
    const cfg = defineChangefeed({ id: 'bench', source: srcUrl, sink: tmUrl, tables: ['public.items'] });
    const first = await watchFeed(cfg);
    await first.streaming;
    await first.feed.stop();

    options.log('workload: generating');
    const wl = await runWorkload(src, shape);
    const endLsn = (await src.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!
      .l;
    const changes = workloadChanges(shape);
    notes.push(
      `workload written in ${((wl.insertMs + wl.updateMs) / 1000).toFixed(1)} s (inserts ${(wl.insertMs / 1000).toFixed(1)} s, updates ${(wl.updateMs / 1000).toFixed(1)} s); WAL end ${endLsn}`,
    );

    options.log('drain: tidemark');
    const tm = await drainTidemark(cfg, changes);
    options.log(`drain: tidemark ${tm.ms} ms; pg_recvlogical`);
    if (tm.epochs) {
      notes.push(
        `tidemark drain: ${tm.epochs.count} epochs, the largest ${tm.epochs.maxChanges.toLocaleString('en-US')} source changes`,
      );
    }
    const recv = await drainRecvlogical({
      cluster,
      dbname: 'bench_src',
      slot: 'bench_recv',
      publication: 'bench_pub',
      endLsn,
    });
    await src.query(`SELECT pg_drop_replication_slot('bench_recv')`);
    options.log(`drain: pg_recvlogical ${recv.ms} ms; subscription`);
    const sub = await drainSubscription({
      subscriberUrl: subUrl,
      subscription: 'bench_sub',
      timeoutMs: 600_000,
    });
    options.log(`drain: subscription ${sub.ms} ms`);

    const perSec = (ms: number) => (changes * 1000) / ms;
    const figures: BenchFigure[] = [];
    const thr = (baselineName: string, ms: number): BenchFigure => ({
      metric: 'drain throughput',
      unit: 'rows/s',
      tidemark: perSec(tm.ms),
      baseline: perSec(ms),
      baselineName,
      higherIsBetter: true,
    });
    const rss = (baselineName: string, bytes: number | null): BenchFigure => ({
      metric: 'peak RSS',
      unit: 'MiB',
      tidemark: mib(tm.peakRssBytes),
      baseline: mib(bytes),
      baselineName,
      higherIsBetter: false,
    });
    figures.push(thr('pg_recvlogical', recv.ms), thr('subscription', sub.ms));
    figures.push(
      rss('pg_recvlogical', recv.peakRssBytes),
      rss('subscription apply worker', sub.peakRssBytes),
    );

    figures.push(...(await latency(srcUrl, subUrl, tmUrl, cfg, options, notes)));
    return figures;
  } finally {
    await src.end();
  }
}

async function latency(
  srcUrl: string,
  subUrl: string,
  tmUrl: string,
  cfg: ReturnType<typeof defineChangefeed>,
  options: BenchOptions,
  notes: string[],
): Promise<BenchFigure[]> {
  const paced = async (probeUrl: string, firstId: number) =>
    withClient(srcUrl, async (writer) => {
      // The cluster runs synchronous_commit=off, which holds decoding back until the WAL writer
      // flushes (up to wal_writer_delay); a flushing writer measures the consumers, not that.
      await writer.query('SET synchronous_commit = on');
      return withClient(probeUrl, (probe) => pacedLatency({ ...LATENCY, firstId, writer, probe }));
    });
  options.log(`latency: subscription at ${LATENCY.rowsPerSec} rows/s for ${LATENCY.seconds} s`);
  const sub = await paced(subUrl, LATENCY.firstId);
  await withClient(subUrl, (c) => c.query('ALTER SUBSCRIPTION bench_sub DISABLE'));

  options.log('latency: tidemark (catching up first)');
  const w = await watchFeed(cfg);
  try {
    await w.streaming;
    // Catch up with the rows the subscription phase wrote, so the paced run starts steady.
    await withClient(tmUrl, async (c) => {
      for (let i = 0; ; i++) {
        const r = await c.query<{ m: string | null }>('SELECT max(id)::text AS m FROM public.items');
        if (Number(r.rows[0]?.m ?? 0) >= sub.lastId) break;
        if (i > 6000) throw new Error('tidemark did not catch up before the latency run');
        await new Promise((res) => setTimeout(res, 10));
      }
    });
    const from = w.epochs.length;
    const firstId = LATENCY.firstId + 100_000_000;
    const tm = await paced(tmUrl, firstId);
    const lags = w.epochs.slice(from).map((e) => e.visibleLagMs);
    notes.push(
      `latency: writer paced at ${LATENCY.rowsPerSec} rows/s (achieved: subscription ${Math.round(sub.achievedRowsPerSec)}, tidemark ${Math.round(tm.achievedRowsPerSec)}), one transaction per ${LATENCY.tickMs} ms, ${LATENCY.seconds} s; latency = source COMMIT returned → first ${LATENCY.pollMs} ms poll of downstream max(id) that sees it`,
      `tidemark onEpochCommitted visibleLagMs over ${lags.length} epochs: p50 ${quantile(lags, 0.5)} ms, p99 ${quantile(lags, 0.99)} ms (last transaction of each epoch only)`,
    );
    const lat = (q: number): BenchFigure => ({
      metric: `commit-to-visible p${q * 100} @10k rows/s`,
      unit: 'ms',
      tidemark: quantile(tm.latenciesMs, q),
      baseline: quantile(sub.latenciesMs, q),
      baselineName: 'subscription',
      higherIsBetter: false,
    });
    return [lat(0.5), lat(0.99)];
  } finally {
    await w.feed.stop();
  }
}
