/**
 * Runs one changefeed: snapshot once, then stream forever, one epoch at a time.
 *
 *   sink.open() ─► checkpoint C? ──no──► source slot + exported snapshot at P ─► sink.writeSnapshot(…, P)
 *        │                                                                           │  (C := P)
 *        └──yes─────────────────────────────────────────────────────────────────────┘
 *   source.stream(after C) ─► EpochBuilder (collapse per key) ─cut at a commit─► sink.commitEpoch(e)
 *                                    ▲                                             │
 *                                    └────── source.acknowledge(e.checkpoint) ◄────┘
 *
 * At most one epoch is being committed while the next one fills; when the filling one outgrows
 * `memoryQuotaBytes` the stream waits for the commit (back-pressure reaches the socket). Any
 * error tears the attempt down; retriable ones start a new attempt after a backoff, from the
 * checkpoint the sink holds, so nothing is lost or applied twice.
 */
import type { ChangefeedConfig } from './changefeed-config.ts';
import { initialStatus, type ChangefeedStatus } from './changefeed-status.ts';
import type { Logger } from './logger.ts';
import { EpochBuilder } from '../coordinator/epoch-builder.ts';
import { createSink } from '../sink/create-sink.ts';
import type { Epoch, Sink, SnapshotRows } from '../sink/sink.ts';
import { PostgresSource } from '../source/postgres/pg-source.ts';
import { Lsn } from '../source/postgres/lsn.ts';
import { isRetriable, TidemarkError } from '../errors/tidemark-error.ts';
import { backoffMs } from './backoff.ts';
import { ViewStage } from './view-stage.ts';
import { quoteIdent } from '../decode/table-schema.ts';
import { resolve } from 'node:path';

export interface Changefeed {
  readonly id: string;
  /** The latest status; cheap, callable at any time. */
  status(): ChangefeedStatus;
  /**
   * Stops gracefully: waits for the epoch being committed, commits the transactions already
   * complete (never part of one), acknowledges the source and closes. Idempotent.
   */
  stop(): Promise<void>;
  /** Resolves when stopped; rejects with the TidemarkError when the changefeed failed. */
  readonly done: Promise<void>;
}

export interface StartChangefeedOptions {
  logger: Logger;
  /** Where local state lives (view state under `state/<id>`); default `.tidemark` in the cwd. */
  dataDir?: string;
  onStatus?: (s: ChangefeedStatus) => void;
  /** Observes every committed epoch (tests, metrics); must not throw or block. */
  onEpochCommitted?: (e: Epoch, info: EpochCommitInfo) => void;
  /** Observes every error the changefeed meets, retried or not (metrics: errors by code). */
  onError?: (e: TidemarkError, info: { retrying: boolean }) => void;
}

export interface EpochCommitInfo {
  /** Wall time of `sink.commitEpoch`. */
  readonly commitMs: number;
  /** Now − source commit time of the epoch's last transaction: commit-to-visible latency. */
  readonly visibleLagMs: number;
  /** Approximate bytes of row text in the epoch (before collapsing). */
  readonly bytes: number;
}

export function startChangefeed(cfg: ChangefeedConfig, opts: StartChangefeedOptions): Changefeed {
  return new ChangefeedRunner(cfg, opts);
}

class ChangefeedRunner implements Changefeed {
  readonly id: string;
  readonly done: Promise<void>;
  private st: ChangefeedStatus;
  private stopping = false;
  private wakeStop: (() => void) | null = null;
  /** Wakes the stream loop's current wait (a new one per wait, see `stream`). */
  private wakeStream: (() => void) | null = null;
  private readonly stopSignal: Promise<void>;
  private readonly log: Logger;
  private rateCount = 0;
  private rateAt = Date.now();
  private rateTimer: NodeJS.Timeout;

