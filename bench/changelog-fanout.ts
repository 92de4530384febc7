/**
 * Fan-out throughput of the `changelog` benchmark: n changefeeds on one source database, each
 * replicating `public.items` into its own SQLite file.
 *
 *   tidemark  n × startChangefeed ─► 1 slot tidemark_src_<hash> ─► 1 decode ─► change log ─► n readers
 *   slots     n × SlotPerChangefeed ─► n slots tidemark_<id> ─► n walsender decodes ─► n streams
 *
 * Each variant gets a fresh source database. Changefeeds start on the empty table (snapshot not
 * timed) and count as live once every sink checkpoint has passed a WAL position taken after they
 * all reported streaming. Then two phases, each with the same workload shape on new ids:
 *
 *   live      the workload commits while the changefeeds run; time = first transaction sent →
 *             the last changefeed's epoch holding the workload's last change committed
 *   catch-up  changefeeds stopped, the workload commits, changefeeds started again from their
 *             checkpoints; time = start → the same end (the source's write speed is out of it)
 *
 * Ends are taken in the commit callback of each changefeed (counting its row changes), not polled.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PgCluster } from '../test/support/pg-cluster.ts';
import { closeBenchEngines, startBenchChangefeed } from './bench-engine.ts';
import { defineChangefeed, type ChangefeedConfig } from '../src/runtime/changefeed-config.ts';
import { silentLogger } from '../src/runtime/logger.ts';
import type { Epoch } from '../src/core/epoch.ts';
import { Lsn } from '../src/source/postgres/lsn.ts';
import { createDatabase, sleep, withClient } from './bench-cluster.ts';
import { ITEMS_DDL } from './replication-workload.ts';
import { SlotPerChangefeed } from './slot-per-changefeed.ts';

export type Variant = 'tidemark' | 'slots';

/** `rows` inserts of new ids, then `rows` updates over the first `hotKeys` of them. */
export interface FanoutWorkload {
  readonly rows: number;
  readonly hotKeys: number;
  readonly txnRows: number;
}

export interface PhaseResult {
  /** Phase start (first transaction sent, or changefeeds started) → last changefeed caught up. */
  readonly ms: number;
  /** How long the source took to commit the workload (during `live`, before `catch-up`). */
  readonly writeMs: number;
}

export interface FanoutResult {
  readonly live: PhaseResult;
  readonly catchUp: PhaseResult;
  /** Row changes each changefeed delivered in each phase. */
  readonly changesPerFeed: number;
}

/** One running changefeed, as the measurement sees it: counts and a checkpoint from its commits. */
interface Feed {
  changes: number;
  checkpoint: Lsn | null;
  /** performance.now() of the commit that brought `changes` to the target, or null. */
  reachedAt: number | null;
  target: number;
  lastError: string | null;
  readonly streaming: Promise<void>;
  /** Rejects if the changefeed ends by itself (it should run until `stop`). */
  readonly ended: Promise<never>;
  stop(): Promise<void>;
}

const LIVE_TIMEOUT_MS = 120_000;

/** Total deadline for one measured phase: generous (a few k rows/s) so only a stall fails it. */
const phaseTimeoutMs = (changes: number, n: number) => 120_000 + (changes * n) / 5;

