/**
 * The local change log of one source database: committed transactions in commit order, on LMDB,
 * with the records of large transactions in spill segments beside it. One writer (the puller)
 * appends; any number of readers (changefeeds) read from their own positions at their own pace
 * (change-log-reader.ts); `clean` drops what every reader has acknowledged.
 *
 *   puller ─ begin(P) · append(change)* · commit()
 *              │
 *              ├─ small transaction: records packed into values of ≤ 16 KiB ─► LMDB d|P|0 d|P|1 …
 *              │    (written out every writeBatchBytes, so none sits in memory; unreadable yet)
 *              │
 *              └─ once its records pass spillBytes: the buffered ones and every later one
 *                   ─► spill/<P as 16 hex>.seg   (plain positional fs writes, never mmapped)
 *
 *   commit() ─► one LMDB write: last packs · segment reference (if spilled) · commit record
 *               · m|committed = P           ← the transaction becomes readable here, whole
 *
 * Why spill: LMDB is read through mmap, so every page a reader touches counts in the process's
 * VmRSS (RssFile); a 1 GB transaction read from LMDB would put 1 GB there. A segment is read
 * with `readSync` into the reader's quota buffer: its pages stay in the page cache, outside RSS.
 *
 * Key layout (bytes; integers big-endian, so byte order = commit order):
 *
 *   data     | 'd' (1) | commit position u64 (8) | seq u32 (4) |  → pack of records (record-codec.ts)
 *   schema   | 's' (1) | schema id u32 (4) |                     → TableSchema as JSON
 *   meta     | 'm' (1) | name utf8 |                             → 'format': u32 version
 *                                                                   'committed': u64 position
 *                                                                   'coveredFrom': u64 position
 *   reader   | 'r' (1) | reader id utf8 |                        → acknowledged position u64
 *
 * A transaction's first record is its begin, its last (in the last pack) its commit; a spilled
 * transaction's records between are in its segment, referenced by the `segment` record alone in
 * the pack before the commit's. The log covers the transactions committed in
 * (coveredFrom, committed]; a reader asking for anything older gets CHANGELOG_BEHIND. Packs and
 * segments after `committed` are the incomplete tail of a crash: dropped at open, with any
 * segment no pack references (an orphan of a crash inside `clean`).
 *
 * Durability: by default writes are not fsynced (`fsync: false`): a process crash loses nothing
 * (the pages are in the OS), a machine crash may lose the tail, which the puller re-reads from
 * the slot since the slot is only ever flushed to the readers' acknowledged positions. With
 * `fsync`, a segment is fsynced (file and directory) before the LMDB write that references it.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type { TableSchema } from '../core/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { Lsn } from '../source/postgres/lsn.ts';
import type { ChangeMessage } from '../core/change.ts';
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
import {
  frameHeaderBytes,
  RecordFormatError,
  RecordWriter,
  segmentOfPack,
  writeFrameHeader,
  type LogRecord,
} from './record-codec.ts';
import { assertLmdbFile, wrapLmdbError } from './lmdb-errors.ts';
import {
  listSpillDir,
  positionOfSegment,
  removeSpillFile,
  SegmentWriter,
  wrapSpillError,
} from './spill-segment.ts';

/** 2: values are packs of framed records, spill segments (1: one bare record per value). */
const FORMAT_VERSION = 2;
const DEFAULT_WRITE_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Most bytes of one pack. LMDB stores a value above ~2 KiB on overflow pages of its own (whole
 * 4 KiB pages plus a 16-byte header), so a pack closes before it would start a fifth page: the
 * waste is under one record. A record larger than this is a pack alone.
 */
const PACK_BYTES = 4 * 4096 - 16 - 32;

export interface ChangeLogOptions {
  /** Directory of the log (LMDB `data.mdb` and `lock.mdb`, `spill/`); one per source database. */
  readonly path: string;
  /** `create` (default) makes a new empty log when the directory has none; `error` throws CHANGELOG_MISSING. */
  readonly ifMissing?: 'create' | 'error';
  /** Records buffered by the writer before they are written out, in bytes (default 4 MiB). */
  readonly writeBatchBytes?: number;
  /**
   * A transaction whose records pass this many bytes goes on in a spill segment instead of LMDB,
   * so reading it never maps its pages (default `writeBatchBytes`). `Infinity`: never spill.
   */
  readonly spillBytes?: number;
  /** Fails appends with CHANGELOG_DISK_FULL once the LMDB file and spill segments would pass this size. */
  readonly maxDiskBytes?: number;
  /** fsync every commit (survives a machine crash, slower). Default false. */
  readonly fsync?: boolean;
}

type ChangeOnly = Exclude<ChangeMessage, { tag: 'begin' } | { tag: 'commit' }>;

