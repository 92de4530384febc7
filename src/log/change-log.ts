/**
 * The local change log of one source database: committed transactions in commit order, on LMDB.
 * One writer (the puller) appends; any number of readers (changefeeds) read from their own
 * positions at their own pace (change-log-reader.ts); `clean` drops what every reader has
 * acknowledged.
 *
 *   puller ─ begin(P) · append(change)* · commit() ─► [ d|P|0 d|P|1 … d|P|n ] ─► m|committed = P
 *                        (flushed every writeBatchBytes,   (one LMDB write txn with the
 *                         so a huge transaction never       last records: the transaction
 *                         sits in memory)                   becomes readable here)
 *
 * Key layout (bytes; integers big-endian, so byte order = commit order):
 *
 *   data     | 'd' (1) | commit position u64 (8) | seq u32 (4) |  → record (record-codec.ts)
 *   schema   | 's' (1) | schema id u32 (4) |                     → TableSchema as JSON
 *   meta     | 'm' (1) | name utf8 |                             → 'format': u32 version
 *                                                                   'committed': u64 position
 *                                                                   'coveredFrom': u64 position
 *   reader   | 'r' (1) | reader id utf8 |                        → acknowledged position u64
 *
 * Seq 0 of a transaction is its begin record, the last its commit record. The log covers the
 * transactions committed in (coveredFrom, committed]; a reader asking for anything older gets
 * CHANGELOG_BEHIND. Records after `committed` are the incomplete tail of a crash: dropped at open.
 *
 * Durability: by default writes are not fsynced (`fsync: false`): a process crash loses nothing
 * (the pages are in the OS), a machine crash may lose the tail, which the puller re-reads from
 * the slot since the slot is only ever flushed to the readers' acknowledged positions.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type { TableSchema } from '../decode/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { Lsn } from '../source/postgres/lsn.ts';
import type { ChangeMessage } from '../source/source.ts';
import {
  DATA_END,
  DATA_START,
  dataKey,
  dataKeyAfter,
  decodeLsn,
  encodeLsn,
  metaKey,
  READER_END,
  READER_START,
  readerKey,
  SCHEMA_END,
  SCHEMA_START,
  schemaKey,
} from './log-keys.ts';
import { RecordWriter, type LogRecord } from './record-codec.ts';
import { assertLmdbFile, wrapLmdbError } from './lmdb-errors.ts';

const FORMAT_VERSION = 1;
const DEFAULT_WRITE_BATCH_BYTES = 4 * 1024 * 1024;

export interface ChangeLogOptions {
  /** Directory of the log (LMDB `data.mdb` and `lock.mdb`); one per source database. */
  readonly path: string;
  /** `create` (default) makes a new empty log when the directory has none; `error` throws CHANGELOG_MISSING. */
  readonly ifMissing?: 'create' | 'error';
  /** Records buffered by the writer before they are written out, in bytes. */
  readonly writeBatchBytes?: number;
  /** Fails appends with CHANGELOG_DISK_FULL once the data file reaches this size. */
  readonly maxDiskBytes?: number;
  /** fsync every commit (survives a machine crash, slower). Default false. */
  readonly fsync?: boolean;
}

/** Records read for a reader: record i is `bytes[ends[i-1] ?? 0, ends[i])`, committed at `positions[i]`. */
export interface RecordBatch {
  readonly bytes: Buffer;
  readonly ends: readonly number[];
  readonly positions: readonly bigint[];
  readonly lastKey: Buffer | null;
  readonly usedBytes: number;
}

type ChangeOnly = Exclude<ChangeMessage, { tag: 'begin' } | { tag: 'commit' }>;

interface OpenTxn {
  readonly position: Lsn;
  seq: number;
  /** True once some of its records were written out (an abort must delete them). */
  spilled: boolean;
}

/**
 * Maintains the invariant that every data key at or before `committed` belongs to a complete
 * transaction (begin … commit) and no reader ever sees a key after `committed`.
 */
export class ChangeLog {
  private readonly enc = new RecordWriter();
  private readonly schemaIds = new Map<TableSchema, number>();
  private readonly schemaIdsByJson = new Map<string, number>();
  private readonly schemasById = new Map<number, TableSchema>();
  private nextSchemaId = 1;
  private pending: [Buffer, Buffer][] = [];
  private pendingBytes = 0;
  private txn: OpenTxn | null = null;
  private committedPos: Lsn | null;
  private coveredFromPos: Lsn | null;
  private waiters: (() => void)[] = [];
  private closed = false;
  /** Records written since open (for metrics and tests). */
  recordsAppended = 0;

