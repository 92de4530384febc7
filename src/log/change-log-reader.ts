/**
 * One reader of a ChangeLog: iterates committed transactions after a source position, in commit order,
 * at the consumer's pace (pull: nothing is read before the consumer asks). At most
 * `memoryQuotaBytes` of log records are held at a time (at least one record, or one LMDB pack of
 * at most 16 KiB); the rest waits on disk. When it reaches the end of the log it waits for the
 * next commit.
 *
 *   packs d|S|0 …, spill/S.seg, d|T|0 … ─ LogCursor.fill(quota buffer) ─► records
 *        ─ decode, filter ─► ChangeMessage[] (batches of ≤ 1,024 per fill) ─► consumer
 */
import type { ChangeMessage } from '../core/change.ts';
import { PackedCells, PackedDelete, PackedInsert, PackedUpdate } from '../core/packed-cells.ts';
import type { Position } from '../core/position.ts';
import type { SchemaChange } from '../core/schema-change.ts';
import type { TableSchema } from '../core/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangeLog } from './change-log.ts';
import { LogCursor } from './log-cursor.ts';
import { decodeRecordAt, recordSchemaId, RecordFormatError, TAG, type LogRecord } from './record-codec.ts';

export const DEFAULT_READER_QUOTA_BYTES = 8 * 1024 * 1024;
/**
 * Messages per batch. A whole 4 MiB fill decodes to ~40,000 messages (~11 MB of objects): built
 * in one go, they outlive young-generation collections and pile up in the old generation until a
 * full GC. Batches of 1,024 die young: measured on a 300 MB transaction, VmRSS grew ~70 MB
 * instead of ~150 MB and reading ran twice as fast, while 1,024 still amortizes each await.
 */
export const DEFAULT_MAX_BATCH_MESSAGES = 1024;

export interface ChangeLogReaderOptions {
  /**
   * Bytes of log records this reader may hold in memory at once (its buffer). Default 8 MiB.
   * The messages decoded from one buffer fill are one batch: as JS objects they take a few
   * times the bytes they came from.
   */
  readonly memoryQuotaBytes?: number;
  /** Most messages in one batch (default 1,024): a fill's messages come in batches of this many. */
  readonly maxBatchMessages?: number;
  /**
   * Row changes carry their cells packed (`packedRow`, `packedOld`; `row` and `old` unpack on
   * first use) over a copy of their batch's bytes, instead of a string per cell. Default false.
   */
  readonly packed?: boolean;
  /**
   * The tables whose row changes this reader sees (default all). Begin, commit and schema
   * records (barriers) always pass: the pipeline decides what a schema change means to it.
   */
  readonly includes?: (table: TableSchema) => boolean;
  /**
   * Called with every schema record as it is decoded, before the records after it are filtered:
   * a table it creates may join `includes` here, so that its rows in the same batch are kept.
   */
  readonly onSchema?: (change: SchemaChange) => void;
  /**
   * Asked before each wait for a commit, after each wake-up (`ChangeLog.wakeReaders`) and after
   * each batch, and once the log is closed: `'end'` ends the stream; an error (only acted on at
   * a wait or at the close, so committed records are still served) is thrown from it; null reads
   * on (at the close: ends).
   */
  readonly interrupt?: () => 'end' | Error | null;
}

export interface ChangeLogReaderStats {
  /** Bytes of records held right now (within the quota buffer, or one record larger than it). */
  readonly bufferedBytes: number;
  /** The most ever held at once. */
  readonly maxBufferedBytes: number;
  /** Records read from the log. */
  readonly records: number;
}

export class ChangeLogReader<P extends Position = Position> {
  private buffered = 0;
  private maxBuffered = 0;
  private records = 0;
  private readonly quotaBytes: number;
  private readonly maxBatchMessages: number;
  private readonly included = new Map<number, boolean>();
  /** Where batches are copied: allocated once, so the reader's memory is its quota. */
  private readonly buffer: Buffer;

