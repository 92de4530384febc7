/**
 * Runs one changefeed: snapshot once, then stream forever, one epoch at a time.
 *
 *   sink.open() ─► checkpoint C? ──no──► hub.registerAtEnd; connector.capture(tables);
 *        │                             connector.snapshot ─► rows at P ─► sink.writeSnapshot(…, P)  (C := P)
 *        └──yes─────────────────────────────────────────────────┘
 *   hub.subscribe(after C) ─► EpochBuilder (collapse per key)
 *        ─cut at a commit─► sink.commitEpoch(e) ─► subscription.acknowledge(e.checkpoint)
 *        ─a transaction over budget─► sink.beginEpoch() · applyChunk(…)* · commit(e)
 *
 * At most one epoch is being committed while the next one fills; when the filling one outgrows
 * min(`memoryQuotaBytes`, `epoch.maxBytes`) reading waits for the commit (the log holds the
 * rest on disk), or, inside a transaction, its changes so far are applied downstream as a chunk
 * of one open downstream transaction. A failed attempt re-reads the local log, not the source. Any
 * error tears the attempt down; retriable ones start a new attempt after a backoff, from the
 * checkpoint the sink holds, so nothing is lost or applied twice.
 */
import { checkNonEmptyTargets, writeInitialSnapshot } from '../verify/non-empty-target.ts';
import type { ChangefeedConfig } from './changefeed-config.ts';
import { initialStatus, type ChangefeedStatus } from './changefeed-status.ts';
import type { Logger } from './logger.ts';
import { EpochBuilder } from '../coordinator/epoch-builder.ts';
import { createSink } from '../sink/create-sink.ts';
import type { EpochWriter, Sink } from '../sink/sink.ts';
import { snapshotRowCount, type Epoch, type SnapshotRows, type TableChanges } from '../core/epoch.ts';
import type { ChangeMessage } from '../core/change.ts';
import type { Position, PositionCodec } from '../core/position.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { ChangeHub } from '../log/hub.ts';
import type { Subscription } from '../log/subscription.ts';
import { isRetriable, TidemarkError } from '../errors/tidemark-error.ts';
import { backoffMs } from '../errors/backoff.ts';
import type { BarrierResult, ViewStage } from './view-stage.ts';
import { qualifiedName, quoteIdent } from '../core/table-schema.ts';
import { selects } from '../core/selection.ts';
import { schemaChangeTableId, type SchemaChange } from '../core/schema-change.ts';
import { decideBarrier, viewBarrier } from './schema-barrier.ts';
import { oweSnapshot, snapshotOwed } from './snapshot-owed.ts';
import { removeSpills } from './row-spill.ts';
import { CopyProgressStore } from './copy-progress.ts';
import { shadowOf, TableCopy, type CopyProgress } from './table-copy.ts';
import { snapshotByTable } from './snapshot-by-table.ts';
import type { RowChange } from '../core/change.ts';

const MiB = 1024 * 1024;

/**
 * Failures that epochs committed meanwhile do not show healed, so they keep backing off: an online
 * copy's local spill fails the same way until someone frees space, however many epochs of other
 * tables committed while it read (each retry reads the whole table from the source again).
 */
const NOT_HEALED_BY_PROGRESS: ReadonlySet<string> = new Set(['COPY_SPILL_FAILED']);

/** A table selected now that the changefeed's record does not hold, and why that matters. */
interface PendingTable {
  readonly table: TableSchema;
  readonly why: string;
}

interface PendingTables {
  readonly tables: readonly PendingTable[];
  /** The source's end when the changefeed started: the stream has shown every creation before it. */
  readonly until: Position;
}

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
  /**
   * Copies the tables `selection` names (`schema.table`, `table`, or patterns) again online,
   * while every other table keeps streaming: each into a shadow that replaces it whole in one
   * epoch, as for an added table; until then the table keeps its last rows downstream. Callable
   * at any time; taken at the stream's next transaction boundary. Resolves once the copies
   * started (and names the tables already being copied, left as they are). Rejects with
   * RESNAPSHOT_REFUSED — before anything changed — when a name selects no table this changefeed
   * replicates, or one that cannot be copied online (the source has no chunk reads); views over
   * a copied table switch in the swap's epoch; with
   * RESNAPSHOT_NOT_TAKEN when the changefeed stopped first.
   */
  resnapshot(selection: readonly string[]): Promise<ResnapshotResult>;
}

export interface ResnapshotResult {
  /** `schema.table` of every copy started. */
  readonly started: readonly string[];
  /** Already being copied (added, or copied again): not started twice. */
  readonly alreadyCopying: readonly string[];
}

interface ResnapshotRequest {
  readonly selection: readonly string[];
  resolve(r: ResnapshotResult): void;
  reject(e: unknown): void;
}

/** A changefeed's hold on its source's hub. `release` once; the last release stops the hub. */
export interface HubLease {
  readonly hub: ChangeHub;
  release(): Promise<void>;
}

/** What a changefeed needs from the engine that runs it (control/engine.ts). */
export interface ChangefeedEnvironment {
  /** Local state lives here (view state under `state/<id>`). */
  readonly dataDir: string;
  /** The hub of `cfg.source`, shared with the engine's other changefeeds of that source. */
  acquireHub(
    cfg: ChangefeedConfig,
    onError?: (e: TidemarkError, info: { retrying: boolean }) => void,
  ): Promise<HubLease>;
}

export interface StartChangefeedOptions {
  logger: Logger;
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

export class ChangefeedRunner implements Changefeed {
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
  private lease: HubLease | null = null;
  /** Re-copies asked for (`resnapshot`), taken by the stream loop between transactions. */
  private requests: ResnapshotRequest[] = [];
  /** Set once `done` settles: a request after that is never taken. */
  private ended = false;
  private wakeRequests: (() => void) | null = null;

  /** The engine running it: given, or still being opened (`deferred`). */
  private readonly envReady: Promise<ChangefeedEnvironment>;
  private env!: ChangefeedEnvironment;

  constructor(
    private readonly cfg: ChangefeedConfig,
    private readonly opts: StartChangefeedOptions,
    env: ChangefeedEnvironment | Promise<ChangefeedEnvironment>,
  ) {
    this.envReady = Promise.resolve(env);
    this.envReady.catch(() => {});
    this.id = cfg.id;
    this.st = initialStatus(cfg.id);
    this.log = opts.logger.child({ changefeed: cfg.id });
    this.stopSignal = new Promise((r) => (this.wakeStop = r));
    this.rateTimer = setInterval(() => this.sampleRate(), 1000);
    this.rateTimer.unref();
    this.done = this.run().finally(async () => {
      clearInterval(this.rateTimer);
      this.ended = true;
      for (const r of this.requests.splice(0)) r.reject(notTaken(this.id));
      const lease = this.lease;
      this.lease = null;
      await lease?.release();
    });
  }