  private constructor(
    readonly path: string,
    private readonly db: RootDatabase<Buffer, Buffer>,
    private readonly options: ChangeLogOptions,
  ) {
    this.committedPos = this.readMeta('committed');
    this.coveredFromPos = this.readMeta('coveredFrom');
    for (const { key, value } of db.getRange({ start: SCHEMA_START, end: SCHEMA_END })) {
      const id = key.readUInt32BE(1);
      let schema: TableSchema;
      try {
        schema = JSON.parse(value.toString('utf8')) as TableSchema;
      } catch (cause) {
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `schema ${id} in ${path} is not JSON`,
          cause,
        });
      }
      this.schemasById.set(id, schema);
      this.schemaIdsByJson.set(value.toString('utf8'), id);
      this.nextSchemaId = Math.max(this.nextSchemaId, id + 1);
    }
  }

  /** Opens (or creates) the log at `options.path` and drops the incomplete tail of a crash. */
  static open(options: ChangeLogOptions): ChangeLog {
    const file = join(options.path, 'data.mdb');
    const existed = existsSync(file);
    if (!existed && options.ifMissing === 'error') {
      throw new TidemarkError('CHANGELOG_MISSING', { detail: `no change log at ${options.path}` });
    }
    if (existed) assertLmdbFile(file);
    let db: RootDatabase<Buffer, Buffer>;
    try {
      db = open<Buffer, Buffer>({
        path: options.path,
        keyEncoding: 'binary',
        encoding: 'binary',
        noSync: !options.fsync,
        cache: false,
        remapChunks: true,
      });
    } catch (cause) {
      throw wrapLmdbError(cause, options.path, 'opening');
    }
    try {
      const format = db.get(metaKey('format'));
      if (format === undefined) {
        if (existed && db.getKeysCount({ limit: 1 }) > 0) {
          throw new TidemarkError('CHANGELOG_CORRUPT', {
            detail: `${options.path} has data but no format record`,
          });
        }
        const v = Buffer.alloc(4);
        v.writeUInt32BE(FORMAT_VERSION);
        db.putSync(metaKey('format'), v);
      } else if (format.length !== 4 || format.readUInt32BE(0) !== FORMAT_VERSION) {
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `${options.path} is in log format ${format.length === 4 ? format.readUInt32BE(0) : '?'}, this version reads ${FORMAT_VERSION}`,
        });
      }
      const log = new ChangeLog(options.path, db, options);
      log.dropTail();
      return log;
    } catch (err) {
      void db.close();
      throw err instanceof TidemarkError ? err : wrapLmdbError(err, options.path, 'opening');
    }
  }

  /** The position of the last complete transaction, or null when none was ever appended. */
  get committed(): Lsn | null {
    return this.committedPos;
  }

  /** Transactions after this position are all in the log (null: the log was never started). */
  get coveredFrom(): Lsn | null {
    return this.coveredFromPos;
  }

  /**
   * Declares where the log's coverage starts when it is empty: the position the writer starts
   * reading the source after. Call once, before the first `begin`, on a new log.
   */
  startAt(position: Lsn): void {
    if (this.coveredFromPos !== null && this.committedPos !== null) return;
    this.coveredFromPos = position;
    this.write(() => this.db.putSync(metaKey('coveredFrom'), encodeLsn(position)), 'starting');
  }

  /** Where the writer resumes: after the last complete transaction (or the coverage start). */
  resumePosition(): Lsn | null {
    return this.committedPos ?? this.coveredFromPos;
  }

  /**
   * Starts the transaction committing at `position` (pgoutput's Begin carries it). Only when no
   * transaction is open and `position` is after `committed`. Nothing is visible until `commit`.
   */
  begin(position: Lsn, commitTimeMs: number): void {
    this.assertOpen();
    if (this.txn)
      throw new TidemarkError('INTERNAL', {
        detail: `begin(${position}) inside transaction ${this.txn.position}`,
      });
    if (this.committedPos && position.compare(this.committedPos) <= 0) {
      throw new TidemarkError('INTERNAL', {
        detail: `begin(${position}) at or before the log's end ${this.committedPos}`,
      });
    }
    if (this.coveredFromPos === null) this.startAt(Lsn.fromBigInt(position.value - 1n));
    this.txn = { position, seq: 0, spilled: false };
    this.push({ tag: 'begin', commitTimeMs });
  }

  /** Appends one change of the open transaction; may write buffered records out (not visible yet). */
  append(msg: ChangeOnly): void {
    if (!this.txn)
      throw new TidemarkError('INTERNAL', { detail: `append(${msg.tag}) outside a transaction` });
    switch (msg.tag) {
      case 'relation':
        this.push({ tag: 'relation', schemaId: this.schemaId(msg.table) });
        break;
      case 'insert':
        this.push({ tag: 'insert', schemaId: this.schemaId(msg.table), row: msg.row });
        break;
      case 'update':
        this.push({
          tag: 'update',
          schemaId: this.schemaId(msg.table),
          row: msg.row,
          old: msg.old,
          oldIsFull: msg.oldIsFull,
        });
        break;
      case 'delete':
        this.push({ tag: 'delete', schemaId: this.schemaId(msg.table), old: msg.old });
        break;
      case 'truncate':
        this.push({ tag: 'truncate', schemaIds: msg.tables.map((t) => this.schemaId(t)) });
        break;
    }
  }

  /** Ends the open transaction: when this returns it is durable (per `fsync`) and readable. */
  commit(commitTimeMs: number): void {
    const txn = this.txn;
    if (!txn) throw new TidemarkError('INTERNAL', { detail: 'commit outside a transaction' });
    this.push({ tag: 'commit', commitTimeMs });
    this.flush(true);
    this.txn = null;
    this.committedPos = txn.position;
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  /** Drops the open transaction (the source connection broke inside it); no-op when none. */
  abort(): void {
    const txn = this.txn;
    this.txn = null;
    this.pending = [];
    this.pendingBytes = 0;
    if (!txn?.spilled) return;
    this.removeRange(dataKey(txn.position.value, 0), dataKey(txn.position.value + 1n, 0));
  }

  /** True while a transaction is open. */
  get inTransaction(): boolean {
    return this.txn !== null;
  }

  /** Resolves once a transaction after `position` is committed, or the log is closed. */
  waitForCommitAfter(position: Lsn): Promise<void> {
    if (this.closed || (this.committedPos && this.committedPos.compare(position) > 0))
      return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Wakes every reader waiting for a commit, so each re-checks its `interrupt` (change-log-reader.ts). */
  wakeReaders(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The table of a schema id; records only ever name ids the log wrote before them. */
  schema(id: number): TableSchema {
    const s = this.schemasById.get(id);
    if (s) return s;
    const raw = this.db.get(schemaKey(id));
    if (!raw)
      throw new TidemarkError('CHANGELOG_CORRUPT', { detail: `schema ${id} missing from ${this.path}` });
    const parsed = JSON.parse(raw.toString('utf8')) as TableSchema;
    this.schemasById.set(id, parsed);
    return parsed;
  }

  /** Up to `maxBytes` (at least one) committed records in [from, to), raw. For the reader. */
  readRange(
    from: Buffer,
    exclusiveStart: boolean,
    to: Buffer,
    maxBytes: number,
  ): { key: Buffer; value: Buffer }[] {
    const out: { key: Buffer; value: Buffer }[] = [];
    let bytes = 0;
    try {
      for (const e of this.db.getRange({ start: from, end: to, exclusiveStart })) {
        out.push({ key: e.key, value: e.value });
        bytes += e.key.length + e.value.length;
        if (bytes >= maxBytes) break;
      }
    } catch (err) {
      throw wrapLmdbError(err, this.path, 'reading');
    }
    return out;
  }

  /**
   * Copies committed records in [from, to) into `into` (reused by the reader, so its memory is
   * exactly its quota), as many as fit; a record larger than `into` comes alone in a buffer of
   * its own. Returns the record count, their end offsets and positions, and the last key.
   */
  readBatch(from: Buffer, exclusiveStart: boolean, to: Buffer, into: Buffer): RecordBatch {
    let bytes = into;
    let used = 0;
    const ends: number[] = [];
    const positions: bigint[] = [];
    let lastKey: Buffer | null = null;
    try {
      for (const { key, value } of this.db.getRange({ start: from, end: to, exclusiveStart })) {
        if (used + value.length > into.length) {
          if (ends.length > 0) break;
          bytes = Buffer.from(value);
          used = value.length;
        } else {
          value.copy(into, used);
          used += value.length;
        }
        ends.push(used);
        positions.push(key.readBigUInt64BE(1));
        lastKey = key;
        if (bytes !== into) break;
      }
    } catch (err) {
      throw wrapLmdbError(err, this.path, 'reading');
    }
    return { bytes, ends, positions, lastKey, usedBytes: used };
  }

  /** Registers a reader (or keeps its stored position): it now holds back `clean`. */
  registerReader(id: string, acknowledged: Lsn): Lsn {
    const prev = this.readerPosition(id);
    if (prev) return prev;
    this.write(() => this.db.putSync(readerKey(id), encodeLsn(acknowledged)), 'registering a reader');
    return acknowledged;
  }

  /** Records that reader `id` no longer needs transactions at or before `position`. */
  acknowledge(id: string, position: Lsn): void {
    const prev = this.readerPosition(id);
    if (prev && prev.compare(position) >= 0) return;
    this.write(() => this.db.putSync(readerKey(id), encodeLsn(position)), 'acknowledging');
  }

  /** Forgets reader `id`: it no longer holds back `clean`. */
  removeReader(id: string): void {
    this.write(() => this.db.removeSync(readerKey(id)), 'removing a reader');
  }

  readerPosition(id: string): Lsn | null {
    const v = this.db.get(readerKey(id));
    return v ? decodeLsn(v) : null;
  }

  /** Every registered reader and its acknowledged position. */
  readers(): Map<string, Lsn> {
    const out = new Map<string, Lsn>();
    for (const { key, value } of this.db.getRange({ start: READER_START, end: READER_END })) {
      out.set(key.subarray(1).toString('utf8'), decodeLsn(value));
    }
    return out;
  }

  /** The smallest acknowledged position over all readers (null: no readers). */
  minAcknowledged(): Lsn | null {
    let min: Lsn | null = null;
    for (const p of this.readers().values()) if (!min || p.compare(min) < 0) min = p;
    return min;
  }

  /**
   * Drops the transactions at or before `upTo` that every registered reader has acknowledged,
   * and moves `coveredFrom` there. Returns the position cleaned to (null: nothing to clean).
   */
  clean(upTo: Lsn): Lsn | null {
    let to = upTo;
    const min = this.minAcknowledged();
    if (min && min.compare(to) < 0) to = min;
    if (this.committedPos && this.committedPos.compare(to) < 0) to = this.committedPos;
    if (this.coveredFromPos && this.coveredFromPos.compare(to) >= 0) return null;
    this.removeRange(DATA_START, dataKeyAfter(to));
    this.coveredFromPos = to;
    this.write(() => this.db.putSync(metaKey('coveredFrom'), encodeLsn(to)), 'cleaning');
    return to;
  }

  /** Bytes of the data file on disk. */
  diskBytes(): number {
    try {
      return statSync(join(this.path, 'data.mdb')).size;
    } catch {
      return 0;
    }
  }

  /** Closes the log; an open transaction is dropped (it reappears from the source). Readers end. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.txn = null;
    this.pending = [];
    for (const wake of this.waiters.splice(0)) wake();
    await this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new TidemarkError('INTERNAL', { detail: `change log ${this.path} is closed` });
  }

  private schemaId(table: TableSchema): number {
    const known = this.schemaIds.get(table);
    if (known !== undefined) return known;
    const json = JSON.stringify(table);
    let id = this.schemaIdsByJson.get(json);
    if (id === undefined) {
      id = this.nextSchemaId++;
      this.schemaIdsByJson.set(json, id);
      this.schemasById.set(id, table);
      this.pending.push([schemaKey(id), Buffer.from(json, 'utf8')]);
    }
    this.schemaIds.set(table, id);
    return id;
  }

  private push(rec: LogRecord): void {
    const txn = this.txn!;
    const value = this.enc.encode(rec);
    this.pending.push([dataKey(txn.position.value, txn.seq++), value]);
    this.pendingBytes += value.length + 13;
    this.recordsAppended++;
    if (this.pendingBytes >= (this.options.writeBatchBytes ?? DEFAULT_WRITE_BATCH_BYTES)) this.flush(false);
  }

  private flush(committing: boolean): void {
    const max = this.options.maxDiskBytes;
    if (max !== undefined && this.diskBytes() >= max) {
      throw new TidemarkError('CHANGELOG_DISK_FULL', {
        detail: `${this.path} holds ${this.diskBytes()} bytes, its limit is ${max}`,
      });
    }
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const txn = this.txn!;
    this.write(() => {
      this.db.transactionSync(() => {
        for (const [k, v] of batch) this.db.putSync(k, v);
        if (committing) this.db.putSync(metaKey('committed'), encodeLsn(txn.position));
      });
    }, 'appending');
    if (!committing) txn.spilled = true;
  }

  private removeRange(from: Buffer, to: Buffer): void {
    // Chunked so that dropping a huge transaction never builds one huge write transaction.
    for (;;) {
      const keys = [...this.db.getKeys({ start: from, end: to, limit: 10_000 })];
      if (keys.length === 0) return;
      this.write(() => this.db.transactionSync(() => keys.forEach((k) => this.db.removeSync(k))), 'cleaning');
    }
  }

  private dropTail(): void {
    const after = this.committedPos ? dataKeyAfter(this.committedPos) : DATA_START;
    this.removeRange(after, DATA_END);
  }

  private readMeta(name: 'committed' | 'coveredFrom'): Lsn | null {
    const v = this.db.get(metaKey(name));
    if (v === undefined) return null;
    if (v.length !== 8)
      throw new TidemarkError('CHANGELOG_CORRUPT', {
        detail: `meta ${name} in ${this.path} has ${v.length} bytes`,
      });
    return decodeLsn(v);
  }

  private write(fn: () => void, action: string): void {
    try {
      fn();
    } catch (err) {
      throw err instanceof TidemarkError ? err : wrapLmdbError(err, this.path, action);
    }
  }
}
