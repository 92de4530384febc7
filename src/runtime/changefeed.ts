/**
 * Runs one changefeed: snapshot once, then stream forever, one epoch at a time.
 *
 *   sink.open() ─► checkpoint C? ──no──► register at the log's end; temporary slot + exported
 *        │                             snapshot at P ─► sink.writeSnapshot(…, P)   (C := P)
 *        └──yes─────────────────────────────────────────────────┘
 *   shared puller's log ─► reader.stream(after C) ─► EpochBuilder (collapse per key)
 *        ─cut at a commit─► sink.commitEpoch(e) ─► reader.acknowledge(e.checkpoint)
 *        ─a transaction over budget─► sink.beginEpoch() · applyChunk(…)* · commit(e)
 *
 * At most one epoch is being committed while the next one fills; when the filling one outgrows
 * min(`memoryQuotaBytes`, `epoch.maxBytes`) reading waits for the commit (the log holds the
 * rest on disk), or, inside a transaction, its changes so far are applied downstream as a chunk
 * of one open downstream transaction. A failed attempt re-reads the local log, not the source. Any
 * error tears the attempt down; retriable ones start a new attempt after a backoff, from the
 * checkpoint the sink holds, so nothing is lost or applied twice.
 */
import type { ChangefeedConfig } from './changefeed-config.ts';
import { initialStatus, type ChangefeedStatus } from './changefeed-status.ts';
import type { Logger } from './logger.ts';
import { EpochBuilder } from '../coordinator/epoch-builder.ts';
import { createSink } from '../sink/create-sink.ts';
import type { Epoch, EpochWriter, Sink, SnapshotRows, TableChanges } from '../sink/sink.ts';
import type { ChangeMessage } from '../source/source.ts';
import { acquirePuller, type PullerLease } from '../source/postgres/puller-registry.ts';
import type { PullerReader } from '../source/postgres/puller-reader.ts';
import type { Puller } from '../source/postgres/puller.ts';
import { PostgresSource } from '../source/postgres/pg-source.ts';
import { Lsn } from '../source/postgres/lsn.ts';
import { isRetriable, TidemarkError } from '../errors/tidemark-error.ts';
import { backoffMs } from './backoff.ts';
import { ViewStage } from './view-stage.ts';
import { quoteIdent } from '../decode/table-schema.ts';
import { resolve } from 'node:path';