  /**
   * A changefeed whose engine is still being opened (the CLI opens one per data directory for
   * its first changefeed): it fails with the engine's error (DATA_DIR_LOCKED) if that fails.
   */
  static deferred(
    cfg: ChangefeedConfig,
    opts: StartChangefeedOptions,
    env: Promise<ChangefeedEnvironment>,
  ): ChangefeedRunner {
    return new ChangefeedRunner(cfg, opts, env);
  }

  status(): ChangefeedStatus {
    return { ...this.st, ...(this.st.tables ? { tables: this.st.tables.map((t) => ({ ...t })) } : {}) };
  }

  resnapshot(selection: readonly string[]): Promise<ResnapshotResult> {
    if (this.stopping || this.ended) return Promise.reject(notTaken(this.id));
    return new Promise((resolve, reject) => {
      this.requests.push({ selection, resolve, reject });
      this.wakeRequests?.();
    });
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
    try {
      this.env = await this.envReady;
    } catch (err) {
      const e =
        err instanceof TidemarkError
          ? err
          : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
      this.update({ phase: 'failed', error: { code: e.code, message: e.message, hint: e.hint } });
      this.log.error('changefeed failed', { error: e });
      throw e;
    }
    // Retriable errors back off, growing until an epoch actually commits (see `committedSince`).
    for (let attempt = 0; ;) {
      this.committedSince = false;
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
        attempt = this.committedSince && !NOT_HEALED_BY_PROGRESS.has(e.code) ? 0 : attempt + 1;
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

  /** True once an epoch committed in the current attempt (the backoff starts over then). */
  private committedSince = false;

  /** One attempt: open, snapshot if needed, stream until stopped or failed. */
  private async attempt(): Promise<void> {
    const cfg = this.cfg;
    const hub = await this.hub();
    const connector = hub.connector;
    const codec = connector.positions;
    const sink = await createSink(cfg.sink, { changefeedId: cfg.id });
    let views: ViewStage | null = null;
    let sub: Subscription | null = null;
    try {
      this.update({ phase: 'starting' });
      // Validate the source first (read-only), so bad input creates nothing anywhere.
      const described = await connector.describe(cfg.tables, { knownTables: hub.knownTables() });
      let tables = described.tables;
      const warnings: string[] = [];
      for (const t of described.leftOut) {
        this.log.warn('table left out of the changefeed', {
          table: `${t.schema}.${t.name}`,
          reason: t.reason.message,
        });
        warnings.push(`${t.schema}.${t.name} left out: ${t.reason.message}`);
      }
      this.update({ warnings });
      const stored = await sink.open();
      let checkpoint =
        stored === null ? null : { position: parsePosition(codec, stored.position), epoch: stored.epoch };
      if (checkpoint !== null) {
        // The sink has our checkpoint, the data directory no record of us (lost, replaced, or
        // released as stale), or a snapshot owed for that reason has not committed yet: which
        // tables were still being copied, and whether the source kept every change after the
        // checkpoint, is unknown here. Every table is copied again, in one transaction with the
        // checkpoint, as when view state is lost.
        const owed = snapshotOwed(this.env.dataDir, cfg.id, checkpoint.epoch);
        if (owed || !hub.hasRecord(cfg.id)) {
          oweSnapshot(this.env.dataDir, cfg.id, checkpoint.epoch);
          this.log.warn(
            'no local record of this changefeed, whose sink holds a checkpoint: taking a new snapshot',
            {
              checkpoint: stored,
              dataDir: this.env.dataDir,
              ...(owed ? { reason: 'the snapshot this decided earlier has not committed' } : {}),
            },
          );
          checkpoint = null;
        }
      }
      let pending: PendingTables | null = null;
      const copyStore = CopyProgressStore.open(
        CopyProgressStore.pathFor(this.env.dataDir, cfg.id),
        checkpoint?.epoch ?? null,
      );
      // A spill is never resumed: what a crash left is only disk used.
      removeSpills(CopyProgressStore.spillDirFor(this.env.dataDir, cfg.id));
      const recordedIds = new Set((hub.recordedTables(cfg.id) ?? []).map((r) => r.id));
      const abandoned = copyStore.retain(new Set(tables.map((t) => t.relationId)), recordedIds);
      if (abandoned.size > 0) hub.unrecordTables(cfg.id, abandoned);
      const committedCopies = copyStore.committed();
      const resumedCopies: CopyProgress[] = [];
      if (checkpoint !== null) {
        const resumed = this.resumedTables(hub, tables);
        // A recorded table whose copy a committed epoch carries was left mid-copy (an initial
        // snapshot interrupted between its per-table commits, or a re-copy whose record is written
        // after that epoch commits): not replicated yet; copied online from its progress.
        tables = resumed.tables.filter((t) => {
          const progress = committedCopies.get(t.relationId);
          if (progress?.phase !== 'copying') return true;
          resumedCopies.push(progress);
          return false;
        });
        const waiting: PendingTable[] = [];
        for (const p of resumed.pending) {
          const progress = committedCopies.get(p.table.relationId);
          // Swapped in by a committed epoch (the hub's record may have missed it): replicated.
          if (progress?.phase === 'swapped') tables.push(p.table);
          else if (progress?.phase === 'copying') resumedCopies.push(progress);
          else waiting.push(p);
        }
        if (waiting.length > 0) {
          const until = (await connector.progress()).end;
          if (until === null) throw this.tablesChanged(waiting);
          pending = { tables: waiting, until };
        }
      }
      const replicated = new Set(tables.map((t) => t.relationId));
      if (cfg.views.length > 0) {
        // Imported only here: the SQL parser and the dataflow are loaded by changefeeds with views.
        const { ViewStage } = await import('./view-stage.ts');
        views = await ViewStage.open({
          views: cfg.views,
          catalog: await connector.describeAll(),
          stateDir: ViewStage.stateDirFor(this.env.dataDir, cfg.id),
          sinkEpoch: checkpoint?.epoch ?? null,
          memoryQuotaBytes: cfg.memoryQuotaBytes,
        });
        this.update({ views: [...views.planDescriptions] });
        const missing = views.inputTables.filter((t) => !replicated.has(t.relationId));
        if (missing.length > 0) {
          ({ tables } = await connector.describe(
            [...cfg.tables, ...missing.map((t) => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`)],
            { knownTables: hub.knownTables() },
          ));
        }
        if (views.needsSnapshot) {
          this.log.warn('view state cannot continue: taking a new snapshot', {
            checkpoint: stored,
            reason: views.rebuildReason,
          });
          checkpoint = null;
        }
      }
      const readerQuota = Math.min(8 * MiB, Math.max(MiB, Math.floor(cfg.memoryQuotaBytes / 16)));
      // Snapshot rows read ahead of the sink, and a large table's first chunk held until decided.
      const snapshotBuffer = Math.min(32 * MiB, Math.max(MiB, Math.floor(cfg.memoryQuotaBytes / 8)));
      this.update({
        tables: [
          ...tables
            .filter((t) => replicated.has(t.relationId))
            .map((t) => ({ name: qualifiedName(t), rows: 0 })),
          ...(views?.viewTables ?? []).map((t) => ({ name: qualifiedName(t), rows: 0 })),
        ],
      });
      const snapshotTaken = checkpoint === null;
      if (checkpoint === null) {
        // Registered at the log's end before the snapshot, so the log keeps every transaction
        // after it; the snapshot's position is later still.
        // Given up on stop: the source may not be streaming yet (a slot waiting for a transaction).
        await hub.registerAtEnd(
          cfg.id,
          tables.filter((t) => replicated.has(t.relationId)),
          this.stopSignal,
        );
        await connector.capture(tables, cfg.tables);
        if (this.stopping) return;
        const sinkTables = [
          ...tables.filter((t) => replicated.has(t.relationId)),
          ...(views?.viewTables ?? []),
        ];
        // A new changefeed over tables that already hold rows: onNonEmptyTarget decides (verify/).
        const targets =
          stored === null
            ? await checkNonEmptyTargets(sink, sinkTables, cfg.onNonEmptyTarget)
            : { policy: 'truncate' as const, tables: [] };
        this.update({ phase: 'snapshot', snapshotRows: 0 });
        this.log.info('snapshot started', { tables: tables.map((t) => `${t.schema}.${t.name}`) });
        const snap = await connector.snapshot(tables, { ...cfg.snapshot, bufferBytes: snapshotBuffer });
        try {
          const at = { position: snap.position.toString(), epoch: stored === null ? 0 : stored.epoch + 1 };
          const rows = views ? views.snapshot(snap.rows, replicated, at.epoch) : snap.rows;
          hub.recordTables(
            cfg.id,
            tables.filter((t) => replicated.has(t.relationId)),
          );
          const byTable =
            stored === null &&
            views === null &&
            targets.tables.length === 0 &&
            sink.snapshotsByTable === true &&
            snap.rowsOf !== undefined &&
            sinkTables.length > 0;
          const reconciled = byTable
            ? null
            : await writeInitialSnapshot({
                sink,
                tables: sinkTables,
                rows: this.countSnapshot(rows),
                at,
                targets,
              });
          if (byTable) {
            at.epoch = await snapshotByTable({
              sink,
              tables: sinkTables,
              snapshot: snap,
              at,
              copyStore,
              chunkRows: Math.max(1, cfg.snapshot.chunkRows),
              firstChunkBytes: snapshotBuffer,
              counted: (r) => this.countSnapshot(r),
              log: this.log,
              owner: cfg.id,
            });
          }
          if (reconciled) {
            this.log.info('non-empty target tables reconciled', {
              tables: targets.tables.map(qualifiedName),
              ...reconciled,
            });
          }
          checkpoint = { position: snap.position, epoch: at.epoch };
        } finally {
          await snap.release();
        }
        this.log.info('snapshot committed', {
          rows: this.st.snapshotRows,
          position: checkpoint.position.toString(),
        });
      }
      sub = await hub.subscribe({
        id: cfg.id,
        // Tables waiting for a copy are captured now: their changes flow before the copy starts.
        tables: [
          ...tables,
          ...(pending?.tables.map((p) => p.table) ?? []),
          ...resumedCopies.map((p) => p.table),
        ],
        checkpoint: checkpoint.position,
        memoryQuotaBytes: readerQuota,
        selection: cfg.tables,
      });
      for (const l of connector.limitations) {
        if (!this.st.warnings.includes(l)) this.update({ warnings: [...this.st.warnings, l] });
      }
      this.update({
        checkpoint: checkpoint.position.toString(),
        resolved: checkpoint.position.toString(),
        epoch: checkpoint.epoch,
        error: null,
      });
      if (this.stopping) return;
      this.update({ phase: 'streaming' });
      if (committedCopies.size > 0 && [...committedCopies.values()].some((p) => p.phase === 'swapped'))
        hub.recordTables(
          cfg.id,
          tables.filter(
            (t) => replicated.has(t.relationId) || committedCopies.get(t.relationId)?.phase === 'swapped',
          ),
        );
      for (const p of committedCopies.values()) if (p.phase === 'swapped') replicated.add(p.table.relationId);
      await this.stream(
        {
          changes: sub,
          sink,
          views,
          replicated,
          codec,
          hub,
          tables,
          pending,
          copyStore,
          resumedCopies,
          snapshotTaken,
        },
        checkpoint.position,
        checkpoint.epoch,
      );
    } finally {
      sub?.close();
      await sink.close();
      await views?.close();
    }
  }

  /**
   * The tables a resumed changefeed replicates: those it took a snapshot of (recorded by id in
   * its subscription — a renamed one is followed), never a table that joined the selection since,
   * nor another table under a name it knew: those were never copied, and streaming them would
   * leave them partial downstream. Tables selected now but not recorded are `pending`: one created
   * while the changefeed was down reaches it in the stream, as a barrier, and is added there; the
   * others fail the changefeed once the stream passes the source's end at start.
   */
  private resumedTables(
    hub: ChangeHub,
    selected: TableSchema[],
  ): { tables: TableSchema[]; pending: PendingTable[] } {
    const recorded = hub.recordedTables(this.cfg.id);
    // No record: written by a version before records, or released. An empty record is a record
    // (the one table was being copied again, say): its tables are not taken as replicated.
    if (recorded === null) return { tables: selected, pending: [] };
    const known = new Set(recorded.map((t) => t.id));
    const added = selected.filter((t) => !known.has(t.relationId));
    const latest = new Map(hub.log.latestTables().map((t) => [t.relationId, t]));
    const out = selected.filter((t) => known.has(t.relationId));
    for (const r of recorded) {
      if (out.some((t) => t.relationId === r.id)) continue;
      // Renamed since: followed by its id. Dropped since (the log has it gone): its last shape,
      // so that the drop reaches the sink when the stream replays it.
      const t = latest.get(r.id) ?? hub.log.lastShape(r.id);
      if (t) out.push(t);
    }
    const why = (t: TableSchema) => {
      const was = recorded.find((r) => r.schema === t.schema && r.name === t.name);
      return was
        ? `${t.schema}.${t.name} is another table than the one replicated under that name (id ${t.relationId}, was ${was.id}: renamed or replaced)`
        : `${t.schema}.${t.name} was selected after the snapshot`;
    };
    return { tables: out, pending: added.map((t) => ({ table: t, why: why(t) })) };
  }

  /** The error for tables selected now that the stream never created (they were never copied). */
  private tablesChanged(pending: readonly PendingTable[]): TidemarkError {
    return new TidemarkError('SOURCE_TABLES_CHANGED', {
      detail: `changefeed ${this.cfg.id}: ${pending.map((p) => p.why).join('; ')} — its rows were never copied`,
    });
  }

  /**
   * The source's hub, held across attempts (a failing sink does not stop the pulling into the
   * log); replaced when it stopped for good, released when the changefeed stops.
   */
  private async hub(): Promise<ChangeHub> {
    if (this.lease?.hub.failure) {
      const old = this.lease;
      this.lease = null;
      await old.release();
    }
    if (!this.lease) {
      this.lease = await this.env.acquireHub(this.cfg, (e, info) => {
        // The hub's errors are this changefeed's too: it reads on from the log meanwhile.
        this.update({ error: { code: e.code, message: e.message, hint: e.hint } });
        this.opts.onError?.(e, info);
        if (info.retrying) this.log.warn('source error, retrying', { error: e });
      });
    }
    return this.lease.hub;
  }

  private async *countSnapshot<C extends SnapshotRows>(rows: AsyncIterable<C>): AsyncGenerator<C> {
    for await (const chunk of rows) {
      if (this.stopping)
        throw new TidemarkError('CHANGEFEED_FAILED', {
          detail: 'stopped during the snapshot',
          retriable: true,
        });
      const n = snapshotRowCount(chunk);
      this.rateCount += n;
      this.st.snapshotRows += n;
      const name = qualifiedName(chunk.table);
      const t = this.st.tables?.find((x) => x.name === name);
      if (t) t.rows += n;
      yield chunk;
    }
  }

  private async stream(
    stages: {
      changes: Subscription;
      sink: Sink;
      views: ViewStage | null;
      replicated: Set<number>;
      codec: PositionCodec;
      hub: ChangeHub;
      /** Every table read (replicated ones, and view inputs), by id: kept current at barriers. */
      tables: readonly TableSchema[];
      /** Tables selected but not recorded: created in the stream before `until`, or copied online. */
      pending: PendingTables | null;
      /** Where online copies stand (valid up to the sink's checkpoint). */
      copyStore: CopyProgressStore;
      /** Copies a committed epoch left unfinished: they go on from their last chunk. */
      resumedCopies: readonly CopyProgress[];
      /** This attempt took the initial snapshot: configured re-copies are satisfied by it. */
      snapshotTaken: boolean;
    },
    after: Position,
    lastEpoch: number,
  ): Promise<void> {
    const { changes, sink, views, replicated, codec, hub, copyStore } = stages;
    let pending = stages.pending;
    /** Tables being copied online, by source id; their changes go to their shadow. */
    const copies = new Map<number, TableCopy>();
    /** Shadow ids (negative): written downstream like replicated tables. */
    const shadows = new Set<number>();
    /** Progress of copies that changed since the last cut (swapped ones included). */
    let copyProgress = new Map<number, CopyProgress>();
    /** Swaps in the epoch being built: logged when it commits. */
    let swapLogs: Record<string, unknown>[] = [];
    let copyWake: (() => void) | null = null;
    /**
     * > 0 while a step on the open writer is in flight (a chunk, a barrier), or a copy's
     * downstream steps (its rows and held changes, a shadow dropped, a swap) are half applied
     * between transactions: the timer must not cut the epoch there. A cut then committed the
     * epoch on the writer a chunk was still using, or a drop without its rename.
     */
    let cutHeld = 0;
    const holdingCuts = async <T>(fn: () => Promise<T>): Promise<T> => {
      cutHeld++;
      try {
        return await fn();
      } finally {
        cutHeld--;
      }
    };
    const copyChunkRows = Math.max(1, this.cfg.snapshot.chunkRows);
    const known = new Map(stages.tables.map((t) => [t.relationId, t]));
    const viewInputs = new Set((views?.inputTables ?? []).map((t) => t.relationId));
    /** The replicated set changed at a barrier: recorded in the subscription once its epoch commits. */
    let tablesChanged = false;
    let checkpointPosition: Position = after;
    let resolvedPosition: Position | null = after;
    const { intervalMs, maxRows, maxBytes } = this.cfg.epoch;
    const budgetBytes = Math.min(this.cfg.memoryQuotaBytes, maxBytes);
    // A transaction over budget goes downstream in chunks of a quarter of it: small enough that
    // the chunk being built, the one being written and the garbage both leave behind stay well
    // inside the quota; large enough that per-chunk statements are noise.
    const chunkBytes = Math.floor(budgetBytes / 4);
    const chunkRows = Math.max(1, Math.floor(maxRows / 4));
    // A keyless table's changes held while its copy is read: beyond this, they wait on disk.
    const heldMemoryBytes = Math.max(64 * 1024, Math.floor(budgetBytes / 16));
    const builder = new EpochBuilder();
    let epochNo = lastEpoch;
    let lastCutMs = Date.now();
    /**
     * The reader has handed over everything the log holds (its next batch was not ready at once):
     * an idle sink then gets the complete transactions now, not after `intervalMs`. While behind
     * (more is ready), a cut still waits for `intervalMs` or a limit: epochs grow, collapse more.
     */
    let caughtUp = false;
    let inflight: Promise<void> | null = null;
    let inflightOldestMs: number | null = null;
    let failure: unknown = null;
    // An epoch too large for memory: its downstream transaction, open while chunks are applied.
    let writer: EpochWriter | null = null;
    let chunks = 0;

    // The source's end as last reported: kept while a session reconnects (status never blinks to null).
    let lastEnd: Position | null = null;
    const refreshLag = () => {
      const oldest = inflightOldestMs ?? builder.oldestCommitMs;
      const end = changes.sourceEnd ?? lastEnd;
      lastEnd = end;
      this.st.lagMs = oldest === null ? 0 : Math.max(0, Date.now() - oldest);
      const distance = end ? codec.distanceBytes(checkpointPosition, end) : null;
      this.st.lagBytes = distance === null ? null : Math.max(0, distance);
      const unread = end && resolvedPosition ? codec.distanceBytes(resolvedPosition, end) : null;
      this.st.resolvedLagBytes = unread === null ? null : Math.max(0, unread);
    };
    /** The epoch's tables as the sink gets them: replicated ones, then the views' changes. */
    const sinkTables = async (
      epoch: number,
      tables: readonly TableChanges[],
      step: { continuing: boolean; last: boolean },
    ): Promise<readonly TableChanges[]> => {
      const own = tables.filter((t) => replicated.has(t.table.relationId) || shadows.has(t.table.relationId));
      if (!views) return own;
      return [...own, ...(await views.apply(epoch, tables, step))];
    };
    const commit = (
      e: Epoch,
      position: Position,
      oldestMs: number | null,
      bytes: number,
      progress: readonly CopyProgress[],
      swapped: readonly Record<string, unknown>[],
    ) => {
      inflightOldestMs = oldestMs;
      const started = Date.now();
      const w = writer;
      const continuing = chunks > 0;
      const record = tablesChanged;
      tablesChanged = false;
      writer = null;
      chunks = 0;
      inflight = (async () => {
        // Written before the epoch commits: valid once the sink's checkpoint reaches this epoch.
        if (progress.length > 0 || copyStore.hasPending) copyStore.save(e.checkpoint.epoch, progress);
        const tables = await sinkTables(e.checkpoint.epoch, e.tables, { continuing, last: true });
        const epoch = tables.length === e.tables.length && !views ? e : { ...e, tables };
        if (w) await w.commit(epoch);
        else await sink.commitEpoch(epoch);
      })()
        .then(() => {
          changes.acknowledge(position);
          if (record) {
            const recorded = [...known.values()].filter((t) => replicated.has(t.relationId));
            hub.recordTables(this.cfg.id, recorded);
            // Swapped copies are in the durable record now: their progress is no longer needed.
            copyStore.retain(
              new Set([...copies.keys(), ...replicated]),
              new Set(recorded.map((t) => t.relationId)),
            );
          }
          checkpointPosition = position;
          if (progress.length > 0) copyStore.committedUpTo(e.checkpoint.epoch);
          // Said once the swap is downstream: readers see the copy from this epoch on.
          for (const fields of swapped)
            this.log.info('online copy swapped in', { ...fields, epoch: e.checkpoint.epoch });
          this.committedSince = true;
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
      if (failure !== null || inflight || cutHeld > 0 || builder.isInTransaction || !builder.hasCommitted)
        return;
      const due =
        force ||
        writer !== null ||
        builder.changes >= maxRows ||
        builder.bytes >= maxBytes ||
        caughtUp ||
        Date.now() - lastCutMs >= intervalMs;
      if (!due) return;
      const oldest = builder.oldestCommitMs;
      const bytes = builder.bytes;
      const position = builder.lastPosition!;
      const e = builder.cut(writer ? epochNo : ++epochNo)!;
      lastCutMs = Date.now();
      const progress = [...copyProgress.values()];
      copyProgress = new Map();
      const swapped = swapLogs;
      swapLogs = [];
      commit(e, position, oldest, bytes, progress, swapped);
    };
    /**
     * A transaction outgrew the budget: its changes so far go downstream as a chunk of the epoch's
     * open transaction (begun here if needed), after the epoch before it has committed.
     */
    const applyChunk = () => holdingCuts(applyChunkHeld);
    const applyChunkHeld = async () => {
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
    /**
     * A schema change (barrier) to replay downstream: the epoch's changes before it go down as a
     * chunk of the epoch's open transaction (begun here if needed), then the sink's DDL; the
     * changes after it follow in later chunks or the commit. With `change` null only the chunk
     * goes down (a table about to leave the changefeed keeps its last changes).
     */
    const applyBarrier = (
      change: SchemaChange | null,
      to: { sink: boolean; views: boolean; copyFollows?: boolean },
    ) => holdingCuts(() => applyBarrierHeld(change, to));
    const applyBarrierHeld = async (
      change: SchemaChange | null,
      to: { sink: boolean; views: boolean; copyFollows?: boolean },
    ) => {
      while (inflight) await inflight;
      if (failure !== null) throw failure;
      if (!writer) {
        writer = await sink.beginEpoch();
        epochNo++;
      }
      const before = builder.takeChunk();
      // The views' epoch opens here even without changes before the barrier.
      if (before.length > 0 || to.views) {
        const tables = await sinkTables(epochNo, before, { continuing: chunks > 0, last: false });
        chunks++;
        if (tables.length > 0) await writer.applyChunk(tables);
      }
      // The views first: a view that no longer binds stops the changefeed before any DDL.
      const result =
        change && to.views && views ? await views.barrier(change, where(), to.copyFollows) : null;
      if (change && to.sink) await writer.applySchema(change);
      if (change && result) await applyViewsResult(change, result);
    };
    /** What the views' barrier did, downstream in the open epoch: view tables reshaped, rows replaced. */
    const applyViewsResult = async (change: SchemaChange, result: BarrierResult) => {
      if (result.kind === 'rebuilt') {
        for (const r of result.reshaped) {
          await writer!.applySchema({
            kind: 'table-dropped',
            tableId: r.before.relationId,
            table: r.before,
            ddl: null,
          });
          await writer!.applySchema({ kind: 'table-created', table: r.after, unreplicable: null, ddl: null });
        }
        await writer!.applyChunk(result.rows);
      }
      if (result.kind !== 'unchanged') {
        this.log.info(`views ${result.kind} at a schema barrier`, {
          table: schemaChangeTableId(change),
          reason: result.reason,
          ...(result.kind === 'rebuilt' ? { reshaped: result.reshaped.map((r) => r.after.name) } : {}),
        });
      }
    };
    const where = () => `after ${this.st.resolved ?? after.toString()}`;
    const onSchema = async (change: SchemaChange) => {
      const decision = decideBarrier(change, {
        changefeedId: this.cfg.id,
        selection: this.cfg.tables,
        replicated,
        policy: this.cfg.schemaChanges,
        where: where(),
        canCopy: () => hub.connector.openChunkReader !== undefined,
      });
      const forViews = viewBarrier(change, viewInputs);
      this.log.debug('schema change', {
        change: change.kind,
        table: schemaChangeTableId(change),
        decision: decision.action,
        ddl: change.ddl,
      });
      if (decision.action === 'ignore') {
        if (forViews) await applyBarrier(change, { sink: false, views: true });
        return;
      }
      if (decision.action === 'recopy') {
        const t = decision.table;
        this.log.warn('table copied again online: its rows cannot be derived from the change', {
          table: qualifiedName(t),
          reason: decision.reason,
          ddl: change.ddl,
        });
        // Views reading it keep its last rows, and take its new layout with the copy, at the swap.
        await copyAgain(t);
        return;
      }
      if (decision.action === 'left-out') {
        this.log.warn('table left out of the changefeed', {
          table: `${decision.table.schema}.${decision.table.name}`,
          reason: decision.reason,
        });
        this.update({
          warnings: [
            ...this.st.warnings,
            `${decision.table.schema}.${decision.table.name} left out: ${decision.reason}`,
          ],
        });
        return;
      }
      const { add, remove, update } = decision.table;
      if (decision.toSink || forViews) await applyBarrier(change, { sink: decision.toSink, views: forViews });
      else if (remove !== undefined) await applyBarrier(null, { sink: false, views: false });
      if (add) {
        known.set(add.relationId, add);
        replicated.add(add.relationId);
        changes.addTables([add]);
      }
      if (update) known.set(update.relationId, update);
      if (remove !== undefined) {
        known.delete(remove);
        replicated.delete(remove);
        changes.removeTable(remove);
      }
      tablesChanged = true;
      this.log.info('schema change applied', {
        change: change.kind,
        table: schemaChangeTableId(change),
        ddl: change.ddl,
      });
    };
    const copyStatus = () => {
      const rows = [...(this.st.tables ?? [])];
      for (const c of copies.values()) {
        const name = qualifiedName(c.table);
        const copied = c.progress.rows;
        const est = c.estimatedRows;
        const percent = est && est > 0 ? Math.min(100, Math.round((copied / est) * 1000) / 10) : null;
        const elapsed = (Date.now() - (copyStarted.get(c.table.relationId) ?? Date.now())) / 1000;
        const rate = elapsed > 0 ? (copied - (copyStartRows.get(c.table.relationId) ?? 0)) / elapsed : 0;
        const eta = est && rate > 0 ? Math.max(0, Math.round((est - copied) / rate)) : null;
        const entry = {
          name,
          rows: copied,
          phase: 'copying' as const,
          copied,
          estimated: est,
          percent,
          etaSeconds: eta,
        };
        const i = rows.findIndex((r) => r.name === name);
        if (i >= 0) rows[i] = entry;
        else rows.push(entry);
      }
      this.update({ tables: rows });
    };
    const copyStarted = new Map<number, number>();
    const copyStartRows = new Map<number, number>();
    const dropShadow = (c: TableCopy): SchemaChange => ({
      kind: 'table-dropped',
      tableId: c.shadow.relationId,
      table: c.shadow,
      ddl: null,
    });
    /** Starts (or, with its committed progress, resumes) the online copy of `t`. Between transactions. */
    const startCopy = async (t: TableSchema, progress: CopyProgress | null) => {
      const open = hub.connector.openChunkReader?.bind(hub.connector);
      if (!open)
        throw this.tablesChanged([
          { table: t, why: `${t.schema}.${t.name} was selected after the snapshot` },
        ]);
      if (
        progress !== null &&
        (progress.lastKey !== null || progress.chunks > 0) &&
        progress.shadow !== shadowOf(t, this.cfg.id).name
      ) {
        this.log.warn('online copy starts over: its shadow has another name (made by an earlier version)', {
          table: qualifiedName(t),
          ...(progress.shadow === undefined ? {} : { shadow: progress.shadow }),
        });
        progress = null;
      }
      const forViews = views !== null && viewInputs.has(t.relationId);
      if (forViews && progress !== null) {
        // The views' state holds nothing of this copy (rebuilt since, say): it starts over.
        views.copyStarted(t, shadowOf(t, this.cfg.id), false);
        if (!views.copyCollected(t)) progress = null;
      }
      const reader = open(t);
      const estimate = await reader.estimateRows().catch(() => null);
      const copy = new TableCopy(
        reader,
        progress ?? { table: t, lastKey: null, rows: 0, chunks: 0, phase: 'copying' },
        estimate,
        this.cfg.id,
        {
          rowsPath: CopyProgressStore.spillPathFor(this.env.dataDir, this.cfg.id, t.relationId),
          heldPath: CopyProgressStore.heldSpillPathFor(this.env.dataDir, this.cfg.id, t.relationId),
          heldMemoryBytes,
        },
      );
      copy.onSettled = () => copyWake?.();
      // A shadow left by a copy that never committed a chunk is stale: dropped before any change
      // reaches it (the chunks read the source from the first key again). The new one is created
      // at once, with the progress that says it exists: a table with no rows and no writes gets a
      // shadow to swap in too — also one an interrupted initial snapshot left as `copying` from
      // its first key, whose shadow was never made.
      const fresh = progress === null || (progress.lastKey === null && progress.chunks === 0);
      if (fresh) {
        await holdingCuts(async () => {
          await applyBarrier(dropShadow(copy), { sink: true, views: forViews });
          await applyBarrier(
            { kind: 'table-created', table: copy.shadow, unreplicable: null, ddl: null },
            { sink: true, views: false },
          );
        });
      }
      // The views collect the copy beside the table's last rows, and switch at the swap.
      if (forViews) views.copyStarted(t, copy.shadow, fresh);
      copies.set(t.relationId, copy);
      shadows.add(copy.shadow.relationId);
      copyProgress.set(t.relationId, copy.progress);
      copyStarted.set(t.relationId, Date.now());
      copyStartRows.set(t.relationId, copy.progress.rows);
      changes.addTables([t]);
      this.log.info(progress ? 'online copy resumed' : 'online copy started', {
        table: qualifiedName(t),
        ...(progress ? { rows: progress.rows, chunks: progress.chunks } : {}),
      });
      copy.issue(copyChunkRows);
      copyStatus();
    };
    /**
     * A replicated table copied again, between transactions: its changes so far go down to the
     * table as it is; from here they go to the new copy's shadow, and the table downstream keeps
     * its last rows until the copy replaces it whole.
     */
    const copyAgain = (t: TableSchema) =>
      holdingCuts(async () => {
        await applyBarrier(null, { sink: false, views: false });
        replicated.delete(t.relationId);
        known.set(t.relationId, t);
        tablesChanged = true;
        await startCopy(t, null);
      });
    /** The tables `selection` names, copied again (see `Changefeed.resnapshot`). Between transactions. */
    const resnapshot = async (
      selection: readonly string[],
      request: string | null,
      only: ReadonlySet<number> | null = null,
    ) => {
      const refused: string[] = [];
      const chosen: TableSchema[] = [];
      for (const name of selection) {
        const matched = [...known.values()].filter(
          (t) => selects([name], t) && (only === null || only.has(t.relationId)),
        );
        if (matched.length === 0)
          refused.push(`${name}: no table of changefeed ${this.cfg.id} has this name`);
        for (const t of matched) {
          if (!replicated.has(t.relationId) && !copies.has(t.relationId))
            refused.push(`${qualifiedName(t)}: not replicated by changefeed ${this.cfg.id}`);
          else if (hub.connector.openChunkReader === undefined)
            refused.push(`${qualifiedName(t)}: this source has no online copy`);
          else if (!chosen.includes(t)) chosen.push(t);
        }
      }
      if (refused.length > 0) throw new TidemarkError('RESNAPSHOT_REFUSED', { detail: refused.join('; ') });
      const started: string[] = [];
      const alreadyCopying: string[] = [];
      for (const t of chosen) {
        if (copies.has(t.relationId)) {
          alreadyCopying.push(qualifiedName(t));
          continue;
        }
        this.log.info('table copied again online, as asked', {
          table: qualifiedName(t),
          ...(request === null ? {} : { request }),
        });
        await copyAgain(t);
        started.push(qualifiedName(t));
      }
      if (request !== null) for (const t of chosen) copyStore.take(t.relationId, request);
      return { started, alreadyCopying };
    };
    /** Requests of `Changefeed.resnapshot`, answered one by one. Between transactions. */
    const takeRequests = async () => {
      const requests = this.requests.splice(0);
      for (const [i, r] of requests.entries()) {
        try {
          r.resolve(await resnapshot(r.selection, null));
        } catch (err) {
          r.reject(err);
          if (err instanceof TidemarkError && err.code === 'RESNAPSHOT_REFUSED') continue;
          // A sink or source failure mid-way: the attempt fails (and is retried if it can heal);
          // the requests not taken yet are answered, not lost silently.
          for (const rest of requests.slice(i + 1)) rest.reject(notTaken(this.id));
          throw err;
        }
      }
    };
    /** The shadow is complete: it replaces the table in the epoch being built (one transaction). */
    const swap = (c: TableCopy) => holdingCuts(() => swapHeld(c));
    const swapHeld = async (c: TableCopy) => {
      const t = c.table;
      const forViews = views !== null && viewInputs.has(t.relationId);
      // The epoch's changes so far go down first; the table then takes the shadow's rows, and
      // the views the copy's, in the same transaction.
      await applyBarrier(null, { sink: false, views: forViews });
      await writer!.replaceTable(t, c.shadow);
      if (forViews) {
        // A copy in another shape than the views read: the old rows leave first, then the views
        // take the shape (nothing left to convert), then the copy's rows.
        const layout = views.copyLayoutChange(t);
        if (layout !== null) {
          for await (const page of views.copyRetracted(t)) await writer!.applyChunk(page);
          await applyViewsResult(layout, await views.barrier(layout, where(), true));
        }
        for await (const page of views.copySwapped(t)) await writer!.applyChunk(page);
      }
      c.swapped();
      copyProgress.set(t.relationId, c.progress);
      copies.delete(t.relationId);
      known.set(t.relationId, t);
      replicated.add(t.relationId);
      tablesChanged = true;
      await c.close();
      const name = qualifiedName(t);
      this.update({
        tables: (this.st.tables ?? []).map((r) =>
          r.name === name ? { name, rows: c.progress.rows, phase: 'streaming' as const } : r,
        ),
      });
      swapLogs.push({
        table: name,
        rows: c.progress.rows,
        chunks: c.progress.chunks,
        // Chunks this run read from the source (a resumed copy reads only what was left).
        reads: c.reads,
      });
    };
    /** Chunks whose high watermark the stream passed: reconciled and applied. Between transactions. */
    const settleCopies = async () => {
      for (const c of [...copies.values()]) {
        if (builder.isInTransaction || !c.ready(resolvedPosition)) continue;
        // A chunk's rows, its held changes and its progress land in one epoch (a keyless table's
        // rows may go down in several chunks of it).
        await holdingCuts(() => settleCopy(c));
      }
      if (copies.size > 0) copyStatus();
    };
    const settleCopy = async (c: TableCopy) => {
      let f: ReturnType<TableCopy['finish']>;
      try {
        f = c.finish();
      } catch (err) {
        // Renamed or altered while read: its barrier, still ahead in the stream, restarts the
        // copy in the new shape; the copy reads nothing until the stream passed the change.
        const until =
          err instanceof TidemarkError && err.code === 'SOURCE_SNAPSHOT_SCHEMA_MOVED'
            ? (await hub.connector.progress()).end
            : null;
        if (until === null || !c.waitForChange(until)) throw err;
        this.log.info('online copy waits for a schema change to arrive', {
          table: qualifiedName(c.table),
          until: until.toString(),
        });
        return;
      }
      if (f.reread !== null) {
        this.log.debug('online copy: chunk read again', {
          table: qualifiedName(c.table),
          reason: f.reread,
        });
      }
      if (f.held.onDisk) {
        this.log.info('online copy: the changes held during the read were kept on disk', {
          table: qualifiedName(c.table),
          changes: f.held.count,
        });
      }
      // A keyless table's whole read and its held changes come from disk: they go down in chunks
      // of the epoch. A stop is honoured between chunks (the epoch's open transaction is dropped).
      const oneMore = async () => {
        if (this.stopping) throw stoppedDuringCopy();
        if (builder.bytes >= chunkBytes || builder.changes >= chunkRows) await applyChunk();
      };
      try {
        for (const row of f.rows) {
          builder.insert(c.shadow, row);
          await oneMore();
        }
        for (const change of f.changes) {
          builder.add(change);
          await oneMore();
        }
      } finally {
        f.release();
      }
      this.rateCount += f.rowCount;
      this.st.snapshotRows += f.rowCount;
      copyProgress.set(c.table.relationId, c.progress);
      if (f.complete) await swap(c);
      else c.issue(copyChunkRows);
    };
    /** A change of a table being copied: aimed at its shadow (or held back), noted in its window. */
    const copyChange = (m: RowChange, txn: number | undefined): RowChange | null | undefined => {
      if (copies.size === 0) return undefined;
      if (m.tag === 'truncate') {
        if (!m.tables.some((t) => copies.has(t.relationId))) return undefined;
        const tables = m.tables.map((t) => {
          const c = copies.get(t.relationId);
          if (!c) return t;
          c.observe({ tag: 'truncate', tables: [t] });
          return c.shadow;
        });
        return { tag: 'truncate', tables };
      }
      if (m.tag === 'schema') return undefined;
      const c = copies.get(m.table.relationId);
      return c ? c.observe(m, txn) : undefined;
    };
    /** A schema change of a table being copied: its copy starts over in the new shape (or ends, dropped). */
    const copySchema = async (change: SchemaChange): Promise<boolean> => {
      const id = schemaChangeTableId(change);
      const c = copies.get(id);
      if (!c) return false;
      return holdingCuts(() => copySchemaHeld(change, id, c));
    };
    const copySchemaHeld = async (change: SchemaChange, id: number, c: TableCopy): Promise<boolean> => {
      copies.delete(id);
      await c.close();
      const forViews = views !== null && viewInputs.has(id);
      await applyBarrier(dropShadow(c), { sink: true, views: forViews });
      const restarts = change.kind === 'table-altered' && change.unreplicable === undefined;
      if (forViews) {
        // The copy so far is dropped. A copy that starts over in the new shape brings the views
        // that shape at its swap; anything else (a drop) reaches the views now.
        views.copyEnded(c.table);
        if (!restarts) await applyBarrier(change, { sink: false, views: true });
      }
      if (restarts) {
        this.log.info('online copy starts over: the table changed shape', {
          table: qualifiedName(change.after),
        });
        await startCopy(change.after, null);
      } else {
        copyStore.forget(id);
        changes.removeTable(id);
      }
      return true;
    };
    // After a new snapshot the stream starts at its position, not at the checkpoint the shadows
    // are at: their copies start over.
    for (const p of stages.resumedCopies) await startCopy(p.table, stages.snapshotTaken ? null : p);
    // Re-copies the configuration asks for, each taken once per table (recorded with the epoch
    // that carries it); a pattern copies only the tables that have not taken its request.
    copyStore.keepRequests(this.cfg.resnapshot.map((r) => r.request));
    for (const r of this.cfg.resnapshot) {
      const due = [...known.values()].filter(
        (t) => selects([r.table], t) && !copyStore.hasTaken(t.relationId, r.request),
      );
      if (due.length === 0) continue;
      if (!stages.snapshotTaken)
        await resnapshot([r.table], r.request, new Set(due.map((t) => t.relationId)));
      else for (const t of due) copyStore.take(t.relationId, r.request);
    }

    const timer = setInterval(
      () => {
        maybeCut();
        refreshLag();
      },
      Math.max(5, Math.min(Math.floor(intervalMs / 4), 100)),
    );

    const it = changes.read(after)[Symbol.asyncIterator]();
    /** The source's id of the transaction being read (online copies of keyless tables need it). */
    let txn: number | undefined;
    let nextBatch: ReturnType<typeof it.next> | null = null;
    try {
      for (;;) {
        if (failure !== null) throw failure;
        if (this.stopping) break;
        if (!builder.isInTransaction && [...copies.values()].some((c) => c.ready(resolvedPosition))) {
          await settleCopies();
          continue;
        }
        if (!builder.isInTransaction && this.requests.length > 0) {
          await takeRequests();
          continue;
        }
        // A fresh stop promise per wait: racing one long-lived promise would leave a reaction on
        // it for every batch, never released (a leak proportional to the stream).
        nextBatch ??= it.next();
        // A batch the log already holds resolves within the microtasks before a macrotask runs.
        caughtUp = !(await Promise.race([nextBatch.then(() => true), macrotask()]));
        if (caughtUp) maybeCut();
        const next = await Promise.race([
          nextBatch,
          new Promise<'stop'>((r) => (this.wakeStream = () => r('stop'))),
          new Promise<'copy'>((r) => (copyWake = () => r('copy'))),
          new Promise<'copy'>((r) => (this.wakeRequests = () => r('copy'))),
        ]);
        copyWake = null;
        this.wakeRequests = null;
        if (next === 'copy') continue;
        nextBatch = null;
        caughtUp = false;
        if (next === 'stop' || next.done) break;
        for (const m of next.value) {
          if (m.tag === 'schema') {
            if (await copySchema(m.change)) continue;
            await onSchema(m.change);
            continue;
          }
          if (m.tag === 'begin') txn = m.txn;
          if (m.tag !== 'begin' && m.tag !== 'commit') {
            const routed = copyChange(m, txn);
            if (routed !== undefined) {
              if (routed !== null) this.rateCount += builder.add(routed);
              continue;
            }
          }
          this.rateCount += builder.add(m);
          if (m.tag === 'commit') {
            resolvedPosition = m.position;
            this.st.resolved = m.position.toString();
            if (pending !== null && m.position.compare(pending.until) >= 0) {
              const never = pending.tables.filter(
                (p) => !replicated.has(p.table.relationId) && !copies.has(p.table.relationId),
              );
              pending = null;
              // Selected now, never copied, not created in the stream: copied online from here.
              for (const p of never) await startCopy(p.table, null);
            }
            maybeCut();
            if (copies.size > 0) await settleCopies();
            if (this.requests.length > 0) await takeRequests();
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
      for (const c of copies.values()) await c.close().catch(() => {});
      void it.return?.(undefined)?.catch(() => {});
      while (inflight) await (inflight as Promise<void>).catch(() => {});
      // A chunked epoch whose transaction did not end here: nothing of it becomes visible.
      await (writer as EpochWriter | null)?.abort().catch(() => {});
    }
  }
}

/** A stop asked for while an online copy was landing: its epoch is dropped, the copy resumes. */
function stoppedDuringCopy(): TidemarkError {
  return new TidemarkError('CHANGEFEED_FAILED', { detail: 'stopped during an online copy', retriable: true });
}

/** Resolves false once the event loop has run the current macrotask's microtasks and I/O polled. */
function macrotask(): Promise<false> {
  return new Promise((r) => setImmediate(() => r(false)));
}

function notTaken(id: string): TidemarkError {
  return new TidemarkError('RESNAPSHOT_NOT_TAKEN', {
    detail: `changefeed ${id} stopped before taking the request`,
  });
}

/** The position a sink stored, parsed once with the source's codec (a bad one is named). */
function parsePosition(codec: PositionCodec, text: string): Position {
  try {
    return codec.parse(text);
  } catch (cause) {
    throw new TidemarkError('POSITION_INVALID', {
      detail: `the sink's checkpoint "${text}" is not a ${codec.kind} position (was it written by another source?)`,
      cause,
    });
  }
}

export type { TableSchema, ChangeMessage, SnapshotRows };
