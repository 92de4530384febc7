/**
 * The change hub of one source: one connector's replication session pumped into one local change
 * log, read by any number of subscriptions (changefeeds) at their own pace. It knows no database:
 * positions are the connector's, compared and stored through its codec; tables are known by id.
 *
 *   connector.replicate(after log end) ─► events ─► ChangeLog (own sequence, spill) ─┬─► subscription a.read(after Ca)
 *        ▲                                                                            ├─► subscription b.read(after Cb)
 *        │                                                                            └─► …
 *        └── session.acknowledge(min C) ◄── subscriptions.json (fsynced) ◄── a.acknowledge(C) …
 *                                         └─► log.clean(min C)
 *
 * Nothing is acknowledged to the source, nor cleaned from the log, past the smallest position a
 * subscriber has durably recorded (paused and failed changefeeds count until they are removed or
 * their record is released as stale). So whatever the log loses in a machine crash, or to damage,
 * the source still holds: the hub then moves the damaged log aside and refills it from the
 * source. Retriable errors are retried with a backoff that grows until a transaction is appended.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { ChangeEvent } from '../core/change.ts';
import type { Position } from '../core/position.ts';
import type { TableSchema } from '../core/table-schema.ts';
import { backoffMs } from '../errors/backoff.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ReplicationSession, SourceConnector } from '../source/connector.ts';
import { ChangeLog, type ChangeLogOptions } from './change-log.ts';
import { DEFAULT_READER_QUOTA_BYTES } from './change-log-reader.ts';
import { Subscription, type SubscriptionHost } from './subscription.ts';
import { SubscriptionStore, type RecordedTable, type SubscriptionRecord } from './subscriptions.ts';

/**
 * How often subscribers' acknowledgements are made durable and passed on to the source. Each time
 * `subscriptions.json` is replaced and fsynced (file and directory) on the event loop: at 100 ms
 * that was 650 ms of 5.4 s of CPU in a 10 s single-row workload, and its stalls delayed the
 * stream. Only how soon the source may discard WAL depends on it, never what is visible.
 */
const ACK_INTERVAL_MS = 1000;

export interface ChangeHubOptions<P extends Position> {
  readonly connector: SourceConnector<P>;
  /**
   * Directory of this source's hub; created when missing. Holds `subscriptions.json` and the
   * change log in `log/` (moved aside as a whole when damaged; the subscriptions stay).
   */
  readonly dir: string;
  readonly logOptions?: Pick<ChangeLogOptions, 'writeBatchBytes' | 'spillBytes' | 'maxDiskBytes' | 'fsync'>;
  /** Default `memoryQuotaBytes` of subscriptions that give none. */
  readonly readerMemoryQuotaBytes?: number;
  /**
   * A subscription with no reader that has not acknowledged for this long no longer holds the
   * log or the source: its record is released (warned about before). Null: never.
   */
  readonly releaseAfterMs?: number | null;
  /** A subscription with no reader for this long is reported stale (status, metrics, a warning). */
  readonly staleAfterMs?: number;
  /** Every error the pump meets, retried or not; must not throw. */
  readonly onError?: (e: TidemarkError, info: { retrying: boolean }) => void;
  /** Things an operator should know (a log refilled, a subscription released); must not throw. */
  readonly onWarning?: (message: string, fields: Record<string, unknown>) => void;
}

export interface SubscribeOptions<P extends Position> {
  /** The changefeed id: its acknowledged position is recorded under it. */
  readonly id: string;
  /** The tables whose row changes it reads (by stable id). */
  readonly tables: readonly TableSchema[];
  /**
   * Its sink's checkpoint: the subscription reads after it. A record further ahead (the sink lost
   * commits it had acknowledged) is moved back when the log still holds what is between.
   */
  readonly checkpoint: P;
  readonly memoryQuotaBytes?: number;
  /** Its selection: tables created later that it matches are captured from their creation. */
  readonly selection?: readonly string[];
}