const MiB = 1024 * 1024;

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
  private lease: PullerLease | null = null;

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
    this.done = this.run().finally(async () => {
      clearInterval(this.rateTimer);
      const lease = this.lease;
      this.lease = null;
      await lease?.release();
    });
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
    const dataDir = this.opts.dataDir ?? process.env.TIDEMARK_DATA_DIR ?? resolve('.tidemark');
    const sink = createSink(cfg.sink, { changefeedId: cfg.id });
    // Catalog, the snapshot and the changefeed's own publication (the record of its selection);
    // changes come from the source's shared puller.
    const source = PostgresSource.forChangefeed(cfg);
    let views: ViewStage | null = null;
    let reader: PullerReader | null = null;
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
          stateDir: ViewStage.stateDirFor(dataDir, cfg.id),
          sinkEpoch: checkpoint?.epoch ?? null,
        });
        const missing = views.inputTables.filter((t) => !replicated.has(t.relationId));
        if (missing.length > 0)
          ({ tables, published } = await source.prepare(
            missing.map((t) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`),
          ));
        if (views.needsSnapshot) {
          this.log.warn('view state cannot continue: taking a new snapshot', {
            checkpoint,
            reason: views.rebuildReason,
          });
          checkpoint = null;
        }
      }
      if (checkpoint !== null && published) {
        const added = tables.filter((t) => !published.has(`${t.schema}.${t.name}`));
        if (added.length > 0) {
          throw new TidemarkError('SOURCE_TABLES_CHANGED', {
            detail: `${added.map((t) => `${t.schema}.${t.name}`).join(', ')} selected after the snapshot of changefeed ${cfg.id}`,
          });
        }
      }
      const puller = await this.puller(dataDir);
      const readerQuota = Math.min(8 * MiB, Math.max(MiB, Math.floor(cfg.memoryQuotaBytes / 16)));
      if (checkpoint === null) {
        if ((await source.slotState()).exists) {
          // A slot of its own: left by a version that had one slot per changefeed.
          this.log.info("dropping the changefeed's own slot", { slot: source.slotName });
          await source.dropSlot();
        }
        await source.syncPublication(tables, published);
        // Registered at the log's end before the snapshot, so the log keeps every transaction
        // after it; the snapshot's consistent point is later still.
        reader = await puller.addReader({
          id: cfg.id,
          tables,
          checkpoint: puller.holdPosition(),
          memoryQuotaBytes: readerQuota,
        });
        if (this.stopping) return;
        this.update({ phase: 'snapshot', snapshotRows: 0 });
        this.log.info('snapshot started', { tables: tables.map((t) => `${t.schema}.${t.name}`) });
        const snap = await source.createSnapshot(tables, { temporary: true });
        const at = { position: snap.position.toString(), epoch: 0 };
        const sinkTables = [
          ...tables.filter((t) => replicated.has(t.relationId)),
          ...(views?.viewTables ?? []),
        ];
        const rows = views ? views.snapshot(snap.rows, replicated) : snap.rows;
        await sink.writeSnapshot(sinkTables, this.countSnapshot(rows), at);
        reader.acknowledge(snap.position);
        checkpoint = at;
        this.log.info('snapshot committed', { rows: this.st.snapshotRows, position: at.position });
      } else {
        await source.syncPublication(tables, published);
        const at = Lsn.parse(checkpoint.position);
        const registered = puller.log.readerPosition(cfg.id);
        if (registered && registered.compare(at) > 0) {
          // The sink lost commits it had acknowledged (restored from a backup, or a downstream
          // that does not make commits durable). The log may still hold them: re-read from there.
          const covered = puller.log.coveredFrom;
          if (covered && covered.compare(at) > 0) {
            throw new TidemarkError('CHANGELOG_BEHIND', {
              detail: `changefeed ${cfg.id} acknowledged ${registered}, but its sink's checkpoint is back at ${checkpoint.position} and the log starts after ${covered}: the sink lost committed changes`,
            });
          }
          this.log.warn(
            "the sink's checkpoint is behind what it acknowledged: re-reading from the change log",
            {
              acknowledged: registered.toString(),
              checkpoint: checkpoint.position,
            },
          );
          puller.rewindReader(cfg.id, at);
        }
        reader = await puller.addReader({
          id: cfg.id,
          tables,
          checkpoint: at,
          memoryQuotaBytes: readerQuota,
        });
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
        { changes: reader, sink, views, replicated },
        Lsn.parse(checkpoint.position),
        checkpoint.epoch,
      );
    } finally {
      reader?.close();
      await source.close();
      await sink.close();
      await views?.close();
    }
  }

  /**
   * The source's shared puller, held across attempts (a failing sink does not stop the pulling
   * into the log); replaced when it stopped for good, released when the changefeed stops.
   */
  private async puller(dataDir: string): Promise<Puller> {
    if (this.lease?.puller.failure) {
      const old = this.lease;
      this.lease = null;
      await old.release();
    }
    if (!this.lease) {
      const cfg = this.cfg;
      this.lease = await acquirePuller({
        url: cfg.source,
        dataDir,
        heartbeatIntervalMs: cfg.heartbeatIntervalMs,
        ...(cfg.changeLog.maxDiskBytes !== null
          ? { logOptions: { maxDiskBytes: cfg.changeLog.maxDiskBytes } }
          : {}),
        // The shared puller's errors are this changefeed's too: it reads on from the log meanwhile.
        onError: (e, info) => {
          this.update({ error: { code: e.code, message: e.message, hint: e.hint } });
          this.opts.onError?.(e, info);
          if (info.retrying) this.log.warn('source puller error, retrying', { error: e });
        },
      });
    }
    return this.lease.puller;
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
    stages: { changes: ChangeStream; sink: Sink; views: ViewStage | null; replicated: ReadonlySet<number> },
    after: Lsn,
    lastEpoch: number,
  ): Promise<void> {
    const { changes, sink, views, replicated } = stages;
    const { intervalMs, maxRows, maxBytes } = this.cfg.epoch;
    const budgetBytes = Math.min(this.cfg.memoryQuotaBytes, maxBytes);
    // A transaction over budget goes downstream in chunks of a quarter of it: small enough that
    // the chunk being built, the one being written and the garbage both leave behind stay well
    // inside the quota; large enough that per-chunk statements are noise.
    const chunkBytes = Math.floor(budgetBytes / 4);
    const chunkRows = Math.max(1, Math.floor(maxRows / 4));
    const builder = new EpochBuilder();
    let epochNo = lastEpoch;
    let lastCutMs = Date.now();
    let inflight: Promise<void> | null = null;
    let inflightOldestMs: number | null = null;
    let failure: unknown = null;
    // An epoch too large for memory: its downstream transaction, open while chunks are applied.
    let writer: EpochWriter | null = null;
    let chunks = 0;

    const refreshLag = () => {
      const oldest = inflightOldestMs ?? builder.oldestCommitMs;
      const wal = changes.walEnd;
      const cp = this.st.checkpoint ? Lsn.parse(this.st.checkpoint) : null;
      this.st.lagMs = oldest === null ? 0 : Math.max(0, Date.now() - oldest);
      this.st.lagBytes = wal && cp ? Math.max(0, Number(wal.minus(cp))) : null;
    };
    /** The epoch's tables as the sink gets them: replicated ones, then the views' changes. */
    const sinkTables = async (
      epoch: number,
      tables: readonly TableChanges[],
      step: { continuing: boolean; last: boolean },
    ): Promise<readonly TableChanges[]> => {
      const own = tables.filter((t) => replicated.has(t.table.relationId));
      if (!views) return own;
      return [...own, ...(await views.apply(epoch, tables, step))];
    };
    const commit = (e: Epoch, oldestMs: number | null, bytes: number) => {
      inflightOldestMs = oldestMs;
      const started = Date.now();
      const w = writer;
      writer = null;
      chunks = 0;
      inflight = (async () => {
        const tables = await sinkTables(e.checkpoint.epoch, e.tables, { continuing: w !== null, last: true });
        const epoch = tables.length === e.tables.length && !views ? e : { ...e, tables };
        if (w) await w.commit(epoch);
        else await sink.commitEpoch(epoch);
      })()
        .then(() => {
          changes.acknowledge(Lsn.parse(e.checkpoint.position));
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
          void w?.abort().catch(() => {});
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
        writer !== null ||
        builder.changes >= maxRows ||
        builder.bytes >= maxBytes ||
        Date.now() - lastCutMs >= intervalMs;
      if (!due) return;
      const oldest = builder.oldestCommitMs;
      const bytes = builder.bytes;
      const e = builder.cut(writer ? epochNo : ++epochNo)!;
      lastCutMs = Date.now();
      commit(e, oldest, bytes);
    };
    /**
     * A transaction outgrew the budget: its changes so far go downstream as a chunk of the epoch's
     * open transaction (begun here if needed), after the epoch before it has committed.
     */
    const applyChunk = async () => {
      while (inflight) await inflight;
      if (failure !== null) throw failure;
      if (!writer) {
        writer = await sink.beginEpoch();
        epochNo++;
        this.log.info('epoch too large for memory: applying it in chunks', { epoch: epochNo });
      }
      const tables = await sinkTables(epochNo, builder.takeChunk(), { continuing: chunks > 0, last: false });
      chunks++;
      await writer.applyChunk(tables);
    };
    const timer = setInterval(
      () => {
        maybeCut();
        refreshLag();
      },
      Math.max(5, Math.min(Math.floor(intervalMs / 4), 100)),
    );

    const it = changes.stream(after)[Symbol.asyncIterator]();
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
          this.rateCount += builder.add(m);
          if (m.tag === 'commit') {
            this.st.resolved = m.position.toString();
            maybeCut();
          }
        }
        if (builder.isInTransaction && (builder.bytes >= chunkBytes || builder.changes >= chunkRows)) {
          await applyChunk();
          continue;
        }
        // Back-pressure: while one epoch commits, the next may fill only up to its own budget
        // (and never beyond the memory quota); then reading waits, and the socket pauses.
        while (inflight && (builder.bytes > budgetBytes || builder.changes >= maxRows)) {
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
      // A chunked epoch whose transaction did not end here: nothing of it becomes visible.
      await (writer as EpochWriter | null)?.abort().catch(() => {});
    }
  }
}

/** What the runtime reads changes from: a changefeed's reader of the shared change log. */
export interface ChangeStream {
  /** Committed transactions after `after`, in commit order, in batches. */
  stream(after: Lsn): AsyncIterable<ChangeMessage[]>;
  /** The sink durably holds everything up to `position`. */
  acknowledge(position: Lsn): void;
  /** The source's WAL end as last seen (lag in bytes), or null. */
  readonly walEnd: Lsn | null;
}

export { queryChangefeedStatus } from './query-status.ts';
