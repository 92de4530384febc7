import type { Epoch } from '../core/epoch.ts';
import type { EpochCommitInfo } from '../runtime/changefeed.ts';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
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
  /** Running and within its lag budget (true), over it (false), not running (null). */
  withinLagBudget: boolean | null;
}

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Every `tidemark_*` metric of the server (docs/operations.md lists them), on prom-client, next
 * to its default process and Node.js series (CPU, memory, file descriptors, event-loop lag, GC,
 * heap). Counters and histograms are pushed by the changefeed callbacks; gauges are read from
 * `gauges()` at scrape time. One registry per server, so tests can run several.
 */
/** What the metrics read from each source's change hub at scrape time. */
export interface SourceGauges {
  sourceKey: string;
  stats: HubStats;
  subscriptions: SubscriptionInfo[];
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readGauges: () => readonly FeedGauges[] = () => [];
  /** First in the registry: its collect fills every gauge below before they are read. */
  private readonly feeds = new Gauge({
    name: 'tidemark_changefeeds',
    help: 'Changefeeds known to the server, by state.',
    labelNames: ['state'],
    registers: [this.registry],
    collect: () => this.collect(this.readGauges()),
  });
  private readonly errorCodes = new Map<string, Set<string>>();
  private readonly feedLabel = ['changefeed'] as const;
  private readonly rowsIn = this.counter(
    'tidemark_changefeed_rows_in_total',
    'Source row changes committed downstream (before per-key collapsing).',
  );
  private readonly rowsOut = this.counter(
    'tidemark_changefeed_rows_out_total',
    'Rows written to the sink (after per-key collapsing).',
  );
  private readonly bytesIn = this.counter(
    'tidemark_changefeed_bytes_in_total',
    'Approximate bytes of source row text committed downstream.',
  );
  private readonly bytesOut = this.counter(
    'tidemark_changefeed_bytes_out_total',
    'Approximate bytes written to the sink (bytes in scaled by rows out / rows in).',
  );
  private readonly epochs = this.counter('tidemark_changefeed_epochs_total', 'Epochs committed downstream.');
  private readonly errors = new Counter({
    name: 'tidemark_changefeed_errors_total',
    help: 'Errors met by the changefeed, retried or not, by error code.',
    labelNames: ['changefeed', 'code'],
    registers: [this.registry],
  });
  private readonly commitLatency = this.histogram(
    'tidemark_changefeed_epoch_commit_seconds',
    'Wall time of one downstream epoch commit.',
  );
  private readonly visibleLatency = this.histogram(
    'tidemark_changefeed_commit_to_visible_seconds',
    'Source commit of the last transaction of an epoch to its visibility downstream.',
  );
  private readonly state = this.gauge(
    'tidemark_changefeed_state',
    '1 for the state the changefeed is in (running, paused, failed).',
    ['changefeed', 'state'],
  );
  private readonly epoch = this.gauge(
    'tidemark_changefeed_epoch',
    'Number of the last epoch committed downstream.',
  );
  private readonly rate = this.gauge(
    'tidemark_changefeed_rows_per_second',
    'Source changes per second over the last few seconds.',
  );
  private readonly snapshotRows = this.gauge(
    'tidemark_changefeed_snapshot_rows',
    'Rows copied by the initial snapshot.',
  );
  private readonly checkpointLagS = this.gauge(
    'tidemark_changefeed_checkpoint_lag_seconds',
    'Now − source commit time of the oldest change not yet committed downstream.',
  );
  private readonly checkpointLagB = this.gauge(
    'tidemark_changefeed_checkpoint_lag_bytes',
    'Source WAL end − checkpoint.',
  );
  private readonly resolvedLagS = this.gauge(
    'tidemark_changefeed_resolved_lag_seconds',
    'Time the resolved position has been behind the source WAL end (0 when caught up).',
  );
  private readonly resolvedLagB = this.gauge(
    'tidemark_changefeed_resolved_lag_bytes',
    'Source WAL end − resolved position.',
  );
  private readonly retainedWal = this.gauge(
    'tidemark_changefeed_retained_wal_bytes',
    'WAL the replication slot keeps in the source (current WAL − restart_lsn).',
  );
  private readonly lagBudget = this.gauge(
    'tidemark_changefeed_within_lag_budget',
    '1 when a running changefeed is within its lag budget (what /readyz checks), 0 when not.',
  );
  private readonly logBytes = this.gauge(
    'tidemark_source_log_disk_bytes',
    "Bytes on disk of a source's local change log (LMDB file and spill segments), by source.",
    ['source'],
  );
  private readonly logReaders = this.gauge(
    'tidemark_source_log_readers',
    "Changefeeds recorded as reading a source's change log (running or not), by source.",
    ['source'],
  );
  private readonly sourceMessages = this.gauge(
    'tidemark_source_messages_received',
    'Replication events the hub received from the source since it started, by source.',
    ['source'],
  );
  private readonly subscriptionIdle = this.gauge(
    'tidemark_source_subscription_idle_seconds',
    'Seconds since a changefeed last acknowledged on its source, by source, changefeed and state (active, idle, stale): a stale one holds the log and the source for nobody running.',
    ['source', 'changefeed', 'state'],
  );
  private readonly replicationStarts = this.gauge(
    'tidemark_source_replication_starts',
    'START_REPLICATION commands the hub sent since it started (1 + reconnects), by source.',
    ['source'],
  );