  constructor(
    private readonly cfg: ChangefeedConfig,
    private readonly opts: StartChangefeedOptions,
  ) {
    this.id = cfg.id;
    this.st = initialStatus(cfg.id);
    this.log = opts.logger.child({ changefeed: cfg.id });
    this.stopSignal = new Promise((r) => (this.wakeStop = r));
    this.rateTimer = setInterval(() => this.sampleRate(), 1000);
    this.rateTimer.unref();
    this.done = this.run().finally(() => clearInterval(this.rateTimer));
  }

  status(): ChangefeedStatus {
    return { ...this.st };
  }

  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.update({ phase: 'stopping' });
      this.wakeStop?.();
      this.wakeStream?.();
    }
    await this.done.catch(() => {});
  }

  private update(patch: Partial<ChangefeedStatus>): void {
    this.st = { ...this.st, ...patch };
    this.opts.onStatus?.(this.status());
  }

  private sampleRate(): void {
    const now = Date.now();
    const rate = (this.rateCount * 1000) / Math.max(1, now - this.rateAt);
    this.rateCount = 0;
    this.rateAt = now;
    this.update({ rowsPerSec: Math.round(this.st.rowsPerSec * 0.5 + rate * 0.5) });
  }

  private async run(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.attempt();
        this.update({ phase: 'stopped' });
        return;
      } catch (err) {
        const e =
          err instanceof TidemarkError
            ? err
            : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
        this.update({ error: { code: e.code, message: e.message, hint: e.hint } });
        this.opts.onError?.(e, { retrying: !this.stopping && isRetriable(e) });
        if (this.stopping) {
          this.update({ phase: 'stopped' });
          return;
        }
        if (!isRetriable(e)) {
          this.log.error('changefeed failed', { error: e });
          this.update({ phase: 'failed' });
          throw e;
        }
        const wait = backoffMs(attempt);
        this.log.warn('changefeed error, retrying', { error: e, retryInMs: wait });
        await Promise.race([new Promise((r) => setTimeout(r, wait)), this.stopSignal]);
        if (this.stopping) {
          this.update({ phase: 'stopped' });
          return;
        }
      }
    }
  }

  /** One connection lifetime: open, snapshot if needed, stream until stopped or failed. */
  private async attempt(): Promise<void> {
    const cfg = this.cfg;
    const sink = createSink(cfg.sink, { changefeedId: cfg.id });
    const source = new PostgresSource({
      url: cfg.source,
      changefeedId: cfg.id,
      tables: cfg.tables,
      snapshot: cfg.snapshot,
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
    });
    let views: ViewStage | null = null;
    try {
      this.update({ phase: 'starting' });
      // Validate the source first (read-only), so bad input creates nothing anywhere.
      let { tables, published } = await source.prepare();
      const replicated = new Set(tables.map((t) => t.relationId));
      let checkpoint = await sink.open();
      if (cfg.views.length > 0) {
        views = await ViewStage.open({
          views: cfg.views,
          catalog: await source.describeAll(),
          stateDir: ViewStage.stateDirFor(
            this.opts.dataDir ?? process.env.TIDEMARK_DATA_DIR ?? resolve('.tidemark'),
            cfg.id,
          ),
          sinkEpoch: checkpoint?.epoch ?? null,
        });
        const missing = views.inputTables.filter((t) => !replicated.has(t.relationId));
        if (missing.length > 0)
          ({ tables, published } = await source.prepare(
            missing.map((t) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`),
          ));
        if (views.needsSnapshot) {
          this.log.warn('view state does not match the sink checkpoint: taking a new snapshot', {
            checkpoint,
          });
          checkpoint = null;
        }
      }
      const slot = await source.slotState();
      if (checkpoint === null) {
        if (slot.exists) {
          // A snapshot that never committed downstream: start it over with a fresh slot.
          this.log.info('dropping the slot of an unfinished snapshot', { slot: source.slotName });
          await source.dropSlot();
        }
        await source.syncPublication(tables, published);
        if (this.stopping) return;
        this.update({ phase: 'snapshot', snapshotRows: 0 });
        this.log.info('snapshot started', { tables: tables.map((t) => `${t.schema}.${t.name}`) });
        const snap = await source.createSnapshot(tables);
        const at = { position: snap.position.toString(), epoch: 0 };
        const sinkTables = [
          ...tables.filter((t) => replicated.has(t.relationId)),
          ...(views?.viewTables ?? []),
        ];
        const rows = views ? views.snapshot(snap.rows, replicated) : snap.rows;
        await sink.writeSnapshot(sinkTables, this.countSnapshot(rows), at);
        checkpoint = at;
        this.log.info('snapshot committed', { rows: this.st.snapshotRows, position: at.position });
      } else {
        if (!slot.exists || slot.invalid) {
          throw new TidemarkError('SOURCE_SLOT_LOST', {
            detail: `slot ${source.slotName} is ${slot.exists ? 'invalidated' : 'missing'}, but the sink holds checkpoint ${checkpoint.position}`,
          });
        }
        // The slot resumes at most one byte past the checkpoint (right after a snapshot, whose
        // checkpoint is the consistent point − 1); any further ahead, changes were skipped.
        if (slot.confirmedFlush && slot.confirmedFlush.minus(Lsn.parse(checkpoint.position)) > 1n) {
          throw new TidemarkError('SOURCE_SLOT_AHEAD', {
            detail: `slot ${source.slotName} confirmed ${slot.confirmedFlush} but the sink's checkpoint is ${checkpoint.position}`,
          });
        }
        if (published) {
          const added = tables.filter((t) => !published.has(`${t.schema}.${t.name}`));
          if (added.length > 0) {
            throw new TidemarkError('SOURCE_TABLES_CHANGED', {
              detail: `${added.map((t) => `${t.schema}.${t.name}`).join(', ')} selected after the snapshot of changefeed ${cfg.id}`,
            });
          }
        }
        await source.syncPublication(tables, published);
      }
      this.update({
        checkpoint: checkpoint.position,
        resolved: checkpoint.position,
        epoch: checkpoint.epoch,
        error: null,
      });
      if (this.stopping) return;
      this.update({ phase: 'streaming' });
      await this.stream(
        { source, sink, views, replicated },
        Lsn.parse(checkpoint.position),
        checkpoint.epoch,
      );
    } finally {
      await source.close();
      await sink.close();
      await views?.close();
    }
  }

  private async *countSnapshot(rows: AsyncGenerator<SnapshotRows>): AsyncGenerator<SnapshotRows> {
    for await (const chunk of rows) {
      if (this.stopping)
        throw new TidemarkError('CHANGEFEED_FAILED', {
          detail: 'stopped during the snapshot',
          retriable: true,
        });
      this.rateCount += chunk.rows.length;
      this.st.snapshotRows += chunk.rows.length;
      yield chunk;
    }
  }

  private async stream(
    stages: { source: PostgresSource; sink: Sink; views: ViewStage | null; replicated: ReadonlySet<number> },
    after: Lsn,
    lastEpoch: number,
  ): Promise<void> {
    const { source, sink, views, replicated } = stages;
    const { intervalMs, maxRows, maxBytes } = this.cfg.epoch;
    const builder = new EpochBuilder();
    let epochNo = lastEpoch;
    let lastCutMs = Date.now();
    let inflight: Promise<void> | null = null;
    let inflightOldestMs: number | null = null;
    let failure: unknown = null;

    const refreshLag = () => {
      const oldest = inflightOldestMs ?? builder.oldestCommitMs;
      const wal = source.walEnd;
      const cp = this.st.checkpoint ? Lsn.parse(this.st.checkpoint) : null;
      this.st.lagMs = oldest === null ? 0 : Math.max(0, Date.now() - oldest);
      this.st.lagBytes = wal && cp ? Math.max(0, Number(wal.minus(cp))) : null;
    };
    const commit = (e: Epoch, oldestMs: number | null, bytes: number) => {
      inflightOldestMs = oldestMs;
      const started = Date.now();
      inflight = (async () => {
        // Tables read only by views stay out of the sink; the views' changes join the epoch.
        let tables = e.tables.filter((t) => replicated.has(t.table.relationId));
        if (views) tables = [...tables, ...(await views.apply(e.checkpoint.epoch, e.tables))];
        await sink.commitEpoch(tables.length === e.tables.length && !views ? e : { ...e, tables });
      })()
        .then(() => {
          source.acknowledge(Lsn.parse(e.checkpoint.position));
          this.update({ checkpoint: e.checkpoint.position, epoch: e.checkpoint.epoch });
          const now = Date.now();
          this.opts.onEpochCommitted?.(e, {
            commitMs: now - started,
            visibleLagMs: Math.max(0, now - e.commitTimeMs),
            bytes,
          });
        })
        .catch((err: unknown) => {
          failure ??= err;
        })
        .finally(() => {
          inflight = null;
          inflightOldestMs = null;
          refreshLag();
          maybeCut();
        });
    };
    const maybeCut = (force = false) => {
      if (failure !== null || inflight || builder.isInTransaction || !builder.hasCommitted) return;
      const due =
        force ||
        builder.changes >= maxRows ||
        builder.bytes >= maxBytes ||
        Date.now() - lastCutMs >= intervalMs;
      if (!due) return;
      const oldest = builder.oldestCommitMs;
      const bytes = builder.bytes;
      const e = builder.cut(++epochNo)!;
      lastCutMs = Date.now();
      commit(e, oldest, bytes);
    };
    const timer = setInterval(
      () => {
        maybeCut();
        refreshLag();
      },
      Math.max(5, Math.min(Math.floor(intervalMs / 4), 100)),
    );

    const it = source.stream(after)[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (failure !== null) throw failure;
        if (this.stopping) break;
        // A fresh stop promise per wait: racing one long-lived promise would leave a reaction on
        // it for every batch, never released (a leak proportional to the stream).
        const next = await Promise.race([
          it.next(),
          new Promise<'stop'>((r) => (this.wakeStream = () => r('stop'))),
        ]);
        if (next === 'stop' || next.done) break;
        for (const m of next.value) {
          switch (m.tag) {
            case 'begin':
              builder.beginTransaction();
              break;
            case 'insert':
              builder.insert(m.table, m.row);
              this.rateCount++;
              break;
            case 'update':
              builder.update(m.table, m.row, m.old, m.oldIsFull);
              this.rateCount++;
              break;
            case 'delete':
              builder.delete(m.table, m.old);
              this.rateCount++;
              break;
            case 'truncate':
              builder.truncate(m.tables);
              break;
            case 'relation':
              break;
            case 'commit':
              builder.commitTransaction(m.position, m.commitTimeMs);
              this.st.resolved = m.position.toString();
              maybeCut();
              break;
          }
        }
        // Back-pressure: while one epoch commits, the next may fill only up to its own budget
        // (and never beyond the memory quota); then reading waits, and the socket pauses.
        while (
          inflight &&
          (builder.bytes > Math.min(this.cfg.memoryQuotaBytes, maxBytes) || builder.changes >= maxRows)
        ) {
          await inflight;
        }
      }
      // Graceful end: finish the epoch in flight, then commit what is complete, nothing partial.
      while (inflight) await inflight;
      if (failure !== null) throw failure;
      if (!builder.isInTransaction) {
        maybeCut(true);
        while (inflight) await inflight;
        if (failure !== null) throw failure;
      }
    } finally {
      clearInterval(timer);
      void it.return?.(undefined)?.catch(() => {});
      while (inflight) await (inflight as Promise<void>).catch(() => {});
    }
  }
}

export { queryChangefeedStatus } from './query-status.ts';