  constructor(
    private readonly log: ChangeLog<P>,
    private readonly options: ChangeLogReaderOptions = {},
  ) {
    this.quotaBytes = Math.max(64, options.memoryQuotaBytes ?? DEFAULT_READER_QUOTA_BYTES);
    this.buffer = Buffer.allocUnsafe(this.quotaBytes);
    this.maxBatchMessages = Math.max(1, options.maxBatchMessages ?? DEFAULT_MAX_BATCH_MESSAGES);
  }

  /**
   * The answer of `includes` changed (tables were added or removed): asks it again for every
   * table, from the next fill of the buffer on.
   */
  refilter(): void {
    this.included.clear();
  }

  stats(): ChangeLogReaderStats {
    return { bufferedBytes: this.buffered, maxBufferedBytes: this.maxBuffered, records: this.records };
  }

  /**
   * Yields every committed transaction after `after` (begin · changes · commit), as batches:
   * the messages decoded from one fill of the reader's buffer, cut every `maxBatchMessages`
   * (never empty; a transaction may span batches, a batch may hold many transactions; the
   * buffer is refilled only once its last batch was taken). Then waits for more; ends when the log is
   * closed. `after` may be ahead of the log's end (a snapshot's position): what is appended at
   * or before it is skipped. Throws CHANGELOG_BEHIND when the log no longer covers `after`, or
   * is cleaned or reset past what this reader has read (never a silent gap), CHANGELOG_CORRUPT
   * when a record or a spill segment is damaged or missing. Transactions with no change for this
   * reader still yield begin · commit, so the reader's resolved position advances. The messages
   * never refer to the buffer: a consumer may keep them.
   */
  async *read(after: P): AsyncGenerator<ChangeMessage<P>[]> {
    const first = this.log.seqAfter(after);
    if (first === null) throw this.behind(after);
    let at = first - 1n;
    /** The position read through: `after`, then each commit's. */
    let through: P = after;
    /**
     * `after` is ahead of the log's end (a snapshot's position while the log catches up): the
     * transactions appended next may still be at or before it, and are skipped until one is not.
     */
    const end = this.log.end;
    let ahead = end !== null && after.compare(end.position) > 0;
    let cursor = new LogCursor(this.log, at);
    let commitTimeMs = 0;
    try {
      while (!this.log.isClosed) {
        const committed = this.log.committed?.seq ?? null;
        if (committed === null || committed <= at) {
          const stop = this.options.interrupt?.() ?? null;
          if (stop === 'end') return;
          if (stop) throw stop;
          await this.log.waitForCommitAfter(at);
          continue;
        }
        if (ahead) {
          const next = this.log.seqAfter(after);
          if (next === null) throw this.behind(after);
          at = (next > committed ? committed + 1n : next) - 1n;
          cursor.close();
          cursor = new LogCursor(this.log, at);
          if (next > committed) continue;
          ahead = false;
        }
        // Cleaned or reset past what this reader has read: what it still needs is gone.
        const covered = this.log.coveredFrom;
        if (covered && covered.position.compare(through) > 0) throw this.behind(through);
        const batch = cursor.fill(this.buffer, committed);
        const n = batch.starts.length;
        if (n === 0) {
          at = committed;
          continue;
        }
        this.buffered = batch.usedBytes;
        this.maxBuffered = Math.max(this.maxBuffered, this.buffered);
        const out: ChangeMessage<P>[] = [];
        let lastIsCommit = false;
        const bytes = batch.bytes;
        // Packed cells point into a copy of their records (the buffer is refilled), one copy per
        // `maxBatchMessages` records: a record's bytes are `copy[start - base, end - base)`.
        let copy = bytes;
        let base = 0;
        let copied = this.options.packed ? -1 : Infinity;
        for (let i = 0; i < n; i++) {
          const start = batch.starts[i]!;
          const end = batch.ends[i]!;
          const seq = batch.seqs[i]!;
          this.records++;
          if (end > copied) {
            copied = batch.ends[Math.min(n, i + this.maxBatchMessages) - 1]!;
            copy = Buffer.allocUnsafe(copied - start);
            bytes.copy(copy, 0, start, copied);
            base = start;
          }
          const rec = this.decode(seq, copy, start - base, end - base);
          lastIsCommit = bytes[start] === TAG.commit;
          if (rec === null) continue;
          if (rec.tag === 'begin') commitTimeMs = rec.commitTimeMs;
          const msg = this.toMessage(rec, seq, commitTimeMs);
          if (msg?.tag === 'commit') through = msg.position;
          if (msg) out.push(msg);
          if (out.length >= this.maxBatchMessages) {
            yield out.splice(0);
            if (this.options.interrupt?.() === 'end') return;
          }
        }
        this.buffered = 0;
        // Only a transaction's commit record completes it; mid-transaction `at` stays put.
        if (lastIsCommit) at = batch.seqs[n - 1]!;
        if (out.length > 0) {
          yield out;
          if (this.options.interrupt?.() === 'end') return;
        }
      }
      // The log was closed under this reader: its owner says whether that is an end or an error.
      const stop = this.options.interrupt?.() ?? null;
      if (stop !== null && stop !== 'end') throw stop;
    } finally {
      cursor.close();
    }
  }

