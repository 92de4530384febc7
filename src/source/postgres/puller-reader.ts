/**
 * What one changefeed holds of a shared Puller: the same shape the runtime consumes from a
 * PostgresSource (`stream`, `acknowledge`, `walEnd`), served from the local change log and
 * filtered to the changefeed's tables.
 */
import { qualifiedName } from '../../core/table-schema.ts';
import { ChangeLogReader, type ChangeLogReaderStats } from '../../log/change-log-reader.ts';
import type { ChangeLog } from '../../log/change-log.ts';
import type { ChangeMessage } from '../../core/change.ts';
import type { Lsn } from './lsn.ts';

/** The puller's side of a reader: how it reaches the log, acks and the failure state. */
export interface PullerReaderHost {
  readonly log: ChangeLog;
  readonly walEnd: Lsn | null;
  /** The puller's fatal error, if it stopped for good; null while it runs or retries. */
  readonly failure: Error | null;
  onAcknowledge(id: string, position: Lsn): void;
}

export class PullerReader {
  private closed = false;
  private current: ChangeLogReader | null = null;
  private readonly tables: Set<string>;

  constructor(
    readonly id: string,
    tables: readonly { schema: string; name: string }[],
    private readonly host: PullerReaderHost,
    private readonly memoryQuotaBytes: number,
  ) {
    this.tables = new Set(tables.map(qualifiedName));
  }

  /** The source's WAL end as last seen by the puller (lag in bytes = walEnd − checkpoint). */
  get walEnd(): Lsn | null {
    return this.host.walEnd;
  }

  /**
   * Committed transactions after `after`, in commit order, with this changefeed's tables only
   * (relation messages included; transactions touching none of them come as begin · commit),
   * in batches: the messages of one fill of the reader's memory quota (ChangeLogReader.read).
   * Served from the local log: the source is not read again. Ends when the reader is closed;
   * throws the puller's error once it has failed for good and the log holds nothing newer.
   * May be called again (a new attempt) after the previous iteration ended.
   */
  stream(after: Lsn): AsyncGenerator<ChangeMessage[]> {
    const reader = new ChangeLogReader(this.host.log, {
      memoryQuotaBytes: this.memoryQuotaBytes,
      includes: (t) => this.tables.has(qualifiedName(t)),
      interrupt: () => (this.closed ? 'end' : this.host.failure),
    });
    this.current = reader;
    return reader.read(after);
  }

  /**
   * The changefeed's sink durably holds everything up to `position`: the log may drop it once
   * every reader agrees, and the slot is flushed to the slowest reader's position.
   */
  acknowledge(position: Lsn): void {
    if (this.closed) return;
    this.host.onAcknowledge(this.id, position);
  }

  /** Bytes the current stream holds in memory (bounded by the reader's memory quota). */
  stats(): ChangeLogReaderStats | null {
    return this.current?.stats() ?? null;
  }

  /** Ends the stream (it returns at its next wait). The reader's position stays registered. */
  close(): void {
    this.closed = true;
    this.host.log.wakeReaders();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
