/**
 * The huge-transaction run of the `changelog` benchmark: one source transaction of `rows` rows
 * (~200 bytes each, as test/changefeed/huge-transaction.test.ts) replicated into a PostgreSQL
 * sink by a child process, whose peak RSS (VmHWM) is sampled from /proc every 50 ms.
 *
 *   tidemark  node --import tsx src/cli/main-entry.ts start --config …   (the real CLI, from source)
 *   slots     node --max-old-space-size=… --import tsx bench/slot-per-changefeed-process.ts …
 *
 *   child streaming, sink checkpoint past a fresh WAL position ─► BEGIN; INSERT rows; read the WAL
 *   insert position L; COMMIT ─► t0 ─► sink checkpoint ≥ L (only the huge transaction's commit,
 *   or a later one, can be) ─► time; the sink's row count is checked afterwards.
 *
 * A child that dies (heap exhausted) or passes `timeoutMs` is reported with what it reached (its
 * last progress line) instead of failing the benchmark.
 */
import { spawn } from 'node:child_process';
import pg from 'pg';
import type { PgCluster } from '../test/support/pg-cluster.ts';
import { Lsn } from '../src/source/postgres/lsn.ts';
import { createDatabase, sleep, withClient } from './bench-cluster.ts';
import { dropIdleSlots, insertLsn, type Variant } from './changelog-fanout.ts';
import { samplePeakRss } from './peak-rss.ts';
import { checkpointPassed, ROOT, spawnTidemarkCli, track, type Child } from './cli-child.ts';

const FEED_ID = 'huge';
const BIG_DDL = 'CREATE TABLE public.big (id bigint PRIMARY KEY, grp int NOT NULL, pad text NOT NULL)';
/** Heap limit of the baseline: generous, but bounded so exhaustion is a result, not a swap storm. */
export const BASELINE_HEAP_MIB = 8192;
const LIVE_TIMEOUT_MS = 120_000;

export interface HugeResult {
  /** INSERT's commit → sink checkpoint past it; null when the child did not get there. */
  readonly ms: number | null;
  readonly peakRssBytes: number | null;
  /** `ok`, or what happened instead (`died: exit 134 …`, `timed out …`). */
  readonly outcome: string;
  /** How long the source took to write and commit the transaction. */
  readonly insertMs: number;
}

export async function hugeTransaction(opts: {
  cluster: PgCluster;
  variant: Variant;
  rows: number;
  timeoutMs: number;
  log: (line: string) => void;
}): Promise<HugeResult> {
  const { cluster, variant, rows } = opts;
  const srcUrl = await createDatabase(cluster, `cl_huge_${variant}`);
  const dstUrl = await createDatabase(cluster, `cl_huge_${variant}_dst`);
  await withClient(srcUrl, (c) => c.query(BIG_DDL));
  const child =
    variant === 'tidemark'
      ? spawnTidemarkCli({ id: FEED_ID, srcUrl, dstUrl, tables: ['public.big'] })
      : spawnSlots(srcUrl, dstUrl);
  const rss = samplePeakRss({ pid: () => child.proc.pid ?? null, intervalMs: 50 });
  const sink = new pg.Client({ connectionString: dstUrl });
  await sink.connect();
  try {
    const live = await insertLsn(srcUrl);
    const liveBy = Date.now() + LIVE_TIMEOUT_MS;
    while (!(await checkpointPassed(sink, FEED_ID, live))) {
      if (child.exit !== null) throw new Error(`${variant} child exited before streaming: ${child.tail()}`);
      if (Date.now() > liveBy) throw new Error(`${variant} child not streaming after 120 s: ${child.tail()}`);
      await sleep(50);
    }
    opts.log(
      `huge (${variant}): streaming; inserting ${rows.toLocaleString('en-US')} rows in one transaction`,
    );
    const { lsn: target, insertMs } = await insertHuge(srcUrl, rows);
    const t0 = performance.now();
    const deadline = Date.now() + opts.timeoutMs;
    let outcome = 'ok';
    for (;;) {
      if (await checkpointPassed(sink, FEED_ID, target)) break;
      if (child.exit !== null) {
        outcome = `died (${child.exit}) after ${((performance.now() - t0) / 1000).toFixed(1)} s${child.reached()}`;
        break;
      }
      if (Date.now() > deadline) {
        outcome = `timed out after ${(opts.timeoutMs / 1000).toFixed(0)} s${child.reached()}`;
        break;
      }
      await sleep(50);
    }
    const ms = outcome === 'ok' ? performance.now() - t0 : null;
    if (ms !== null) {
      const n = (await sink.query<{ n: string }>('SELECT count(*)::bigint::text AS n FROM public.big'))
        .rows[0]!.n;
      if (Number(n) !== rows)
        throw new Error(`${variant}: checkpoint passed ${target} but the sink holds ${n} rows`);
    }
    opts.log(
      `huge (${variant}): ${ms === null ? outcome : `${(ms / 1000).toFixed(1)} s`} (insert took ${(insertMs / 1000).toFixed(1)} s)`,
    );
    return { ms, peakRssBytes: rss.stop(), outcome, insertMs };
  } finally {
    rss.stop();
    await child.stop();
    await sink.end();
    await dropIdleSlots(srcUrl).catch(() => {});
  }
}

function spawnSlots(srcUrl: string, dstUrl: string): Child {
  const cfg = JSON.stringify({ id: FEED_ID, source: srcUrl, sink: dstUrl, tables: ['public.big'] });
  return track(
    spawn(
      process.execPath,
      [
        `--max-old-space-size=${BASELINE_HEAP_MIB}`,
        '--import',
        'tsx',
        'bench/slot-per-changefeed-process.ts',
        cfg,
      ],
      { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
}

/**
 * Commits the huge transaction and returns the WAL insert position read just before its COMMIT
 * (one simple query, so nothing else of ours runs in between): its commit record is at or after it.
 */
async function insertHuge(url: string, rows: number): Promise<{ lsn: Lsn; insertMs: number }> {
  return withClient(url, async (c) => {
    await c.query('SET synchronous_commit = on');
    const t = performance.now();
    const results = (await c.query(
      `BEGIN;
       INSERT INTO public.big SELECT g, g % 1000, repeat(md5(g::text), 5) FROM generate_series(1, ${rows}) g;
       SELECT pg_current_wal_insert_lsn()::text AS l;
       COMMIT;`,
    )) as unknown as pg.QueryResult<{ l?: string }>[];
    const l = results.map((r) => r.rows[0]?.l).find((x) => x !== undefined);
    if (!l) throw new Error('no WAL position from the huge transaction');
    return { lsn: Lsn.parse(l), insertMs: performance.now() - t };
  });
}