export async function fanout(opts: {
  cluster: PgCluster;
  variant: Variant;
  n: number;
  workload: FanoutWorkload;
  log: (line: string) => void;
}): Promise<FanoutResult> {
  const { cluster, variant, n, workload } = opts;
  const srcUrl = await createDatabase(cluster, `cl_${variant}_${n}`);
  await withClient(srcUrl, (c) => c.query(ITEMS_DDL));
  const dir = mkdtempSync(join(tmpdir(), `tidemark-bench-cl-${variant}-`));
  const configs = Array.from({ length: n }, (_, i) =>
    defineChangefeed({
      id: `${variant === 'tidemark' ? 'tm' : 'slot'}-${n}-${i}`,
      source: srcUrl,
      sink: `sqlite://${join(dir, `feed-${i}.db`)}`,
      tables: ['public.items'],
    }),
  );
  const open = (c: ChangefeedConfig) =>
    variant === 'tidemark' ? tidemarkFeed(c, join(dir, 'data')) : slotFeed(c);
  const start = () => Promise.all(configs.map(open));
  // The first start installs the source's schema-change capture: once, by the first feed alone
  // (n direct sources installing it at once race on CREATE SCHEMA and fail). Not timed.
  const startFirst = async () => {
    const first = await open(configs[0]!);
    await Promise.race([first.streaming, first.ended]);
    return [first, ...(await Promise.all(configs.slice(1).map(open)))];
  };
  const changes = 2 * workload.rows;
  const what = `${variant} ×${n}: ${changes} changes in every sink`;
  let feeds: Feed[] = [];
  try {
    feeds = await startFirst();
    await waitLive(srcUrl, feeds, `${variant} ×${n}`);
    for (const f of feeds) f.target = f.changes + changes;
    const t0 = performance.now();
    const liveWriteMs = await writeWorkload(srcUrl, workload, 1);
    await until(what, phaseTimeoutMs(changes, n), feeds, () => feeds.every((f) => f.reachedAt !== null));
    const live = { ms: Math.max(...feeds.map((f) => f.reachedAt!)) - t0, writeMs: liveWriteMs };

    await Promise.all(feeds.map((f) => f.stop()));
    feeds = [];
    const catchUpWriteMs = await writeWorkload(srcUrl, workload, workload.rows + 1);
    const t1 = performance.now();
    feeds = await start();
    for (const f of feeds) f.target = changes;
    await until(what, phaseTimeoutMs(changes, n), feeds, () => feeds.every((f) => f.reachedAt !== null));
    const catchUp = { ms: Math.max(...feeds.map((f) => f.reachedAt!)) - t1, writeMs: catchUpWriteMs };
    return { live, catchUp, changesPerFeed: changes };
  } finally {
    await Promise.all(feeds.map((f) => f.stop()));
    await closeBenchEngines();
    await dropIdleSlots(srcUrl);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits until every feed streams and its sink checkpoint passes a WAL position taken then. */
async function waitLive(srcUrl: string, feeds: readonly Feed[], what: string): Promise<void> {
  const failed = Promise.race(feeds.map((f) => f.ended));
  failed.catch(() => {});
  await Promise.race([Promise.all(feeds.map((f) => f.streaming)), failed]);
  const live = await insertLsn(srcUrl);
  await until(`${what}: every checkpoint past ${live}`, LIVE_TIMEOUT_MS, feeds, () =>
    feeds.every((f) => f.checkpoint !== null && f.checkpoint.compare(live) >= 0),
  );
}

/**
 * Commits the workload on ids `firstId…`: inserts in transactions of `txnRows`, then updates of
 * `txnRows` distinct hot keys per transaction. Deterministic. Returns the time it took.
 */
async function writeWorkload(url: string, w: FanoutWorkload, firstId: number): Promise<number> {
  return withClient(url, async (c) => {
    // Commits become decodable at once, not at the WAL writer's next flush (the cluster runs
    // synchronous_commit=off): the time is the consumers', not the flush delay's.
    await c.query('SET synchronous_commit = on');
    const t0 = performance.now();
    const last = firstId + w.rows - 1;
    for (let lo = firstId; lo <= last; lo += w.txnRows) {
      await c.query(
        'INSERT INTO public.items SELECT g, 0, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g',
        [lo, Math.min(last, lo + w.txnRows - 1)],
      );
    }
    for (let done = 0; done < w.rows; done += w.txnRows) {
      const lo = firstId + (done % w.hotKeys);
      await c.query(
        `UPDATE public.items SET grp = grp + 1, payload = md5(id::text || ':' || (grp + 1)::text)
          WHERE id BETWEEN $1::bigint AND $2::bigint`,
        [lo, lo + Math.min(w.txnRows, w.rows - done) - 1],
      );
    }
    return performance.now() - t0;
  });
}

function newFeed(stop: () => Promise<void>, streaming: Promise<void>, done: Promise<void>, id: string): Feed {
  const feed: Feed = {
    changes: 0,
    checkpoint: null,
    reachedAt: null,
    target: Number.POSITIVE_INFINITY,
    lastError: null,
    streaming,
    ended: done.then(
      () => {
        throw new Error(`changefeed ${id} stopped by itself${feed.lastError ? `: ${feed.lastError}` : ''}`);
      },
      (err: unknown) => {
        throw new Error(`changefeed ${id} failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    ),
    stop,
  };
  feed.ended.catch(() => {});
  return feed;
}

function committed(f: Feed, e: Epoch): void {
  f.changes += e.sourceChanges;
  f.checkpoint = Lsn.parse(e.checkpoint.position);
  if (f.reachedAt === null && f.changes >= f.target) f.reachedAt = performance.now();
}

async function tidemarkFeed(cfg: ChangefeedConfig, dataDir: string): Promise<Feed> {
  let onStreaming: () => void = () => {};
  const streaming = new Promise<void>((r) => (onStreaming = r));
  let self: Feed | null = null;
  const cf = await startBenchChangefeed(
    cfg,
    {
      logger: silentLogger,
      onStatus: (s) => {
        if (s.phase === 'streaming') onStreaming();
      },
      onEpochCommitted: (e) => committed(self!, e),
      // Retried errors are invisible with a silent logger; kept for the timeout message.
      onError: (e) => {
        if (self) self.lastError = `${e.code}: ${e.message}`;
      },
    },
    dataDir,
  );
  self = newFeed(() => cf.stop(), streaming, cf.done, cfg.id);
  return self;
}

async function slotFeed(cfg: ChangefeedConfig): Promise<Feed> {
  let self: Feed | null = null;
  const p = SlotPerChangefeed.start(cfg, { onEpochCommitted: (e) => committed(self!, e) });
  self = newFeed(() => p.stop(), p.streaming, p.done, cfg.id);
  return self;
}

/** Polls `done` every 5 ms; fails when a feed ends or the deadline passes (never hangs). */
async function until(
  what: string,
  timeoutMs: number,
  feeds: readonly Feed[],
  done: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const failed = Promise.race(feeds.map((f) => f.ended));
  failed.catch(() => {});
  while (!done()) {
    if (Date.now() > deadline) {
      const errors = feeds.flatMap((f) => (f.lastError ? [f.lastError] : []));
      throw new Error(`timed out: ${what}${errors.length > 0 ? ` (last error: ${errors[0]})` : ''}`);
    }
    await Promise.race([sleep(5), failed]);
  }
}

/** The source's WAL insert position now (past every commit that has returned). */
export async function insertLsn(url: string): Promise<Lsn> {
  return withClient(url, async (c) =>
    Lsn.parse((await c.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l),
  );
}

/** Drops the database's slots once nobody holds them, so finished runs retain no WAL (≤ 5 s). */
export async function dropIdleSlots(url: string): Promise<void> {
  await withClient(url, async (c) => {
    for (let i = 0; i < 50; i++) {
      await c.query(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
          WHERE database = current_database() AND NOT active`,
      );
      const left = await c.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = current_database()',
      );
      if (left.rows[0]!.n === 0) return;
      await sleep(100);
    }
  });
}
