/**
 * `npm run bench -- changelog [--rows N] [--huge-rows N]`: what the shared puller and change log
 * buy, each figure beside the same work done with one replication slot per changefeed (the
 * runtime before the shared log, `slot-per-changefeed.ts`), same machine, same run.
 *
 *   1. fan-out (changelog-fanout.ts), for n = 1, 4, 16 changefeeds on one source database:
 *        total row changes delivered per second (rows × n / s), live (while the workload commits)
 *        and catching up (the workload committed while they were stopped)
 *   2. huge transaction (changelog-huge.ts), one source transaction of --huge-rows rows into a
 *      PostgreSQL sink, the changefeed in a child process: time from its commit until the sink's
 *      checkpoint passes it, and the child's peak RSS
 *
 * One private PostgreSQL 15 cluster (first free port from 55700), a fresh database per run.
 */
import { loadavg } from 'node:os';
import { freePort, startCluster, type PgCluster } from '../test/support/pg-cluster.ts';
import { PG_BIN_DIR } from './machine.ts';
import { mib } from './peak-rss.ts';
import type { BenchFigure, BenchOptions, BenchResult } from './report.ts';
import {
  fanout,
  type FanoutResult,
  type FanoutWorkload,
  type PhaseResult,
  type Variant,
} from './changelog-fanout.ts';
import { BASELINE_HEAP_MIB, hugeTransaction, type HugeResult } from './changelog-huge.ts';

export interface ChangelogBenchOptions extends BenchOptions {
  /** `--huge-rows N`: rows of the one huge source transaction (default `DEFAULT_HUGE_ROWS`). */
  readonly hugeRows?: number | null;
}

const FEEDS = [1, 4, 16];
const DEFAULT_ROWS = 200_000;
/** The issue's (and huge-transaction.test.ts's) size; the whole bench takes ~6 min on 2 CPUs with it. */
const DEFAULT_HUGE_ROWS = 5_000_000;
const TXN_ROWS = 1000;
const PORT_FROM = 55_700;
const BASELINE = 'one slot per changefeed';

export async function run(options: ChangelogBenchOptions): Promise<BenchResult> {
  // Half inserts of new ids, half updates of hot keys, whole transactions of TXN_ROWS each.
  const half = Math.max(TXN_ROWS, Math.floor((options.rows ?? DEFAULT_ROWS) / 2 / TXN_ROWS) * TXN_ROWS);
  const rows = 2 * half;
  const hugeRows = options.hugeRows ?? DEFAULT_HUGE_ROWS;
  const workload: FanoutWorkload = { rows: half, hotKeys: Math.min(10_000, half), txnRows: TXN_ROWS };
  const loadBefore = loadavg();
  const cluster = await startCluster({
    port: await freePort(PORT_FROM),
    binDir: PG_BIN_DIR,
    settings: { max_worker_processes: 16, max_logical_replication_workers: 8, autovacuum: 'on' },
  });
  options.log(`postgres cluster on port ${cluster.port}`);
  const figures: BenchFigure[] = [];
  const notes: string[] = [];
  try {
    for (const n of FEEDS) {
      const r: Partial<Record<Variant, FanoutResult>> = {};
      for (const variant of ['tidemark', 'slots'] as const) {
        const x = await fanout({ cluster, variant, n, workload, log: options.log });
        r[variant] = x;
        options.log(
          `fan-out ×${n} ${variant}: live ${describe(x, x.live, n)}; catch-up ${describe(x, x.catchUp, n)}`,
        );
      }
      const tm = r.tidemark!;
      const sl = r.slots!;
      const feeds = `${n} changefeed${n > 1 ? 's' : ''}`;
      for (const phase of ['live', 'catchUp'] as const) {
        figures.push({
          metric: `${feeds} ${phase === 'live' ? 'live' : 'catch-up'}: rows delivered/s (total)`,
          tidemark: perSec(tm, tm[phase], n),
          baseline: perSec(sl, sl[phase], n),
          baselineName: BASELINE,
          unit: 'rows/s',
          higherIsBetter: true,
        });
      }
      notes.push(
        `fan-out ×${n} live: tidemark ${describe(tm, tm.live, n)}; ${BASELINE} ${describe(sl, sl.live, n)}`,
        `fan-out ×${n} catch-up: tidemark ${describe(tm, tm.catchUp, n)}; ${BASELINE} ${describe(sl, sl.catchUp, n)}`,
      );
    }
    const huge = await hugeRuns(cluster, hugeRows, options);
    figures.push(...huge.figures);
    notes.push(...huge.notes);
  } finally {
    await cluster.stop();
  }
  const loadAfter = loadavg();
  notes.unshift(
    `fan-out workload: ${rows.toLocaleString('en-US')} row changes per phase (${half.toLocaleString('en-US')} inserts of new ids, then ${half.toLocaleString('en-US')} updates over ${workload.hotKeys.toLocaleString('en-US')} hot keys, ${TXN_ROWS} rows per transaction` +
      `${rows === DEFAULT_ROWS ? '' : `; from --rows, default ${DEFAULT_ROWS.toLocaleString('en-US')}`}); figure = rows × n / time until the last changefeed's sink checkpoint holds the phase's last transaction`,
    'live = the workload commits while the changefeeds run, timed from its first transaction (so the source\'s write speed bounds it: compare with "source wrote" below); catch-up = the changefeeds stopped, the workload committed, the changefeeds started again from their checkpoints and timed from that start (consumer speed alone)',
    'fan-out: tidemark = n × startChangefeed in this process (one slot, one decode, LMDB change log in a temp dir); baseline = n × PostgresSource → EpochBuilder → sink in this process, each with its own permanent slot and walsender decode; snapshots of the empty table not timed; same epoch options (defaults) for both',
    'fan-out sink: SQLite, one file per changefeed (WAL, synchronous=NORMAL: no fsync per epoch, so the disk does not dominate; exactly-once checkpoint in the epoch transaction; the same per-row cost on both sides). Variants run one after the other, tidemark first',
    `huge transaction: ${hugeRows.toLocaleString('en-US')} rows of ~200 bytes in one source transaction${hugeRows === DEFAULT_HUGE_ROWS ? '' : ` (--huge-rows; default ${DEFAULT_HUGE_ROWS.toLocaleString('en-US')})`}; PostgreSQL sink in another database of the same cluster; time = INSERT's COMMIT returned → sink checkpoint past the WAL position read just before that COMMIT; peak RSS = VmHWM of the child process, read every 50 ms`,
    `huge transaction: tidemark = the real CLI from source (node --import tsx src/cli/main-entry.ts start, default node flags); baseline = slot-per-changefeed-process.ts (node --max-old-space-size=${BASELINE_HEAP_MIB} --import tsx), both paying tsx's loader`,
    `machine load average (1/5/15 min): before ${fmtLoad(loadBefore)}, after ${fmtLoad(loadAfter)}; other engineers' tests share these 2 CPUs, so compare ratios, not absolute rates`,
  );
  return { name: 'changelog', figures, notes };
}

