/**
 * The baseline of the `changelog` benchmark: one changefeed as the runtime ran it before the
 * shared change log — its own replication slot, its own pgoutput decode, nothing on local disk.
 *
 *   PostgresConnector (slot and publication tidemark_<id>, its own) · capture · snapshot
 *        ─► sink.writeSnapshot(…, P)
 *   replicate(after P) ─► EpochBuilder ─cut at a commit, every epoch.intervalMs─►
 *        sink.commitEpoch(e) ─► session.acknowledge(e.checkpoint)
 *
 * Faithful to that runtime's stream loop (git: src/runtime/changefeed.ts before the puller): at
 * most one epoch committing while the next fills, the filling one waits once it outgrows
 * min(memoryQuotaBytes, epoch.maxBytes) or epoch.maxRows — but only between transactions, so one
 * huge source transaction is held in memory whole until its commit. Minimal otherwise: no views,
 * no retries (any error ends the pipeline and rejects `done`), no status.
 */
import { EpochBuilder } from '../src/coordinator/epoch-builder.ts';
import type { ChangefeedConfig } from '../src/runtime/changefeed-config.ts';
import { createSink } from '../src/sink/create-sink.ts';
import type { Sink } from '../src/sink/sink.ts';
import type { Epoch } from '../src/core/epoch.ts';
import { Lsn } from '../src/source/postgres/lsn.ts';
import { PostgresConnector } from '../src/source/postgres/pg-connector.ts';
import type { PgReplication } from '../src/source/postgres/pg-replication.ts';

export interface SlotPipelineOptions {
  /** Called after each epoch is durable in the sink (and acknowledged); must not throw. */
  readonly onEpochCommitted?: (e: Epoch) => void;
}

export class SlotPerChangefeed {
  readonly id: string;
  /** Resolves once the snapshot is committed and the stream has been started. */
  readonly streaming: Promise<void>;
  /** Resolves when stopped; rejects with the error that ended the pipeline. */
  readonly done: Promise<void>;
  /** Row changes taken from the source so far, committed downstream or not. */
  rowsReceived = 0;
  /** The last checkpoint the sink holds, or null before the snapshot. */
  checkpoint: Lsn | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private markStreaming: () => void = () => {};

  private constructor(
    private readonly cfg: ChangefeedConfig,
    private readonly opts: SlotPipelineOptions,
  ) {
    this.id = cfg.id;
    const streaming = new Promise<void>((r) => (this.markStreaming = r));
    this.done = this.run();
    this.streaming = Promise.race([
      streaming,
      this.done.then(() => {
        throw new Error(`pipeline ${cfg.id} ended before streaming`);
      }),
    ]);
    this.streaming.catch(() => {});
  }

  /** Starts the pipeline in the background; it snapshots (its slot is created then) and streams. */
  static start(cfg: ChangefeedConfig, opts: SlotPipelineOptions = {}): SlotPerChangefeed {
    return new SlotPerChangefeed(cfg, opts);
  }

  /**
   * Stops: waits for the epoch in flight, commits the transactions already complete (never part
   * of one), closes. Idempotent; never rejects (the failure, if any, stays on `done`).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.done.catch(() => {});
  }

  private async run(): Promise<void> {
    const cfg = this.cfg;
    const sink = await createSink(cfg.sink, { changefeedId: cfg.id });
    const connector = new PostgresConnector({
      url: cfg.source,
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
      objectName: `tidemark_${cfg.id.replaceAll('-', '_')}`,
    });
    let session: PgReplication | null = null;
    try {
      const { tables } = await connector.describe(cfg.tables);
      await connector.capture(tables);
      let checkpoint = await sink.open();
      if (checkpoint === null) {
        // Its own slot first (it holds what follows the snapshot), then the snapshot.
        await (
          await connector.replicate({ after: null, knownTables: [], acceptStartAfter: () => true })
        ).close();
        const snap = await connector.snapshot(tables, cfg.snapshot);
        checkpoint = { position: snap.position.toString(), epoch: 0 };
        try {
          await sink.writeSnapshot(tables, snap.rows, checkpoint);
        } finally {
          await snap.release();
        }
      }
      this.checkpoint = Lsn.parse(checkpoint.position);
      session = await connector.replicate({
        after: this.checkpoint,
        knownTables: tables,
        acceptStartAfter: () => false,
      });
      await this.stream(session, sink, checkpoint.epoch);
    } finally {
      await session?.close();
      await connector.close();
      await sink.close();
    }
  }

  private async stream(session: PgReplication, sink: Sink, lastEpoch: number): Promise<void> {
    const { intervalMs, maxRows, maxBytes } = this.cfg.epoch;
    const budgetBytes = Math.min(this.cfg.memoryQuotaBytes, maxBytes);
    const builder = new EpochBuilder();
    let epochNo = lastEpoch;
    let lastCutMs = Date.now();
    let inflight: Promise<void> | null = null;
    let failure: unknown = null;

    const commit = (e: Epoch) => {
      inflight = sink
        .commitEpoch(e)
        .then(() => {
          const at = Lsn.parse(e.checkpoint.position);
          session.acknowledge(at);
          this.checkpoint = at;
          this.opts.onEpochCommitted?.(e);
        })
        .catch((err: unknown) => {
          failure ??= err;
        })
        .finally(() => {
          inflight = null;
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
      const e = builder.cut(++epochNo)!;
      lastCutMs = Date.now();
      commit(e);
    };
    const timer = setInterval(() => maybeCut(), Math.max(5, Math.min(Math.floor(intervalMs / 4), 100)));

    const it = session.events[Symbol.asyncIterator]();
    this.markStreaming();
    try {
      for (;;) {
        if (failure !== null) throw failure;
        if (this.stopping) break;
        // A fresh stop promise per wait (one long-lived promise would collect a reaction per batch).
        const next = await Promise.race([
          it.next(),
          new Promise<'stop'>((r) => (this.wake = () => r('stop'))),
        ]);
        if (next === 'stop' || next.done) break;
        for (const m of next.value) {
          if (m.tag === 'schema') continue; // the benchmark's workload makes none
          this.rowsReceived += builder.add(m);
          if (m.tag === 'commit') maybeCut();
        }
        // Back-pressure between epochs only: inside a transaction nothing can be cut, so it grows.
        while (inflight && (builder.bytes > budgetBytes || builder.changes >= maxRows)) await inflight;
      }
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