interface OpenTxn {
  readonly position: Lsn;
  /** The seq of its next LMDB value (one per pack). */
  seq: number;
  /** Framed bytes of its records so far (decides the spill). */
  bytes: number;
  /** True once some of its packs were written out to LMDB (an abort must delete them). */
  flushed: boolean;
  /** Where its records go once it passed `spillBytes`. */
  segment: SegmentWriter | null;
}

/** A closed pack waiting for the next LMDB write (or moved to a segment if the transaction spills). */
interface Pack {
  readonly bytes: Buffer;
  readonly records: number;
}

/**
 * Maintains the invariants that every data key at or before `committed` belongs to a complete
 * transaction (begin … commit), that every segment it references exists whole, and that no
 * reader ever sees a key after `committed`.
 */
export class ChangeLog {
  /** Where spill segments live: `<path>/spill`. */
  readonly spillDir: string;
  private readonly enc = new RecordWriter();
  private readonly schemaIds = new Map<TableSchema, number>();
  private readonly schemaIdsByJson = new Map<string, number>();
  private readonly schemasById = new Map<number, TableSchema>();
  private nextSchemaId = 1;
  /** Schema records not yet written; kept across an abort (their ids stay interned). */
  private pendingSchemas: [Buffer, Buffer][] = [];
  /** Closed packs of the open transaction not yet written. */
  private packs: Pack[] = [];
  private packsBytes = 0;
  /** The pack being filled. */
  private readonly pack = Buffer.allocUnsafe(PACK_BYTES);
  private packUsed = 0;
  private packRecords = 0;
  private txn: OpenTxn | null = null;
  private committedPos: Lsn | null;
  private coveredFromPos: Lsn | null;
  /** Bytes of the segments of committed transactions (the open one's is counted apart). */
  private committedSpillBytes = 0;
  private waiters: (() => void)[] = [];
  private closed = false;
  private readonly writeBatchBytes: number;
  private readonly spillBytes: number;
  /** Records written since open (for metrics and tests). */
  recordsAppended = 0;
  /** Transactions that went to a spill segment since open (for metrics and tests). */
  transactionsSpilled = 0;

