/**
 * One reader of a ChangeLog: iterates committed transactions after a position, in commit order,
 * at the consumer's pace (pull: nothing is read before the consumer asks). At most
 * `memoryQuotaBytes` of log records are held at a time (at least one record); the rest waits on
 * disk. When it reaches the end of the log it waits for the next commit.
 *
 *   log keys  … d|P|0 … d|P|n  d|Q|0 … ─ readRange(≤ quota) ─► batch ─ decode one by one ─► consumer
 */
import type { TableSchema } from '../decode/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { Lsn } from '../source/postgres/lsn.ts';
import type { ChangeMessage } from '../source/source.ts';
import type { ChangeLog } from './change-log.ts';
import { dataKeyAfter, positionOfKey } from './log-keys.ts';
import {
  decodeRecord,
  recordSchemaId,
  RecordFormatError,
  recordTag,
  type LogRecord,
} from './record-codec.ts';

export const DEFAULT_READER_QUOTA_BYTES = 8 * 1024 * 1024;

export interface ChangeLogReaderOptions {
  /** Bytes of log records this reader may hold in memory at once. Default 8 MiB. */
  readonly memoryQuotaBytes?: number;
  /** The tables whose changes this reader sees (default all). Begin and commit always pass. */
  readonly includes?: (table: TableSchema) => boolean;
  /**
   * Asked before each wait for a commit, after each wake-up (`ChangeLog.wakeReaders`) and after
   * each message: `'end'` ends the stream; an error (only acted on at a wait, so committed
   * records are still served) is thrown from it; null reads on.
   */
  readonly interrupt?: () => 'end' | Error | null;
}

export interface ChangeLogReaderStats {
  /** Bytes of the batch held right now (the quota buffer, or one record larger than it). */
  readonly bufferedBytes: number;
  /** The most ever held at once. */
  readonly maxBufferedBytes: number;
  /** Records read from the log. */
  readonly records: number;
}

export class ChangeLogReader {
  private buffered = 0;
  private maxBuffered = 0;
  private records = 0;
  private readonly quotaBytes: number;
  private readonly included = new Map<number, boolean>();
  /** Where batches are copied: allocated once, so the reader's memory is its quota. */
  private readonly buffer: Buffer;

  constructor(
    private readonly log: ChangeLog,
    private readonly options: ChangeLogReaderOptions = {},
  ) {
    this.quotaBytes = Math.max(64, options.memoryQuotaBytes ?? DEFAULT_READER_QUOTA_BYTES);
    this.buffer = Buffer.allocUnsafe(this.quotaBytes);
  }

  stats(): ChangeLogReaderStats {
    return { bufferedBytes: this.buffered, maxBufferedBytes: this.maxBuffered, records: this.records };
  }

  /**
   * Yields every committed transaction after `after` (begin · changes · commit), then waits for
   * more; ends when the log is closed. Throws CHANGELOG_BEHIND when the log no longer covers
   * `after`. Transactions with no change for this reader still yield begin · commit, so the
   * reader's resolved position advances.
   */
  async *read(after: Lsn): AsyncGenerator<ChangeMessage> {
    const covered = this.log.coveredFrom;
    if (covered && after.compare(covered) < 0) {
      throw new TidemarkError('CHANGELOG_BEHIND', {
        detail: `reader asks for changes after ${after}, the log at ${this.log.path} starts after ${covered}`,
      });
    }
    let from = dataKeyAfter(after);
    let exclusive = false;
    let at: Lsn = after;
    let commitTimeMs = 0;
    while (!this.log.isClosed) {
      const committed = this.log.committed;
      if (!committed || committed.compare(at) <= 0) {
        const stop = this.options.interrupt?.() ?? null;
        if (stop === 'end') return;
        if (stop) throw stop;
        await this.log.waitForCommitAfter(at);
        continue;
      }
      const batch = this.log.readBatch(from, exclusive, dataKeyAfter(committed), this.buffer);
      if (!batch.lastKey) {
        at = committed;
        continue;
      }
      // The buffer is held whole while the batch is decoded; it is this reader's quota.
      this.buffered = batch.usedBytes;
      this.maxBuffered = Math.max(this.maxBuffered, this.buffered);
      let begin = 0;
      let lastTag: LogRecord['tag'] = 'begin';
      for (let i = 0; i < batch.ends.length; i++) {
        const end = batch.ends[i]!;
        const value = batch.bytes.subarray(begin, end);
        begin = end;
        this.records++;
        const position = batch.positions[i]!;
        const rec = this.decode(position, value);
        lastTag = recordTag(value);
        if (rec === null) continue;
        if (rec.tag === 'begin') commitTimeMs = rec.commitTimeMs;
        const msg = this.toMessage(rec, position, commitTimeMs);
        if (msg) yield msg;
        if (this.options.interrupt?.() === 'end') return;
      }
      this.buffered = 0;
      from = batch.lastKey;
      exclusive = true;
      // Only a transaction's commit record completes it; mid-transaction `at` stays put.
      if (lastTag === 'commit') at = positionOfKey(batch.lastKey);
    }
  }

  /** The record, or null when it concerns only tables this reader does not include. */
  private decode(position: bigint, value: Buffer): LogRecord | null {
    try {
      const tag = recordTag(value);
      if (this.options.includes && tag !== 'truncate') {
        const id = recordSchemaId(value);
        if (id !== null && !this.includes(id)) return null;
      }
      return decodeRecord(value);
    } catch (err) {
      if (err instanceof RecordFormatError) {
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `a record of transaction ${Lsn.fromBigInt(position)} in ${this.log.path}: ${err.message}`,
          cause: err,
        });
      }
      throw err;
    }
  }

  private includes(schemaId: number): boolean {
    let yes = this.included.get(schemaId);
    if (yes === undefined) {
      yes = this.options.includes ? this.options.includes(this.log.schema(schemaId)) : true;
      this.included.set(schemaId, yes);
    }
    return yes;
  }

  private toMessage(rec: LogRecord, position: bigint, commitTimeMs: number): ChangeMessage | null {
    switch (rec.tag) {
      case 'begin':
        return { tag: 'begin', commitTimeMs: rec.commitTimeMs };
      case 'commit':
        return {
          tag: 'commit',
          position: Lsn.fromBigInt(position),
          commitTimeMs: rec.commitTimeMs || commitTimeMs,
        };
      case 'relation':
        return { tag: 'relation', table: this.log.schema(rec.schemaId) };
      case 'insert':
        return { tag: 'insert', table: this.log.schema(rec.schemaId), row: rec.row as (string | null)[] };
      case 'update':
        return {
          tag: 'update',
          table: this.log.schema(rec.schemaId),
          row: rec.row,
          old: rec.old as (string | null)[] | null,
          oldIsFull: rec.oldIsFull,
        };
      case 'delete':
        return { tag: 'delete', table: this.log.schema(rec.schemaId), old: rec.old as (string | null)[] };
      case 'truncate': {
        const tables = rec.schemaIds.filter((id) => this.includes(id)).map((id) => this.log.schema(id));
        return tables.length > 0 ? { tag: 'truncate', tables } : null;
      }
    }
  }
}