async function hugeRuns(
  cluster: PgCluster,
  rows: number,
  options: BenchOptions,
): Promise<{ figures: BenchFigure[]; notes: string[] }> {
  // Generous (≥ ~10k rows/s), so only a stall or a crawl times out, never a slow machine's normal run.
  const timeoutMs = 120_000 + rows / 10;
  const r: Partial<Record<Variant, HugeResult>> = {};
  for (const variant of ['tidemark', 'slots'] as const) {
    r[variant] = await hugeTransaction({ cluster, variant, rows, timeoutMs, log: options.log });
  }
  const tm = r.tidemark!;
  const sl = r.slots!;
  const label = `huge txn ${formatRows(rows)}`;
  const figures: BenchFigure[] = [
    {
      metric: `${label}: commit → sink checkpoint`,
      tidemark: seconds(tm.ms),
      baseline: seconds(sl.ms),
      baselineName: BASELINE,
      unit: 's',
      higherIsBetter: false,
    },
    {
      metric: `${label}: peak RSS`,
      tidemark: mib(tm.peakRssBytes),
      baseline: mib(sl.peakRssBytes),
      baselineName: BASELINE,
      unit: 'MiB',
      higherIsBetter: false,
    },
  ];
  const describeHuge = (h: HugeResult) =>
    `${h.outcome === 'ok' ? `${seconds(h.ms).toFixed(1)} s` : h.outcome}, peak RSS ${mib(h.peakRssBytes).toFixed(0)} MiB, source INSERT took ${(h.insertMs / 1000).toFixed(1)} s`;
  return {
    figures,
    notes: [`huge transaction: tidemark ${describeHuge(tm)}; ${BASELINE} ${describeHuge(sl)}`],
  };
}

function perSec(r: FanoutResult, phase: PhaseResult, n: number): number {
  return (r.changesPerFeed * n * 1000) / phase.ms;
}

function describe(r: FanoutResult, phase: PhaseResult, n: number): string {
  return `${(phase.ms / 1000).toFixed(1)} s, ${Math.round(perSec(r, phase, n)).toLocaleString('en-US')} rows/s (source wrote the workload in ${(phase.writeMs / 1000).toFixed(1)} s)`;
}

function seconds(ms: number | null): number {
  return ms === null ? Number.NaN : ms / 1000;
}

function formatRows(n: number): string {
  return n % 1_000_000 === 0 ? `${n / 1_000_000}M rows` : n % 1000 === 0 ? `${n / 1000}k rows` : `${n} rows`;
}

function fmtLoad(l: readonly number[]): string {
  return l.map((x) => x.toFixed(2)).join(' ');
}
