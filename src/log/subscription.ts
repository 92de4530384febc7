/**
 * What one changefeed holds of a change hub: its tables' changes read from the local log after a
 * position, at its own pace, and the acknowledgements that let the hub clean the log and the
 * source discard what every subscriber has.
 */
import type { ChangeMessage } from '../core/change.ts';
import type { Position } from '../core/position.ts';
import type { TableSchema } from '../core/table-schema.ts';
import { selects } from '../core/selection.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangeLog } from './change-log.ts';
import { ChangeLogReader, type ChangeLogReaderStats } from './change-log-reader.ts';

/** The hub's side of a subscription. */
export interface SubscriptionHost<P extends Position> {
  /** The current log (a refill replaces it). */
  readonly log: ChangeLog<P>;
  readonly sourceEnd: P | null;
  /** The hub's fatal error, once it stopped for good; null while it runs or retries. */
  readonly failure: Error | null;
  /**
   * Resolves once the current log has been started (a new or refilled log has no coverage until
   * the source's first session says where it begins), or the hub stopped or failed.
   */
  whenStarted(): Promise<void>;
  onAcknowledge(id: string, position: P): void;
  onClose(sub: Subscription<P>): void;
  onCorrupt(err: TidemarkError): void;
}

export interface SubscriptionOptions<P extends Position> {
  readonly id: string;
  readonly tables: readonly TableSchema[];
  readonly host: SubscriptionHost<P>;
  readonly memoryQuotaBytes: number;
  /** The changefeed's selection: a table created later that it matches is read from its creation. */
  readonly selection?: readonly string[];
}

export class Subscription<P extends Position = Position> {
  readonly id: string;
  private closed = false;
  private current: ChangeLogReader<P> | null = null;
  private tableIds: Set<number>;
  private readonly host: SubscriptionHost<P>;

  constructor(private readonly options: SubscriptionOptions<P>) {
    this.id = options.id;
    this.host = options.host;
    this.tableIds = new Set(options.tables.map((t) => t.relationId));
  }

  /** The source's log end as last seen (lag in bytes), or null. */
  get sourceEnd(): P | null {
    return this.host.sourceEnd;
  }

  /**
   * Committed transactions after `after`, in commit order, in batches (ChangeLogReader.read):
   * row changes of this subscription's tables only, every schema record (barrier), and every
   * transaction's begin and commit (so the resolved position advances even when none of its
   * changes concern these tables). Served from the local log: the source is not read again. Ends
   * when the subscription is closed; throws the hub's error once it failed for good, and
   * CHANGELOG_CORRUPT (retriable: the hub refills the log) or CHANGELOG_BEHIND. May be called
   * again (a new attempt) after the previous iteration ended.
   */
  async *read(after: P): AsyncGenerator<ChangeMessage<P>[]> {
    await this.host.whenStarted();
    if (this.closed) return;
    if (this.host.failure) throw this.host.failure;
    const log = this.host.log;
    const reader = new ChangeLogReader<P>(log, {
      memoryQuotaBytes: this.options.memoryQuotaBytes,
      // The changefeed's epoch builder and the PostgreSQL sink take rows as bytes.
      packed: true,
      includes: (t) => this.tableIds.has(t.relationId),
      onSchema: (change) => {
        const selection = this.options.selection;
        if (change.kind !== 'table-created' || change.unreplicable !== null || !selection) return;
        if (selects(selection, change.table)) this.addTables([change.table]);
      },
      interrupt: () => {
        if (this.closed) return 'end';
        if (this.host.failure) return this.host.failure;
        // Replaced, or closed by a refill (the hub closes subscriptions before its log on stop).
        if (this.host.log !== log || log.isClosed) {
          return new TidemarkError('CHANGELOG_CORRUPT', {
            detail: `the change log at ${log.path} was refilled from the source`,
          });
        }
        return null;
      },
    });
    this.current = reader;
    try {
      yield* reader.read(after);
    } catch (err) {
      if (
        err instanceof TidemarkError &&
        err.code === 'CHANGELOG_CORRUPT' &&
        this.host.log === log &&
        !log.isClosed
      ) {
        this.host.onCorrupt(err);
      }
      throw err;
    }
  }

  /** Adds tables to what this subscription reads (their changes from the next batch on). */
  addTables(tables: readonly TableSchema[]): void {
    this.tableIds = new Set([...this.tableIds, ...tables.map((t) => t.relationId)]);
    this.current?.refilter();
  }

  /** Stops reading a table (it was dropped, or left the selection). */
  removeTable(tableId: number): void {
    const next = new Set(this.tableIds);
    next.delete(tableId);
    this.tableIds = next;
    this.current?.refilter();
  }

  /**
   * The changefeed's sink durably holds everything up to `position`: once every subscriber
   * agrees, the log may drop it and the source discard it.
   */
  acknowledge(position: P): void {
    if (this.closed) return;
    this.host.onAcknowledge(this.id, position);
  }

  /** Bytes the current stream holds in memory (bounded by the memory quota). */
  stats(): ChangeLogReaderStats | null {
    return this.current?.stats() ?? null;
  }

  /** Ends the stream (it returns at its next wait). The subscription's record stays. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.log.wakeReaders();
    this.host.onClose(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
