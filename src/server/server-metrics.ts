import type { Epoch } from '../core/epoch.ts';
import type { EpochCommitInfo } from '../runtime/changefeed.ts';
import { Registry } from './prometheus.ts';
import type { HubStats, SubscriptionInfo } from '../log/hub.ts';

/** What the metrics read from each changefeed at scrape time. */
export interface FeedGauges {
  id: string;
  state: 'running' | 'paused' | 'failed';
  epoch: number;
  rowsPerSec: number;
  snapshotRows: number;
  checkpointLagMs: number | null;
  checkpointLagBytes: number | null;
  resolvedLagMs: number | null;
  resolvedLagBytes: number | null;
  retainedWalBytes: number | null;
}

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Every `tidemark_*` metric of the server (docs/operations.md lists them). Counters and
 * histograms are pushed by the changefeed callbacks; gauges are read from `gauges()` at scrape.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly startedMs = Date.now();
  private readonly rowsIn = this.registry.counter(
    'tidemark_changefeed_rows_in_total',
    'Source row changes committed downstream (before per-key collapsing).',
  );
  private readonly rowsOut = this.registry.counter(
    'tidemark_changefeed_rows_out_total',
    'Rows written to the sink (after per-key collapsing).',
  );
  private readonly bytesIn = this.registry.counter(
    'tidemark_changefeed_bytes_in_total',
    'Approximate bytes of source row text committed downstream.',
  );
  private readonly bytesOut = this.registry.counter(
    'tidemark_changefeed_bytes_out_total',
    'Approximate bytes written to the sink (bytes in scaled by rows out / rows in).',
  );
  private readonly epochs = this.registry.counter(
    'tidemark_changefeed_epochs_total',
    'Epochs committed downstream.',
  );
  private readonly errors = this.registry.counter(
    'tidemark_changefeed_errors_total',
    'Errors met by the changefeed, retried or not, by error code.',
  );
  private readonly commitLatency = this.registry.histogram(
    'tidemark_changefeed_epoch_commit_seconds',
    'Wall time of one downstream epoch commit.',
    LATENCY_BUCKETS_S,
  );
  private readonly visibleLatency = this.registry.histogram(
    'tidemark_changefeed_commit_to_visible_seconds',
    'Source commit of the last transaction of an epoch to its visibility downstream.',
    LATENCY_BUCKETS_S,
  );
  private readonly state = this.registry.gauge(
    'tidemark_changefeed_state',
    '1 for the state the changefeed is in (running, paused, failed).',
  );
  private readonly epoch = this.registry.gauge(
    'tidemark_changefeed_epoch',
    'Number of the last epoch committed downstream.',
  );
  private readonly rate = this.registry.gauge(
    'tidemark_changefeed_rows_per_second',
    'Source changes per second over the last few seconds.',
  );
  private readonly snapshotRows = this.registry.gauge(
    'tidemark_changefeed_snapshot_rows',
    'Rows copied by the initial snapshot.',
  );
  private readonly checkpointLagS = this.registry.gauge(
    'tidemark_changefeed_checkpoint_lag_seconds',
    'Now − source commit time of the oldest change not yet committed downstream.',
  );
  private readonly checkpointLagB = this.registry.gauge(
    'tidemark_changefeed_checkpoint_lag_bytes',
    'Source WAL end − checkpoint.',
  );
  private readonly resolvedLagS = this.registry.gauge(
    'tidemark_changefeed_resolved_lag_seconds',
    'Time the resolved position has been behind the source WAL end (0 when caught up).',
  );
  private readonly resolvedLagB = this.registry.gauge(
    'tidemark_changefeed_resolved_lag_bytes',
    'Source WAL end − resolved position.',
  );
  private readonly retainedWal = this.registry.gauge(
    'tidemark_changefeed_retained_wal_bytes',
    'WAL the replication slot keeps in the source (current WAL − restart_lsn).',
  );
  private readonly memory = this.registry.gauge(
    'tidemark_process_memory_bytes',
    'Memory of the server process, by kind (rss, heap_used, heap_total, external).',
  );
  private readonly uptime = this.registry.gauge(
    'tidemark_process_uptime_seconds',
    'Seconds since the server started.',
  );
  private readonly logBytes = this.registry.gauge(
    'tidemark_source_log_disk_bytes',
    "Bytes on disk of a source's local change log (LMDB file and spill segments), by source.",
  );
  private readonly logReaders = this.registry.gauge(
    'tidemark_source_log_readers',
    "Changefeeds recorded as reading a source's change log (running or not), by source.",
  );
  private readonly sourceMessages = this.registry.gauge(
    'tidemark_source_messages_received',
    'Replication events the hub received from the source since it started, by source.',
  );
  private readonly subscriptionIdle = this.registry.gauge(
    'tidemark_source_subscription_idle_seconds',
    'Seconds since a changefeed last acknowledged on its source, by source, changefeed and state (active, idle, stale): a stale one holds the log and the source for nobody running.',
  );
  private readonly replicationStarts = this.registry.gauge(
    'tidemark_source_replication_starts',
    'START_REPLICATION commands the puller sent since it started (1 + reconnects), by slot.',
  );
  private readonly feeds = this.registry.gauge(
    'tidemark_changefeeds',
    'Changefeeds known to the server, by state.',
  );

  constructor(
    gauges: () => readonly FeedGauges[],
    private readonly sources: () => readonly {
      sourceKey: string;
      stats: HubStats;
      subscriptions: SubscriptionInfo[];
    }[] = () => [],
  ) {
    this.registry.onCollect(() => this.collect(gauges()));
  }

  private collectSources(): void {
    for (const g of [
      this.logBytes,
      this.logReaders,
      this.sourceMessages,
      this.replicationStarts,
      this.subscriptionIdle,
    ])
      g.reset();
    const now = Date.now();
    for (const { sourceKey, stats, subscriptions } of this.sources()) {
      const l = { source: sourceKey };
      this.logBytes.set(l, stats.logDiskBytes);
      this.logReaders.set(l, stats.subscriptions);
      this.sourceMessages.set(l, stats.eventsFromSource);
      this.replicationStarts.set(l, stats.replicationStarts);
      for (const s of subscriptions) {
        const state = s.active ? 'active' : s.stale ? 'stale' : 'idle';
        this.subscriptionIdle.set(
          { source: sourceKey, changefeed: s.id, state },
          Math.max(0, (now - s.acknowledgedAtMs) / 1000),
        );
      }
    }
  }

  epochCommitted(id: string, e: Epoch, info: EpochCommitInfo): void {
    const l = { changefeed: id };
    let out = 0;
    for (const t of e.tables)
      out += t.deletes.length + t.upserts.length + t.partialUpdates.length + t.rowDeltas.length;
    this.rowsIn.inc(l, e.sourceChanges);
    this.rowsOut.inc(l, out);
    this.bytesIn.inc(l, info.bytes);
    this.bytesOut.inc(l, e.sourceChanges > 0 ? Math.round((info.bytes * out) / e.sourceChanges) : 0);
    this.epochs.inc(l);
    this.commitLatency.observe(l, info.commitMs / 1000);
    this.visibleLatency.observe(l, info.visibleLagMs / 1000);
  }

  error(id: string, code: string): void {
    this.errors.inc({ changefeed: id, code });
  }

  /** Forgets a removed changefeed's series. */
  forget(id: string): void {
    const l = { changefeed: id };
    for (const c of [this.rowsIn, this.rowsOut, this.bytesIn, this.bytesOut, this.epochs, this.errors])
      c.remove(l);
    this.commitLatency.remove(l);
    this.visibleLatency.remove(l);
  }

  /** The exposition text for `/metrics`. */
  render(): string {
    return this.registry.render();
  }

  private collect(all: readonly FeedGauges[]): void {
    for (const g of [
      this.state,
      this.epoch,
      this.rate,
      this.snapshotRows,
      this.checkpointLagS,
      this.checkpointLagB,
      this.resolvedLagS,
      this.resolvedLagB,
      this.retainedWal,
      this.feeds,
    ]) {
      g.reset();
    }
    const counts = { running: 0, paused: 0, failed: 0 };
    for (const f of all) {
      const l = { changefeed: f.id };
      counts[f.state]++;
      for (const s of ['running', 'paused', 'failed'] as const)
        this.state.set({ ...l, state: s }, f.state === s ? 1 : 0);
      this.epoch.set(l, f.epoch);
      this.rate.set(l, f.rowsPerSec);
      this.snapshotRows.set(l, f.snapshotRows);
      if (f.checkpointLagMs !== null) this.checkpointLagS.set(l, f.checkpointLagMs / 1000);
      if (f.checkpointLagBytes !== null) this.checkpointLagB.set(l, f.checkpointLagBytes);
      if (f.resolvedLagMs !== null) this.resolvedLagS.set(l, f.resolvedLagMs / 1000);
      if (f.resolvedLagBytes !== null) this.resolvedLagB.set(l, f.resolvedLagBytes);
      if (f.retainedWalBytes !== null) this.retainedWal.set(l, f.retainedWalBytes);
    }
    for (const [state, n] of Object.entries(counts)) this.feeds.set({ state }, n);
    const m = process.memoryUsage();
    this.memory.set({ kind: 'rss' }, m.rss);
    this.memory.set({ kind: 'heap_used' }, m.heapUsed);
    this.memory.set({ kind: 'heap_total' }, m.heapTotal);
    this.memory.set({ kind: 'external' }, m.external);
    this.uptime.set({}, (Date.now() - this.startedMs) / 1000);
    this.collectSources();
  }
}