  constructor(
    gauges: () => readonly FeedGauges[],
    private readonly sources: () => readonly SourceGauges[] = () => [],
  ) {
    this.readGauges = gauges;
    collectDefaultMetrics({ register: this.registry });
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
    let codes = this.errorCodes.get(id);
    if (!codes) this.errorCodes.set(id, (codes = new Set()));
    codes.add(code);
  }

  /** Forgets a removed changefeed's series. */
  forget(id: string): void {
    const l = { changefeed: id };
    for (const c of [this.rowsIn, this.rowsOut, this.bytesIn, this.bytesOut, this.epochs]) c.remove(l);
    for (const code of this.errorCodes.get(id) ?? []) this.errors.remove({ changefeed: id, code });
    this.errorCodes.delete(id);
    this.commitLatency.remove(l);
    this.visibleLatency.remove(l);
  }

  /** The exposition text for `/metrics`, and its content type. */
  async render(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  private counter(name: string, help: string): Counter<'changefeed'> {
    return new Counter({ name, help, labelNames: [...this.feedLabel], registers: [this.registry] });
  }

  private histogram(name: string, help: string): Histogram<'changefeed'> {
    return new Histogram({
      name,
      help,
      labelNames: [...this.feedLabel],
      buckets: LATENCY_BUCKETS_S,
      registers: [this.registry],
    });
  }

  private gauge<L extends string = 'changefeed'>(
    name: string,
    help: string,
    labelNames: readonly L[] = ['changefeed'] as unknown as readonly L[],
  ): Gauge<L> {
    return new Gauge({ name, help, labelNames: [...labelNames], registers: [this.registry] });
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
      this.lagBudget,
      this.feeds,
      this.logBytes,
      this.logReaders,
      this.sourceMessages,
      this.replicationStarts,
      this.subscriptionIdle,
    ] as Gauge<string>[]) {
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
      if (f.withinLagBudget !== null) this.lagBudget.set(l, f.withinLagBudget ? 1 : 0);
    }
    for (const [state, n] of Object.entries(counts)) this.feeds.set({ state }, n);
    const now = Date.now();
    for (const { sourceKey, stats, subscriptions } of this.sources()) {
      const l = { source: sourceKey };
      this.logBytes.set(l, stats.logDiskBytes);
      this.logReaders.set(l, stats.subscriptions);
      this.sourceMessages.set(l, stats.eventsFromSource);
      this.replicationStarts.set(l, stats.replicationStarts);
      for (const sub of subscriptions) {
        const state = sub.active ? 'active' : sub.stale ? 'stale' : 'idle';
        this.subscriptionIdle.set(
          { source: sourceKey, changefeed: sub.id, state },
          Math.max(0, (now - sub.acknowledgedAtMs) / 1000),
        );
      }
    }
  }
}