  private constructor(
    readonly path: string,
    private readonly db: RootDatabase<Buffer, Buffer>,
    private readonly options: ChangeLogOptions,
  ) {
    this.spillDir = join(path, 'spill');
    this.writeBatchBytes = options.writeBatchBytes ?? DEFAULT_WRITE_BATCH_BYTES;
    this.spillBytes = options.spillBytes ?? this.writeBatchBytes;
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

  /**
   * Opens (or creates) the log at `options.path` and drops the incomplete tail of a crash: LMDB
   * values after `committed`, and every spill segment no committed transaction references.
   */
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
      const version = format?.length === 4 ? format.readUInt32BE(0) : null;
      // A format-1 log without data records differs from format 2 in its format record only.
      const upgradable =
        version === 1 && db.getKeysCount({ start: DATA_START, end: DATA_END, limit: 1 }) === 0;
      if (format === undefined || upgradable) {
        if (format === undefined && existed && db.getKeysCount({ limit: 1 }) > 0) {
          throw new TidemarkError('CHANGELOG_CORRUPT', {
            detail: `${options.path} has data but no format record`,
          });
        }
        const v = Buffer.alloc(4);
        v.writeUInt32BE(FORMAT_VERSION);
        db.putSync(metaKey('format'), v);
      } else if (version !== FORMAT_VERSION) {
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `${options.path} is in log format ${version ?? '?'}, this version reads ${FORMAT_VERSION}`,
        });
      }
      const log = new ChangeLog(options.path, db, options);
      log.dropTail();
      log.sweepSpill();
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
    this.txn = { position, seq: 0, bytes: 0, flushed: false, segment: null };
    this.push({ tag: 'begin', commitTimeMs });
  }

  /**
   * Appends one change of the open transaction; may write buffered records out to LMDB or its
   * spill segment (not visible yet). On a throw (CHANGELOG_DISK_FULL) the caller must `abort`.
   */
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

  /**
   * Ends the open transaction: when this returns it is durable (per `fsync`) and readable, with
   * its segment if it spilled. On a throw the transaction stays open and the caller must `abort`.
   */
  commit(commitTimeMs: number): void {
    const txn = this.txn;
    if (!txn) throw new TidemarkError('INTERNAL', { detail: 'commit outside a transaction' });
    if (txn.segment) {
      const seg = txn.segment;
      seg.finish(this.options.fsync === true);
      // Alone in its pack (the reader switches to the file there), just before the commit's.
      this.closePack();
      this.addToPack(
        this.enc.encodeView({ tag: 'segment', file: seg.name, records: seg.records, bytes: seg.bytes }),
      );
      this.closePack();
    }
    this.addToPack(this.enc.encodeView({ tag: 'commit', commitTimeMs }));
    this.recordsAppended++;
    this.closePack();
    this.flush(true);
    if (txn.segment) {
      this.committedSpillBytes += txn.segment.bytes;
      this.transactionsSpilled++;
    }
    this.txn = null;
    this.committedPos = txn.position;
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  /**
   * Drops the open transaction (the source connection broke inside it, or an append failed):
   * its packs written out and its segment are deleted. No-op when none is open.
   */
  abort(): void {
    const txn = this.txn;
    this.txn = null;
    this.dropBuffered();
    if (!txn) return;
    txn.segment?.discard();
    if (txn.flushed) this.removeRange(dataKey(txn.position.value, 0), dataKey(txn.position.value + 1n, 0));
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

  /**
   * Up to `maxBytes` (at least one) raw LMDB values (packs) in [from, to), with their keys: for
   * tests and tools that look at what is on disk. Ignores `committed`.
   */
  readRange(
    from: Buffer,
    exclusiveStart: boolean,
    to: Buffer,
    maxBytes: number,
  ): { key: Buffer; value: Buffer }[] {
    const out: { key: Buffer; value: Buffer }[] = [];
    let bytes = 0;
    for (const e of this.values(from, exclusiveStart, to)) {
      out.push(e);
      bytes += e.key.length + e.value.length;
      if (bytes >= maxBytes) break;
    }
    return out;
  }

  /**
   * The LMDB values (packs) in [from, to) in key order, copied out of the map one at a time: the
   * reader's cursor (log-cursor.ts) bounds `to` by `committed`.
   */
  *values(from: Buffer, exclusiveStart: boolean, to: Buffer): Generator<{ key: Buffer; value: Buffer }> {
    try {
      for (const { key, value } of this.db.getRange({ start: from, end: to, exclusiveStart })) {
        yield { key, value };
      }
    } catch (err) {
      throw wrapLmdbError(err, this.path, 'reading');
    }
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
    // After the LMDB write: a crash in between leaves orphans, which the next open deletes.
    for (const { name, bytes } of listSpillDir(this.spillDir)) {
      const position = positionOfSegment(name);
      if (position === null || position > to.value) continue;
      removeSpillFile(join(this.spillDir, name));
      this.committedSpillBytes = Math.max(0, this.committedSpillBytes - bytes);
    }
    return to;
  }

  /** Bytes of the log on disk: the LMDB data file and the spill segments (the open one's too). */
  diskBytes(): number {
    let lmdb = 0;
    try {
      lmdb = statSync(join(this.path, 'data.mdb')).size;
    } catch {
      // No data file yet: nothing written.
    }
    return lmdb + this.committedSpillBytes + (this.txn?.segment?.bytes ?? 0);
  }

  /**
   * Bytes the log's records occupy: LMDB pages in use (pages freed by `clean` are reused, though
   * the file never shrinks) plus the spill segments. What `maxDiskBytes` limits, so a log that
   * hit its limit accepts writes again once the readers have acknowledged and it was cleaned.
   */
  usedBytes(): number {
    let lmdb = 0;
    try {
      const st = this.db.getStats() as {
        pageSize: number;
        treeBranchPageCount: number;
        treeLeafPageCount: number;
        overflowPages: number;
      };
      lmdb = (st.treeBranchPageCount + st.treeLeafPageCount + st.overflowPages) * st.pageSize;
    } catch {
      lmdb = this.diskBytes() - this.committedSpillBytes - (this.txn?.segment?.bytes ?? 0);
    }
    return lmdb + this.committedSpillBytes + (this.txn?.segment?.bytes ?? 0);
  }

  /** Closes the log; an open transaction is dropped (it reappears from the source). Readers end. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const segment = this.txn?.segment;
    this.txn = null;
    this.dropBuffered();
    this.pendingSchemas = [];
    // The open transaction reappears from the source; its partial segment is of no use.
    segment?.discard();
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
      this.pendingSchemas.push([schemaKey(id), Buffer.from(json, 'utf8')]);
    }
    this.schemaIds.set(table, id);
    return id;
  }

  private push(rec: LogRecord): void {
    const txn = this.txn!;
    const record = this.enc.encodeView(rec);
    this.recordsAppended++;
    txn.bytes += frameHeaderBytes(record.length) + record.length;
    if (txn.segment) {
      txn.segment.appendRecord(record);
      return;
    }
    this.addToPack(record);
    if (txn.bytes > this.spillBytes) this.startSpill(txn);
    else if (this.packsBytes + this.packUsed >= this.writeBatchBytes) this.flush(false);
  }

  /** Frames `record` into the open pack, closing the pack first when it would outgrow PACK_BYTES. */
  private addToPack(record: Buffer): void {
    const frameBytes = frameHeaderBytes(record.length) + record.length;
    if (this.packUsed > 0 && this.packUsed + frameBytes > PACK_BYTES) this.closePack();
    if (frameBytes > PACK_BYTES) {
      const alone = Buffer.allocUnsafe(frameBytes);
      record.copy(alone, writeFrameHeader(alone, 0, record.length));
      this.packs.push({ bytes: alone, records: 1 });
      this.packsBytes += frameBytes;
      return;
    }
    this.packUsed = writeFrameHeader(this.pack, this.packUsed, record.length);
    record.copy(this.pack, this.packUsed);
    this.packUsed += record.length;
    this.packRecords++;
  }

  private closePack(): void {
    if (this.packUsed === 0) return;
    this.packs.push({ bytes: Buffer.from(this.pack.subarray(0, this.packUsed)), records: this.packRecords });
    this.packsBytes += this.packUsed;
    this.packUsed = 0;
    this.packRecords = 0;
  }

  /** Forgets the open transaction's buffered records (not the pending schema records). */
  private dropBuffered(): void {
    this.packs = [];
    this.packsBytes = 0;
    this.packUsed = 0;
    this.packRecords = 0;
  }

  /**
   * The transaction passed `spillBytes`: its buffered records move to a new segment, and every
   * later one goes there. Packs already written to LMDB stay (they precede the segment).
   */
  private startSpill(txn: OpenTxn): void {
    txn.segment = new SegmentWriter({
      dir: this.spillDir,
      position: txn.position,
      bufferBytes: this.writeBatchBytes,
      beforeWrite: (bytes) => this.reserveDisk(bytes),
    });
    this.closePack();
    for (const p of this.packs) txn.segment.appendFrames(p.bytes, p.records);
    this.dropBuffered();
  }

  private reserveDisk(bytes: number): void {
    const max = this.options.maxDiskBytes;
    if (max === undefined) return;
    const now = this.usedBytes();
    if (now + bytes > max) {
      throw new TidemarkError('CHANGELOG_DISK_FULL', {
        detail: `${this.path} holds ${now} bytes (LMDB pages in use and spill segments), writing ${bytes} more would pass its limit of ${max}`,
      });
    }
  }

  /**
   * Writes the closed packs (and pending schema records) in one LMDB write transaction, with the
   * `committed` mark when `committing`. State changes only once the write succeeded.
   */
  private flush(committing: boolean): void {
    const max = this.options.maxDiskBytes;
    const used = max === undefined ? 0 : this.usedBytes();
    if (max !== undefined && used >= max) {
      throw new TidemarkError('CHANGELOG_DISK_FULL', {
        detail: `${this.path} holds ${used} bytes (LMDB pages in use and spill segments), its limit is ${max}`,
      });
    }
    this.closePack();
    const packs = this.packs;
    const schemas = this.pendingSchemas;
    const txn = this.txn!;
    this.write(() => {
      this.db.transactionSync(() => {
        for (const [k, v] of schemas) this.db.putSync(k, v);
        packs.forEach((p, i) => this.db.putSync(dataKey(txn.position.value, txn.seq + i), p.bytes));
        if (committing) this.db.putSync(metaKey('committed'), encodeLsn(txn.position));
      });
    }, 'appending');
    txn.seq += packs.length;
    if (!committing && packs.length > 0) txn.flushed = true;
    this.pendingSchemas = [];
    this.dropBuffered();
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

  /**
   * Deletes every spill file but the segments of committed transactions still covered: the
   * segment of a transaction cut by a crash, one left by a crash inside `clean`, anything else.
   * Counts the bytes of those kept.
   */
  private sweepSpill(): void {
    try {
      mkdirSync(this.spillDir, { recursive: true });
    } catch (err) {
      throw wrapSpillError(err, this.spillDir, 'creating');
    }
    for (const { name, bytes } of listSpillDir(this.spillDir)) {
      const position = positionOfSegment(name);
      const keep =
        position !== null &&
        this.committedPos !== null &&
        position <= this.committedPos.value &&
        (this.coveredFromPos === null || position > this.coveredFromPos.value) &&
        this.references(position, name);
      if (keep) this.committedSpillBytes += bytes;
      else removeSpillFile(join(this.spillDir, name));
    }
  }

  /** True when the transaction at `position` references segment `name` (its second-to-last pack). */
  private references(position: bigint, name: string): boolean {
    const last = this.db.getRange({
      start: dataKey(position, 0xffffffff),
      // Exclusive: the last key of the transaction before, so seq 0 of this one is included.
      end: dataKey(position - 1n, 0xffffffff),
      reverse: true,
      limit: 2,
    });
    for (const { value } of last) {
      try {
        if (segmentOfPack(value)?.file === name) return true;
      } catch (err) {
        if (!(err instanceof RecordFormatError)) throw err;
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `a pack of transaction ${Lsn.fromBigInt(position)} in ${this.path}: ${err.message}`,
          cause: err,
        });
      }
    }
    return false;
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