  private behind(after: P): TidemarkError {
    const covered = this.log.coveredFrom;
    return new TidemarkError('CHANGELOG_BEHIND', {
      detail: `reader asks for changes after ${after}, the log at ${this.log.path} ${covered ? `starts after ${covered.position}` : 'was never started'}`,
    });
  }

  /** The record, or null when it concerns only tables this reader does not include. */
  private decode(seq: bigint, bytes: Buffer, start: number, end: number): LogRecord | null {
    try {
      if (this.options.includes && bytes[start] !== TAG.truncate) {
        const id = recordSchemaId(bytes, start, end);
        if (id !== null && !this.includes(id)) return null;
      }
      return decodeRecordAt(bytes, start, end, this.options.packed === true);
    } catch (err) {
      if (err instanceof RecordFormatError) {
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `a record of transaction ${seq} in ${this.log.path}: ${err.message}`,
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

  private toMessage(rec: LogRecord, seq: bigint, commitTimeMs: number): ChangeMessage<P> | null {
    switch (rec.tag) {
      case 'begin':
        return rec;
      case 'commit':
        return {
          tag: 'commit',
          position: this.log.decodePosition(rec.position, `transaction ${seq}`),
          commitTimeMs: rec.commitTimeMs || commitTimeMs,
          seq,
        };
      case 'schema': {
        let change: SchemaChange;
        try {
          change = JSON.parse(rec.json) as SchemaChange;
        } catch (cause) {
          throw new TidemarkError('CHANGELOG_CORRUPT', {
            detail: `a schema record of transaction ${seq} in ${this.log.path} is not JSON`,
            cause,
          });
        }
        this.options.onSchema?.(change);
        return { tag: 'schema', change };
      }
      case 'insert':
        if (rec.row instanceof PackedCells) return new PackedInsert(this.log.schema(rec.schemaId), rec.row);
        return { tag: 'insert', table: this.log.schema(rec.schemaId), row: rec.row as (string | null)[] };
      case 'update':
        if (rec.row instanceof PackedCells) {
          const old = rec.old as PackedCells | null;
          return new PackedUpdate(this.log.schema(rec.schemaId), rec.row, old, rec.oldIsFull);
        }
        return {
          tag: 'update',
          table: this.log.schema(rec.schemaId),
          row: rec.row,
          old: rec.old as (string | null)[] | null,
          oldIsFull: rec.oldIsFull,
        };
      case 'delete':
        if (rec.old instanceof PackedCells) return new PackedDelete(this.log.schema(rec.schemaId), rec.old);
        return { tag: 'delete', table: this.log.schema(rec.schemaId), old: rec.old as (string | null)[] };
      case 'truncate': {
        const tables = rec.schemaIds.filter((id) => this.includes(id)).map((id) => this.log.schema(id));
        return tables.length > 0 ? { tag: 'truncate', tables } : null;
      }
      case 'segment':
        // The cursor opens segments at their reference; one anywhere else is damage.
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `transaction ${seq} in ${this.log.path}: a segment reference inside a pack`,
        });
    }
  }
}
