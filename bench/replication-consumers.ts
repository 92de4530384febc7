/**
 * The three consumers of the replication benchmark, each draining the same prepared WAL alone:
 *
 *   tidemark        startChangefeed → PostgreSQL sink (another database of the same cluster)
 *   pg_recvlogical  pgoutput decoded by the walsender, streamed over TCP into /dev/null
 *   subscription    PostgreSQL's own logical replication applying into another database
 *
 * Each returns its drain time and its peak RSS (Tidemark: this process; the others: the client
 * process or the apply worker, sampled from /proc while it runs).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { PgCluster } from '../test/support/pg-cluster.ts';
import type { Changefeed, EpochCommitInfo } from '../src/runtime/changefeed.ts';
import { startBenchChangefeed } from './bench-engine.ts';
import type { ChangefeedConfig } from '../src/runtime/changefeed-config.ts';
import { createLogger } from '../src/runtime/logger.ts';
import type { Epoch } from '../src/core/epoch.ts';
import { peakRssBytes, resetPeakRss, samplePeakRss } from './peak-rss.ts';
import { sleep, withClient } from './bench-cluster.ts';
import { MARKER_ID } from './replication-workload.ts';

export interface DrainResult {
  readonly ms: number;
  readonly peakRssBytes: number | null;
  /** Tidemark only: epochs committed and the largest one in source changes. */
  readonly epochs?: { count: number; maxChanges: number };
}

/** A running changefeed whose committed epochs can be awaited by number of source changes. */
export interface WatchedFeed {
  readonly feed: Changefeed;
  /** Resolves once the feed has committed at least `changes` row changes since it started. */
  untilChanges(changes: number): Promise<void>;
  /** Resolves once the feed is streaming. */
  readonly streaming: Promise<void>;
  /** Every epoch committed, with its `visibleLagMs`, in order. */
  readonly epochs: { at: number; changes: number; visibleLagMs: number; commitMs: number }[];
}

export async function watchFeed(cfg: ChangefeedConfig): Promise<WatchedFeed> {
  let total = 0;
  const waiters: { changes: number; resolve: () => void }[] = [];
  const epochs: WatchedFeed['epochs'] = [];
  let onStreaming: () => void = () => {};
  const streaming = new Promise<void>((r) => (onStreaming = r));
  const feed = await startBenchChangefeed(cfg, {
    logger: createLogger({ level: 'warn' }),
    onStatus: (s) => {
      if (s.phase === 'streaming') onStreaming();
    },
    onEpochCommitted: (e: Epoch, info: EpochCommitInfo) => {
      total += e.sourceChanges;
      epochs.push({
        at: Date.now(),
        changes: e.sourceChanges,
        visibleLagMs: info.visibleLagMs,
        commitMs: info.commitMs,
      });
      for (const w of [...waiters]) {
        if (total >= w.changes) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    },
  });
  const failed = feed.done.then(() => {
    throw new Error(`changefeed ${cfg.id} stopped unexpectedly`);
  });
  failed.catch(() => {});
  return {
    feed,
    epochs,
    streaming: Promise.race([streaming, failed]),
    untilChanges(changes) {
      if (total >= changes) return Promise.resolve();
      const reached = new Promise<void>((resolve) => waiters.push({ changes, resolve }));
      return Promise.race([reached, failed]);
    },
  };
}

export async function drainTidemark(cfg: ChangefeedConfig, changes: number): Promise<DrainResult> {
  resetPeakRss();
  const t0 = Date.now();
  const w = await watchFeed(cfg);
  try {
    await w.untilChanges(changes);
    const maxChanges = Math.max(0, ...w.epochs.map((e) => e.changes));
    return {
      ms: Date.now() - t0,
      peakRssBytes: peakRssBytes(),
      epochs: { count: w.epochs.length, maxChanges },
    };
  } finally {
    await w.feed.stop();
  }
}

export async function drainRecvlogical(options: {
  cluster: PgCluster;
  dbname: string;
  slot: string;
  publication: string;
  endLsn: string;
}): Promise<DrainResult> {
  const { cluster } = options;
  const args = [
    '-d',
    `host=127.0.0.1 port=${cluster.port} dbname=${options.dbname} user=${cluster.user}`,
    '-S',
    options.slot,
    '--start',
    `--endpos=${options.endLsn}`,
    '--no-loop',
    '-o',
    'proto_version=1',
    '-o',
    `publication_names=${options.publication}`,
    '-f',
    '/dev/null',
  ];
  const t0 = Date.now();
  const child = spawn(join(cluster.binDir, 'pg_recvlogical'), args, {
    env: { ...process.env, PGPASSWORD: cluster.password },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const rss = samplePeakRss({ pid: () => child.pid ?? null, intervalMs: 100 });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const ms = Date.now() - t0;
  const peak = rss.stop();
  if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}: ${stderr}`);
  return { ms, peakRssBytes: peak };
}

/** Enables the (idle, prepared) subscription and waits until the marker row is applied. */
export async function drainSubscription(options: {
  subscriberUrl: string;
  subscription: string;
  timeoutMs: number;
}): Promise<DrainResult> {
  return withClient(options.subscriberUrl, async (c) => {
    let pid: number | null = null;
    const rss = samplePeakRss({ pid: () => pid, intervalMs: 100 });
    const t0 = Date.now();
    try {
      await c.query(`ALTER SUBSCRIPTION ${options.subscription} ENABLE`);
      for (;;) {
        const r = await c.query(`SELECT 1 FROM public.items WHERE id = ${MARKER_ID}`);
        if (r.rowCount === 1) break;
        if (pid === null) {
          const p = await c.query<{ pid: number | null }>(
            'SELECT pid FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL',
            [options.subscription],
          );
          pid = p.rows[0]?.pid ?? null;
        }
        if (Date.now() - t0 > options.timeoutMs) throw new Error('subscription did not reach the marker row');
        await sleep(50);
      }
      return { ms: Date.now() - t0, peakRssBytes: rss.stop() };
    } finally {
      rss.stop();
    }
  });
}