export interface SubscriptionInfo {
  readonly id: string;
  readonly position: string;
  readonly acknowledgedAtMs: number;
  /** A changefeed is reading it now. */
  readonly active: boolean;
  /** Not read for `staleAfterMs`: it holds the log and the source for nobody running. */
  readonly stale: boolean;
}

export interface HubStats {
  /** Events received from the source since start. */
  readonly eventsFromSource: number;
  /** The log's last complete transaction, and where its coverage starts (text positions). */
  readonly logCommitted: string | null;
  readonly logCoveredFrom: string | null;
  readonly logDiskBytes: number;
  /** What the source was last told it may discard. */
  readonly sourceAcknowledged: string | null;
  readonly subscriptions: number;
  /** Times the log was refilled from the source (missing, damaged, or behind the source). */
  readonly logRefills: number;
  /** Replication sessions opened (1 + reconnects), and the position the last one resumed after. */
  readonly replicationStarts: number;
  readonly lastReplicationStart: string | null;
}

export class ChangeHub<P extends Position = Position> implements SubscriptionHost<P> {
  readonly connector: SourceConnector<P>;
  /** Resolves when stopped; never rejects (a fatal error is `failure`). */
  get done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }
  failure: TidemarkError | null = null;
  private logRef: ChangeLog<P>;
  private readonly store: SubscriptionStore<P>;
  private readonly readers = new Map<string, Subscription<P>>();
  /** Running changefeeds holding a subscription (counted), reading or not. */
  private readonly holds = new Map<string, number>();
  private session: ReplicationSession<P> | null = null;
  private stopping = false;
  private wakeStop: () => void = () => {};
  private ackTimer: NodeJS.Timeout | null = null;
  private acknowledged: P | null = null;
  private events = 0;
  private starts = 0;
  private refills: number;
  private lastStart: P | null = null;
  private readyWaiters: (() => void)[] = [];
  private readonly warnedStale = new Set<string>();

  private constructor(
    private readonly options: ChangeHubOptions<P>,
    log: ChangeLog<P>,
    store: SubscriptionStore<P>,
    refilled: boolean,
  ) {
    this.connector = options.connector;
    this.logRef = log;
    this.store = store;
    this.refills = refilled ? 1 : 0;
    this.ackTimer = setInterval(() => this.tick(), ACK_INTERVAL_MS);
    this.ackTimer.unref();
  }

  /** The pump, started by the first subscriber: opening a hub changes nothing on the source. */
  private running: Promise<void> | null = null;

  private ensureRunning(): void {
    if (!this.running && !this.stopping) this.running = this.run();
  }

  /**
   * Opens the log in `options.dir` (a damaged one is moved aside and refilled from the source)
   * and the subscription records; the pump starts with the first subscriber. Throws what
   * reading the records throws.
   */
  static open<P extends Position>(options: ChangeHubOptions<P>): ChangeHub<P> {
    mkdirSync(options.dir, { recursive: true });
    const store = SubscriptionStore.open(options.dir, options.connector.positions);
    let refilled = false;
    let log: ChangeLog<P>;
    try {
      log = openLog(options);
    } catch (err) {
      if (!(err instanceof TidemarkError) || err.code !== 'CHANGELOG_CORRUPT') throw err;
      moveAside(logDir(options.dir), err, options.onWarning);
      refilled = true;
      log = openLog(options);
    }
    return new ChangeHub(options, log, store, refilled);
  }

  get log(): ChangeLog<P> {
    return this.logRef;
  }

  /** The source's log end as last seen (lag in bytes), or null. */
  get sourceEnd(): P | null {
    return this.session?.sourceEnd ?? null;
  }

  /**
   * Where a subscriber about to take its snapshot registers first: the log's end, once the log
   * has one (a new source's first session defines it). Registering there keeps every later
   * transaction while the snapshot is read; the snapshot's position, being later, is what the
   * subscriber then reads after. Rejects with the hub's failure, or (retriable, nothing
   * registered) once `cancelled` resolves — a subscriber stopping while the source cannot start.
   */
  async registerAtEnd(id: string, tables: readonly TableSchema[], cancelled?: Promise<void>): Promise<P> {
    this.ensureRunning();
    let gaveUp = false;
    void cancelled?.then(() => {
      gaveUp = true;
      for (const w of this.readyWaiters.splice(0)) w();
    });
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.stopping)
        throw new TidemarkError('CHANGEFEED_FAILED', { detail: 'the hub stopped', retriable: true });
      if (gaveUp)
        throw new TidemarkError('CHANGEFEED_FAILED', {
          detail: 'stopped while the source was not streaming yet',
          retriable: true,
        });
      const end = this.logRef.end;
      if (end) {
        this.learn(tables);
        this.store.register(id, end.position, tables.map(recorded));
        this.flushNow();
        return end.position;
      }
      await new Promise<void>((r) => this.readyWaiters.push(r));
    }
  }

  /** For Subscription: resolves once the current log has been started, or the hub stopped or failed. */
  async whenStarted(): Promise<void> {
    while (this.logRef.end === null && !this.stopping && !this.failure) {
      await new Promise<void>((r) => this.readyWaiters.push(r));
    }
  }

  /**
   * Attaches a changefeed at its sink's checkpoint: its tables are captured (their changes flow
   * from now on), its record holds the log from `checkpoint` on. A subscription with the same id
   * replaces (closes) the previous one. Rejects with CHANGELOG_BEHIND when the log no longer holds
   * what follows `checkpoint`.
   */
  async subscribe(opts: SubscribeOptions<P>): Promise<Subscription<P>> {
    this.readers.get(opts.id)?.close();
    this.ensureRunning();
    await this.connector.capture(opts.tables, opts.selection ?? []);
    this.learn(opts.tables);
    const rec = this.store.get(opts.id);
    if (rec === null || rec.position.compare(opts.checkpoint) !== 0) {
      if (rec !== null && rec.position.compare(opts.checkpoint) > 0) {
        this.options.onWarning?.(
          "a sink's checkpoint is behind what it acknowledged: re-reading from the change log",
          {
            changefeed: opts.id,
            acknowledged: rec.position.toString(),
            checkpoint: opts.checkpoint.toString(),
          },
        );
      }
      if (this.logRef.end !== null && this.logRef.seqAfter(opts.checkpoint) === null) {
        const from = this.logRef.coveredFrom?.position;
        throw new TidemarkError('CHANGELOG_BEHIND', {
          detail: `changefeed ${opts.id} resumes after ${opts.checkpoint}, but the change log at ${this.logRef.path} starts after ${String(from)}${rec === null ? ' and holds no record of it' : ` (it had acknowledged ${rec.position})`}`,
        });
      }
      this.store.register(
        opts.id,
        opts.checkpoint,
        rec?.tables ?? opts.tables.map(recorded),
        rec?.registeredAtMs,
      );
      this.flushNow();
    }
    this.warnedStale.delete(opts.id);
    const sub = new Subscription<P>({
      id: opts.id,
      tables: opts.tables,
      host: this,
      memoryQuotaBytes:
        opts.memoryQuotaBytes ?? this.options.readerMemoryQuotaBytes ?? DEFAULT_READER_QUOTA_BYTES,
      ...(opts.selection ? { selection: opts.selection } : {}),
    });
    this.readers.set(opts.id, sub);
    return sub;
  }

  /**
   * Removes a changefeed for good: its record no longer holds the log or the source. (To pause
   * one, close its subscription instead: its record stays.)
   */
  unsubscribe(id: string): void {
    this.readers.get(id)?.close();
    this.readers.delete(id);
    if (this.store.remove(id)) this.flushNow();
  }

  /**
   * The latest shape of every table the log holds, by stable id: for `connector.describe`, so a
   * source whose ids the connector assigns (renamed tables) describes them under the ids they had.
   */
  knownTables(): TableSchema[] {
    return this.logRef.isClosed ? [] : this.logRef.latestTables();
  }

  /**
   * Whether subscription `id` has a record here: false for a changefeed never registered, one
   * released as stale, or one whose hub directory was lost or replaced.
   */
  hasRecord(id: string): boolean {
    return this.store.get(id) !== null;
  }

  /** The tables subscription `id` replicates, as recorded; null when it has no record. */
  recordedTables(id: string): readonly RecordedTable[] | null {
    return this.store.get(id)?.tables ?? null;
  }

  /**
   * Records the tables subscription `id` replicates from now on; durable when this returns (a
   * record lost to a crash would make a restart refuse a table the sink already has).
   */
  recordTables(id: string, tables: readonly TableSchema[]): void {
    this.store.setTables(id, tables.map(recorded));
    this.flushNow();
  }

  /**
   * Removes tables from subscription `id`'s record (a copy of them was given up): selected
   * again, they are copied, never streamed as if they had been.
   */
  unrecordTables(id: string, ids: ReadonlySet<number>): void {
    const tables = this.store.get(id)?.tables;
    if (!tables?.some((t) => ids.has(t.id))) return;
    this.store.setTables(
      id,
      tables.filter((t) => !ids.has(t.id)),
    );
    this.flushNow();
  }

  /** Every recorded subscription, active or not, with its age. */
  subscriptions(nowMs = Date.now()): SubscriptionInfo[] {
    return this.store.all().map((s) => this.info(s, nowMs));
  }

  stats(): HubStats {
    return {
      eventsFromSource: this.events,
      logCommitted: this.logRef.committed?.position.toString() ?? null,
      logCoveredFrom: this.logRef.coveredFrom?.position.toString() ?? null,
      logDiskBytes: this.logRef.diskBytes(),
      sourceAcknowledged: this.acknowledged?.toString() ?? null,
      subscriptions: this.store.all().length,
      logRefills: this.refills,
      replicationStarts: this.starts,
      lastReplicationStart: this.lastStart?.toString() ?? null,
    };
  }

  /** Tables a subscriber captures: the log and the running session know their shapes from now on. */
  private learn(tables: readonly TableSchema[]): void {
    if (this.logRef.isClosed) return;
    this.logRef.learnTables(tables);
    this.session?.learn(tables);
  }

  /** For Subscription.acknowledge: durable at the next tick, then passed on. */
  onAcknowledge(id: string, position: P): void {
    this.store.acknowledge(id, position);
  }

  /** For Subscription: a subscription closed (its record stays). */
  onClose(sub: Subscription<P>): void {
    if (this.readers.get(sub.id) === sub) this.readers.delete(sub.id);
  }

  /**
   * For Subscription: a reader met damage in the log. The log is moved aside and refilled from
   * the source; the reader's changefeed retries (CHANGELOG_CORRUPT is retriable).
   */
  onCorrupt(err: TidemarkError): void {
    if (this.stopping || this.pendingRefill) return;
    this.pendingRefill = err;
    void this.session?.close().catch(() => {});
  }

  private pendingRefill: TidemarkError | null = null;

  /** Stops pumping, ends every subscription's stream and closes the log. Idempotent. */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.wakeStop();
      for (const r of this.readers.values()) r.close();
      for (const w of this.readyWaiters.splice(0)) w();
      await this.session?.close().catch(() => {});
    }
    await this.done;
    if (this.ackTimer) clearInterval(this.ackTimer);
    this.ackTimer = null;
    try {
      this.store.flush();
    } catch {
      // The records as last written still hold the source: nothing is lost by a failed last flush.
    }
    await this.logRef.close();
  }

  /**
   * Marks subscription `id` as held by a running changefeed (reading or not) until the returned
   * function is called: a held subscription is never stale.
   */
  hold(id: string): () => void {
    this.holds.set(id, (this.holds.get(id) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.holds.get(id) ?? 1) - 1;
      if (n > 0) this.holds.set(id, n);
      else this.holds.delete(id);
    };
  }

  private info(s: SubscriptionRecord<P>, nowMs: number): SubscriptionInfo {
    const active = this.readers.has(s.id) || this.holds.has(s.id);
    return {
      id: s.id,
      position: s.position.toString(),
      acknowledgedAtMs: s.acknowledgedAtMs,
      active,
      stale: !active && nowMs - s.acknowledgedAtMs >= (this.options.staleAfterMs ?? 10 * 60_000),
    };
  }

  private async run(): Promise<void> {
    for (let attempt = 0; !this.stopping;) {
      try {
        await this.pump(() => (attempt = 0));
        if (this.pendingRefill) {
          await this.refill(this.pendingRefill);
          continue;
        }
        if (this.stopping) return;
        throw new TidemarkError('SOURCE_STREAM_ENDED', {
          detail: `${this.connector.sourceKey} ended its stream`,
        });
      } catch (err) {
        this.logRef.abort();
        const e =
          err instanceof TidemarkError
            ? err
            : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
        if (this.stopping) return;
        if (e.code === 'CHANGELOG_CORRUPT' || this.pendingRefill) {
          await this.refill(this.pendingRefill ?? e);
          continue;
        }
        this.options.onError?.(e, { retrying: e.retriable });
        if (!e.retriable) {
          this.failure = e;
          this.logRef.wakeReaders();
          for (const w of this.readyWaiters.splice(0)) w();
          return;
        }
        const stopped = new Promise<void>((r) => (this.wakeStop = r));
        await Promise.race([new Promise((r) => setTimeout(r, backoffMs(attempt++))), stopped]);
      }
    }
  }

  /** One replication session's lifetime: append what it delivers until it ends or breaks. */
  private async pump(onAppended: () => void): Promise<void> {
    const log = this.logRef;
    const end = log.end;
    const session = await this.connector.replicate({
      // An empty log that subscribers already read (it was refilled) starts where the slowest
      // of them needs: the source's own start may be later than what it promised to keep (a new
      // PostgreSQL slot confirms P but delivers every commit after P − 1).
      after: end?.position ?? this.store.minPosition(),
      knownTables: log.latestTables(),
      acceptStartAfter: (earliest) => this.mayStartAfter(earliest),
    });
    this.session = session;
    this.starts++;
    this.lastStart = session.start;
    try {
      if (this.stopping) return;
      if (end === null) log.startAt(session.start);
      else if (session.start.compare(end.position) > 0) {
        this.options.onWarning?.(
          'the source can only deliver after a later position: the change log restarts there',
          {
            source: this.connector.sourceKey,
            logEnd: end.position.toString(),
            sourceStart: session.start.toString(),
          },
        );
        log.reset(session.start);
        this.refills++;
      }
      for (const w of this.readyWaiters.splice(0)) w();
      if (this.acknowledged) session.acknowledge(this.acknowledged);
      for await (const batch of session.events) {
        // The batch's transactions are written to the log together, at its end (commit's `hold`).
        let appended = false;
        try {
          appended = this.append(log, batch);
        } finally {
          log.publish();
        }
        // Only once written: a write that fails (a full disk) must not reset the back-off, or the
        // hub would reconnect to the source every half second while the disk stays full.
        if (appended) onAppended();
        if (this.pendingRefill) return;
      }
    } finally {
      this.session = null;
      await session.close().catch(() => {});
    }
  }

  /**
   * One batch of the source's events into the log; a transaction may go on in the next batch.
   * Returns true when it committed a transaction (held: written by the caller's `publish`).
   */
  private append(log: ChangeLog<P>, batch: readonly ChangeEvent<P>[]): boolean {
    let committed = false;
    let open = log.inTransaction;
    for (const ev of batch) {
      this.events++;
      switch (ev.tag) {
        case 'begin':
          if (open) log.abort();
          log.begin(ev.commitTimeMs, ev.txn);
          open = true;
          break;
        case 'commit': {
          open = false;
          const last = log.end!.position;
          if (ev.position.compare(last) <= 0)
            log.abort(); // delivered before: never twice
          else {
            log.commit(ev.position, ev.commitTimeMs, true);
            committed = true;
          }
          break;
        }
        default:
          if (open) log.append(ev);
      }
    }
    return committed;
  }

  /** True when no subscriber needs anything at or before `earliest` (the source discarded it). */
  private mayStartAfter(earliest: P): boolean {
    const min = this.store.minPosition();
    return min === null || min.compare(earliest) >= 0;
  }

  /** Moves the damaged log aside and opens a new, empty one (the next session refills it). */
  private async refill(cause: TidemarkError): Promise<void> {
    this.pendingRefill = null;
    const old = this.logRef;
    await old.close();
    moveAside(logDir(this.options.dir), cause, this.options.onWarning);
    this.logRef = openLog(this.options);
    this.refills++;
    old.wakeReaders();
  }

  /** Every ACK_INTERVAL_MS: records made durable, then the source acknowledged and the log cleaned. */
  private tick(): void {
    if (this.stopping) return;
    const now = Date.now();
    this.releaseStale(now);
    try {
      this.flushNow();
    } catch (err) {
      const e =
        err instanceof TidemarkError
          ? err
          : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
      this.options.onError?.(e, { retrying: true });
    }
  }

  private flushNow(): void {
    this.store.flush();
    const min = this.store.minPosition();
    if (min === null || (this.acknowledged && min.compare(this.acknowledged) <= 0)) return;
    const log = this.logRef;
    // Only what the log has written (never a held commit, should one outlive its batch): a
    // registration ahead of it (a snapshot's position) waits for it.
    const end = log.committed ?? log.coveredFrom;
    const upTo = end && min.compare(end.position) > 0 ? end.position : min;
    if (this.acknowledged && upTo.compare(this.acknowledged) <= 0) return;
    const next = log.seqAfter(upTo);
    if (next !== null) log.clean(next - 1n);
    this.acknowledged = upTo;
    this.session?.acknowledge(upTo);
  }

  private releaseStale(nowMs: number): void {
    const releaseAfter = this.options.releaseAfterMs ?? null;
    for (const s of this.store.all()) {
      const info = this.info(s, nowMs);
      if (!info.stale) continue;
      if (!this.warnedStale.has(s.id)) {
        this.warnedStale.add(s.id);
        this.options.onWarning?.('a changefeed that is not running holds the change log and the source', {
          changefeed: s.id,
          position: info.position,
          idleMs: nowMs - s.acknowledgedAtMs,
          releasedInMs:
            releaseAfter === null ? null : Math.max(0, releaseAfter - (nowMs - s.acknowledgedAtMs)),
        });
      }
      if (releaseAfter !== null && nowMs - s.acknowledgedAtMs >= releaseAfter) {
        this.store.remove(s.id);
        this.warnedStale.delete(s.id);
        this.options.onWarning?.(
          'released a stale changefeed: it no longer holds the source (resuming it needs a new snapshot)',
          {
            changefeed: s.id,
            position: info.position,
          },
        );
      }
    }
  }
}

function recorded(t: TableSchema): RecordedTable {
  return { id: t.relationId, schema: t.schema, name: t.name };
}

/** Where the hub in `dir` keeps its change log. */
export function logDir(dir: string): string {
  return join(dir, 'log');
}

function openLog<P extends Position>(options: ChangeHubOptions<P>): ChangeLog<P> {
  return ChangeLog.open({
    path: logDir(options.dir),
    codec: options.connector.positions,
    ...options.logOptions,
  });
}

function moveAside(
  dir: string,
  cause: TidemarkError,
  onWarning: ChangeHubOptions<Position>['onWarning'],
): void {
  if (!existsSync(dir)) return;
  const aside = `${dir}.damaged-${Date.now()}`;
  renameSync(dir, aside);
  onWarning?.('the change log is damaged: moved aside, refilling it from the source', {
    log: dir,
    movedTo: aside,
    error: cause.message,
  });
}
