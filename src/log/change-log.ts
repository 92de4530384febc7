/**
 * The local change log of one source: committed transactions in commit order, on LMDB, with the
 * records of large transactions in spill segments beside it. One writer (the hub's pump) appends;
 * any number of readers (subscriptions) read from their own positions at their own pace
 * (change-log-reader.ts); `clean` drops what every subscriber has acknowledged. The log knows no
 * database: it numbers transactions with its own sequence and keeps each one's source position
 * as the connector's codec encodes it.
 *
 *   hub ─ begin() · append(change)* · commit(position)
 *              │
 *              ├─ small transaction: records packed into values of ≤ 16 KiB ─► LMDB d|seq|0 d|seq|1 …
 *              │    (written out every writeBatchBytes, so none sits in memory; unreadable yet)
 *              │
 *              └─ once its records pass spillBytes: the buffered ones and every later one
 *                   ─► spill/<seq as 16 hex>.seg   (plain positional fs writes, never mmapped)
 *
 *   commit(P) ─► one LMDB write: last packs · segment reference (if spilled) · commit record (P)
 *               · c|seq = P · t|table = latest shape · m|committed = seq|P   ← readable here, whole
 *
 * Key layout (bytes; integers big-endian, so byte order = sequence order):
 *
 *   data     | 'd' (1) | seq u64 (8) | pack u32 (4) |  → pack of records (record-codec.ts)
 *   commit   | 'c' (1) | seq u64 (8) |                 → the transaction's position (codec bytes)
 *   schema   | 's' (1) | schema id u32 (4) |           → TableSchema as JSON (interned shapes)
 *   table    | 't' (1) | table id u32 (4) |            → schema id of the table's latest shape
 *   meta     | 'm' (1) | name utf8 |                   → 'format': u32 version
 *                                                         'committed': seq u64 | position
 *                                                         'coveredFrom': seq u64 | position
 *
 * Sequence numbers are contiguous: the transactions held are seq coveredFrom+1 … committed, and
 * they are every source transaction committed after coveredFrom's position (the position the
 * log started, or was last cleaned, after). A reader asking for anything older gets
 * CHANGELOG_BEHIND. Packs and segments after `committed` are the incomplete tail of a crash:
 * dropped at open, with any segment no pack references. `clean` and `reset` move the marks
 * before they delete, so a crash inside them leaves only keys at or before `coveredFrom`, also
 * dropped at open.
 *
 * Durability: writes are not fsynced unless `fsync`. The hub never lets the source discard
 * anything its subscribers have not durably acknowledged (their positions are kept apart, fsynced:
 * subscriptions.ts), so a log that lost its tail, or was damaged, by a machine crash is `reset`
 * and refilled from the source (hub.ts).
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type { RowChange } from '../core/change.ts';
import type { Position, PositionCodec } from '../core/position.ts';
import type { TableSchema } from '../core/table-schema.ts';
import { schemaChangeTableId } from '../core/schema-change.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import {
  COMMIT_START,
  commitKey,
  DATA_END,
  DATA_START,
  dataKey,
  dataKeyAfter,
  decodeMark,
  encodeMark,
  metaKey,
  SCHEMA_END,
  SCHEMA_START,
  schemaKey,
  TABLE_END,
  TABLE_START,
  tableKey,
  type MetaName,
} from './log-keys.ts';
import { RecordFormatError, RecordWriter, segmentOfPack, type LogRecord } from './record-codec.ts';
import { assertLmdbFile, wrapLmdbError } from './lmdb-errors.ts';
import { PackBuffer } from './pack-buffer.ts';
import {
  listSpillDir,
  removeSpillFile,
  SegmentWriter,
  seqOfSegment,
  wrapSpillError,
} from './spill-segment.ts';

/** 3: keyed by the log's own sequence, positions as codec bytes, schema records (2: by LSN). */
const FORMAT_VERSION = 3;
const DEFAULT_WRITE_BATCH_BYTES = 4 * 1024 * 1024;

export interface ChangeLogOptions<P extends Position = Position> {
  /** Directory of the log (LMDB `data.mdb` and `lock.mdb`, `spill/`); one per source. */
  readonly path: string;
  /** The source's positions (the log stores and compares them only through it). */
  readonly codec: PositionCodec<P>;
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
  /** fsync every commit (survives a machine crash without a refill from the source). Default false. */
  readonly fsync?: boolean;
}

/** A transaction of the log: its sequence number and source position. */
export interface LogMark<P extends Position = Position> {
  readonly seq: bigint;
  readonly position: P;
}

/** Transactions ended with `commit(…, hold)`: their LMDB puts (null: remove), in order. */
interface HeldCommits<P extends Position> {
  readonly puts: [Buffer, Buffer | null][];
  /** The schema records among `puts`: pending again when the write fails (their ids stay interned). */
  readonly schemas: [Buffer, Buffer][];
  /** Latest table shapes they set, in order. */
  readonly tables: [number, number | null][];
  /** The last of them, and its `committed` meta value. */
  mark: LogMark<P>;
  markBytes: Buffer;
}

const EMPTY = Buffer.alloc(0);

function u32(n: number): Buffer {
  const v = Buffer.allocUnsafe(4);
  v.writeUInt32BE(n);
  return v;
}

interface OpenTxn {
  readonly seq: bigint;
  /** The seq of its next LMDB value (one per pack). */
  pack: number;
  /** Framed bytes of its records so far (decides the spill). */
  bytes: number;
  /** True once some of its packs were written out to LMDB (an abort must delete them). */
  flushed: boolean;
  /** Where its records go once it passed `spillBytes`. */
  segment: SegmentWriter | null;
  /** Latest shapes of the tables it touched: written with its commit. */
  readonly tables: Map<number, number | null>;
}

/**
 * Maintains the invariants that every data key at or before `committed` belongs to a complete
 * transaction (begin … commit), that every segment it references exists whole, that committed
 * positions strictly grow with the sequence, and that no reader ever sees a key after `committed`.
 */
export class ChangeLog<P extends Position = Position> {
  /** Where spill segments live: `<path>/spill`. */
  readonly spillDir: string;
  readonly codec: PositionCodec<P>;
  private readonly enc = new RecordWriter();
  private readonly schemaIds = new Map<TableSchema, number>();
  private readonly schemaIdsByJson = new Map<string, number>();
  private readonly schemasById = new Map<number, TableSchema>();
  /** Table id → schema id of its latest shape (committed). */
  private readonly latest = new Map<number, number>();
  private nextSchemaId = 1;
  /** Schema records not yet written; kept across an abort (their ids stay interned). */
  private pendingSchemas: [Buffer, Buffer][] = [];
  private readonly packs: PackBuffer;
  private txn: OpenTxn | null = null;
  private committedMark: LogMark<P> | null;
  private coveredFromMark: LogMark<P> | null;
  /** Transactions committed with `hold`, not written yet: `publish` writes them in one LMDB write. */
  private held: HeldCommits<P> | null = null;
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
    private readonly options: ChangeLogOptions<P>,
  ) {
    this.codec = options.codec;
    this.spillDir = join(path, 'spill');
    this.writeBatchBytes = options.writeBatchBytes ?? DEFAULT_WRITE_BATCH_BYTES;
    this.spillBytes = options.spillBytes ?? this.writeBatchBytes;
    this.packs = new PackBuffer();
    this.committedMark = this.readMark('committed');
    this.coveredFromMark = this.readMark('coveredFrom');
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
    for (const { key, value } of db.getRange({ start: TABLE_START, end: TABLE_END })) {
      if (value.length === 4) this.latest.set(key.readUInt32BE(1), value.readUInt32BE(0));
    }
  }

  /**
   * Opens (or creates) the log at `options.path` and drops the incomplete tail of a crash: LMDB
   * values after `committed` or at or before `coveredFrom` (an interrupted clean or reset), and
   * every spill segment no committed transaction references.
   * Throws CHANGELOG_CORRUPT for a damaged or foreign file, or a log of another format.
   */
  static open<P extends Position>(options: ChangeLogOptions<P>): ChangeLog<P> {
    const file = join(options.path, 'data.mdb');
    const existed = existsSync(file);
    if (!existed && options.ifMissing === 'error') {
      throw new TidemarkError('CHANGELOG_MISSING', { detail: `no change log at ${options.path}` });
    }
    if (existed) assertLmdbFile(file);
    let db: RootDatabase<Buffer, Buffer>;
    try {
      mkdirSync(options.path, { recursive: true });
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
      if (format === undefined) {
        if (existed && db.getKeysCount({ limit: 1 }) > 0) {
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

  /** The last complete transaction, or null when none was ever appended (or all were cleaned). */
  get committed(): LogMark<P> | null {
    return this.committedMark;
  }

  /** The log holds every transaction after this one (null: the log was never started). */
  get coveredFrom(): LogMark<P> | null {
    return this.coveredFromMark;
  }

  /**
   * The position transactions are appended after: the last commit (held ones included), else the
   * coverage start.
   */
  get end(): LogMark<P> | null {
    return this.held?.mark ?? this.committedMark ?? this.coveredFromMark;
  }

  /**
   * Declares where an empty log's coverage starts: every transaction committed after `position`
   * will be appended. Only on a log holding no transaction (new, or `reset`).
   */
  startAt(position: P): void {
    this.assertOpen();
    if (this.committedMark !== null && this.committedMark.seq !== this.coveredFromMark?.seq) {
      throw new TidemarkError('INTERNAL', {
        detail: `startAt(${position}) on ${this.path}, which holds transactions`,
      });
    }
    this.held = null;
    const mark = { seq: this.committedMark?.seq ?? this.coveredFromMark?.seq ?? 0n, position };
    this.write(() => {
      this.db.transactionSync(() => {
        this.db.putSync(metaKey('coveredFrom'), encodeMark(mark.seq, this.codec.encode(position)));
        this.db.removeSync(metaKey('committed'));
      });
    }, 'starting');
    this.coveredFromMark = mark;
    this.committedMark = null;
  }

  /**
   * Drops every transaction (the log lost its tail or was damaged, and is refilled from the
   * source): coverage restarts after `position`. Sequence numbers go on growing. Table shapes
   * are kept (they are what the source's schema changes are diffed against).
   */
  reset(position: P): void {
    this.abort();
    this.held = null;
    const last = this.committedMark?.seq ?? this.coveredFromMark?.seq ?? 0n;
    // The marks first: a crash in the deletions leaves keys before the coverage, which the next
    // open deletes, never a log claiming transactions it lost.
    this.write(() => {
      this.db.transactionSync(() => {
        this.db.putSync(metaKey('coveredFrom'), encodeMark(last, this.codec.encode(position)));
        this.db.removeSync(metaKey('committed'));
      });
    }, 'resetting');
    this.committedMark = null;
    this.coveredFromMark = { seq: last, position };
    this.dropCovered();
    for (const { name } of listSpillDir(this.spillDir)) removeSpillFile(join(this.spillDir, name));
    this.committedSpillBytes = 0;
    this.wakeReaders();
  }

  /**
   * Starts the next transaction. Only when none is open, after `startAt`. Nothing is visible
   * until `commit`.
   */
  begin(commitTimeMs: number, txn?: number): void {
    this.assertOpen();
    if (this.txn) throw new TidemarkError('INTERNAL', { detail: `begin inside transaction ${this.txn.seq}` });
    const end = this.end;
    if (end === null) throw new TidemarkError('INTERNAL', { detail: `begin on ${this.path} before startAt` });
    this.txn = { seq: end.seq + 1n, pack: 0, bytes: 0, flushed: false, segment: null, tables: new Map() };
    this.push(txn === undefined ? { tag: 'begin', commitTimeMs } : { tag: 'begin', commitTimeMs, txn });
  }

  /**
   * Appends one change of the open transaction; may write buffered records out to LMDB or its
   * spill segment (not visible yet). On a throw (CHANGELOG_DISK_FULL) the caller must `abort`.
   */
  append(change: RowChange): void {
    const txn = this.txn;
    if (!txn) throw new TidemarkError('INTERNAL', { detail: `append(${change.tag}) outside a transaction` });
    switch (change.tag) {
      case 'insert':
        this.push({
          tag: 'insert',
          schemaId: this.touch(txn, change.table),
          row: change.packedRow ?? change.row,
        });
        break;
      case 'update':
        this.push({
          tag: 'update',
          schemaId: this.touch(txn, change.table),
          row: change.packedRow ?? change.row,
          old: change.packedRow !== undefined ? (change.packedOld ?? null) : change.old,
          oldIsFull: change.oldIsFull,
        });
        break;
      case 'delete':
        this.push({
          tag: 'delete',
          schemaId: this.touch(txn, change.table),
          old: change.packedOld ?? change.old,
        });
        break;
      case 'truncate':
        this.push({ tag: 'truncate', schemaIds: change.tables.map((t) => this.touch(txn, t)) });
        break;
      case 'schema': {
        const c = change.change;
        const table = c.kind === 'table-altered' ? c.after : c.table;
        const schemaId = this.touch(txn, table);
        if (c.kind === 'table-dropped') txn.tables.set(schemaChangeTableId(c), null);
        this.push({ tag: 'schema', schemaId, json: JSON.stringify(c) });
        break;
      }
    }
  }

  /**
   * Ends the open transaction, committed at `position` (after every position before it): when
   * this returns it is durable (per `fsync`) and readable, with its segment if it spilled. On a
   * throw the transaction stays open and the caller must `abort`.
   *
   * With `hold`, a transaction wholly in memory is only ended: it is written, and readable, with
   * the next `publish` or unheld commit, in the same LMDB write as the other held ones (one write
   * per source batch instead of one per transaction: most of the log's cost for single-row
   * transactions). Until then it is the log's `end`, not `committed`; `close` and `reset` drop it.
   */
  commit(position: P, commitTimeMs: number, hold = false): void {
    const txn = this.txn;
    if (!txn) throw new TidemarkError('INTERNAL', { detail: 'commit outside a transaction' });
    const end = this.end!;
    if (position.compare(end.position) <= 0) {
      throw new TidemarkError('INTERNAL', {
        detail: `commit at ${position} in ${this.path}, not after the log's end ${end.position}`,
      });
    }
    const positionBytes = this.codec.encode(position);
    if (txn.segment) {
      const seg = txn.segment;
      seg.finish(this.options.fsync === true);
      // Alone in its pack (the reader switches to the file there), just before the commit's.
      this.packs.close();
      this.packs.add(
        this.enc.encodeView({ tag: 'segment', file: seg.name, records: seg.records, bytes: seg.bytes }),
      );
      this.packs.close();
    }
    this.packs.add(this.enc.encodeView({ tag: 'commit', commitTimeMs, position: positionBytes }));
    this.recordsAppended++;
    if (hold && !txn.segment && !txn.flushed) {
      this.holdCommit(txn, position, positionBytes);
      return;
    }
    this.flush(txn, { position: positionBytes });
    if (txn.segment) {
      this.committedSpillBytes += txn.segment.bytes;
      this.transactionsSpilled++;
    }
    for (const [table, schemaId] of txn.tables) {
      if (schemaId === null) this.latest.delete(table);
      else this.latest.set(table, schemaId);
    }
    this.txn = null;
    this.committedMark = { seq: txn.seq, position };
    const w = this.waiters;
    this.waiters = [];
    for (const wake of w) wake();
  }

  /**
   * Writes the transactions committed with `hold` (one LMDB write) and wakes the readers. On a
   * throw they are dropped: `end` is the last written commit again.
   */
  publish(): void {
    const held = this.held;
    if (!held) return;
    this.held = null;
    this.unlessWritten(held, () => {
      this.checkDiskLimit();
      this.write(() => {
        this.db.transactionSync(() => {
          this.putHeld(held);
          this.db.putSync(metaKey('committed'), held.markBytes);
        });
      }, 'appending');
    });
    this.settleHeld(held);
    this.wakeReaders();
  }

  private holdCommit(txn: OpenTxn, position: P, positionBytes: Buffer): void {
    const held: HeldCommits<P> = this.held ?? {
      puts: [],
      schemas: [],
      tables: [],
      mark: { seq: 0n, position },
      markBytes: EMPTY,
    };
    for (const kv of this.pendingSchemas) {
      held.puts.push(kv);
      held.schemas.push(kv);
    }
    this.pendingSchemas = [];
    this.packs.take().forEach((p, i) => held.puts.push([dataKey(txn.seq, txn.pack + i), p.bytes]));
    held.puts.push([commitKey(txn.seq), positionBytes]);
    for (const [table, schemaId] of txn.tables) {
      held.puts.push([tableKey(table), schemaId === null ? null : u32(schemaId)]);
      held.tables.push([table, schemaId]);
    }
    held.mark = { seq: txn.seq, position };
    held.markBytes = encodeMark(txn.seq, positionBytes);
    this.held = held;
    this.txn = null;
  }

  /**
   * Runs the write of `held`; when it throws, their schema records are pending again: the ids
   * stay interned, so the transactions the source sends again would otherwise refer to a schema
   * never written (CHANGELOG_CORRUPT at the next open).
   */
  private unlessWritten(held: HeldCommits<P> | null, write: () => void): void {
    try {
      write();
    } catch (err) {
      if (held) this.pendingSchemas = [...held.schemas, ...this.pendingSchemas];
      throw err;
    }
  }

  private putHeld(held: HeldCommits<P>): void {
    for (const [k, v] of held.puts) {
      if (v === null) this.db.removeSync(k);
      else this.db.putSync(k, v);
    }
  }

  /** The held transactions are written: readable from here. */
  private settleHeld(held: HeldCommits<P>): void {
    for (const [table, schemaId] of held.tables) {
      if (schemaId === null) this.latest.delete(table);
      else this.latest.set(table, schemaId);
    }
    this.committedMark = held.mark;
  }

  /**
   * Drops the open transaction (the source connection broke inside it, or an append failed):
   * its packs written out and its segment are deleted. No-op when none is open.
   */
  abort(): void {
    const txn = this.txn;
    this.txn = null;
    this.packs.clear();
    if (!txn) return;
    txn.segment?.discard();
    if (txn.flushed) this.removeRange(dataKey(txn.seq, 0), dataKey(txn.seq + 1n, 0));
  }

  /** True while a transaction is open. */
  get inTransaction(): boolean {
    return this.txn !== null;
  }

  /** Resolves once a transaction after `seq` is committed, the log is reset, or closed. */
  waitForCommitAfter(seq: bigint): Promise<void> {
    if (this.closed || (this.committedMark && this.committedMark.seq > seq)) return Promise.resolve();
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
    throw new TidemarkError('CHANGELOG_CORRUPT', { detail: `schema ${id} missing from ${this.path}` });
  }

  /**
   * The last shape the log holds of table `tableId`, dropped or not (the newest schema record
   * naming it), or null.
   */
  lastShape(tableId: number): TableSchema | null {
    let best: [number, TableSchema] | null = null;
    for (const [id, t] of this.schemasById) {
      if (t.relationId === tableId && (best === null || id > best[0])) best = [id, t];
    }
    return best?.[1] ?? null;
  }

  /** The latest committed shape of every table the log has seen (and not seen dropped). */
  latestTables(): TableSchema[] {
    return [...this.latest.values()].map((id) => this.schema(id));
  }

  /**
   * Records the shapes of tables the log has not seen yet (captured now, with no change logged
   * for them so far), so that a later session diffs their schema changes against them.
   */
  learnTables(tables: readonly TableSchema[]): void {
    this.assertOpen();
    const fresh = tables.filter((t) => !this.latest.has(t.relationId));
    if (fresh.length === 0) return;
    const ids = fresh.map((t) => this.schemaId(t));
    const schemas = this.pendingSchemas;
    this.write(() => {
      this.db.transactionSync(() => {
        for (const [k, v] of schemas) this.db.putSync(k, v);
        fresh.forEach((t, i) => {
          const v = Buffer.allocUnsafe(4);
          v.writeUInt32BE(ids[i]!);
          this.db.putSync(tableKey(t.relationId), v);
        });
      });
    }, 'recording table shapes');
    this.pendingSchemas = [];
    fresh.forEach((t, i) => this.latest.set(t.relationId, ids[i]!));
  }

  /** The position of transaction `seq` (it must be held: coveredFrom < seq ≤ committed). */
  positionOf(seq: bigint): P {
    if (seq === this.coveredFromMark?.seq) return this.coveredFromMark.position;
    const v = this.db.get(commitKey(seq));
    if (!v)
      throw new TidemarkError('CHANGELOG_CORRUPT', {
        detail: `transaction ${seq} missing from ${this.path}`,
      });
    return this.decodePosition(v, `transaction ${seq}`);
  }

  /**
   * The sequence number the first transaction committed after `position` has (or will have: one
   * past `committed` when none is held yet). Null when the log no longer holds everything after
   * `position` (it was cleaned past it, or started after it).
   */
  seqAfter(position: P): bigint | null {
    const from = this.coveredFromMark;
    if (from === null || position.compare(from.position) < 0) return null;
    let lo = from.seq + 1n;
    let hi = (this.committedMark?.seq ?? from.seq) + 1n;
    // The first seq in [lo, hi) whose position is after `position`; hi when none.
    while (lo < hi) {
      const mid = (lo + hi) / 2n;
      if (this.positionOf(mid).compare(position) > 0) hi = mid;
      else lo = mid + 1n;
    }
    return lo;
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

  /**
   * Drops the transactions up to `upTo` (every subscriber acknowledged them) and moves
   * `coveredFrom` there. No-op when nothing is that old.
   */
  clean(upTo: bigint): void {
    const committed = this.committedMark;
    const from = this.coveredFromMark;
    if (!committed || !from) return;
    const to = upTo > committed.seq ? committed.seq : upTo;
    if (to <= from.seq) return;
    const position = this.positionOf(to);
    // The mark first: a crash in the deletions leaves keys before the coverage, which the next
    // open deletes, never a log claiming transactions it lost.
    this.write(
      () => this.db.putSync(metaKey('coveredFrom'), encodeMark(to, this.codec.encode(position))),
      'cleaning',
    );
    this.coveredFromMark = { seq: to, position };
    this.dropCovered();
    // After the marks: a crash in between leaves orphan segments, which the next open deletes.
    for (const { name, bytes } of listSpillDir(this.spillDir)) {
      const seq = seqOfSegment(name);
      if (seq === null || seq > to) continue;
      removeSpillFile(join(this.spillDir, name));
      this.committedSpillBytes = Math.max(0, this.committedSpillBytes - bytes);
    }
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
   * hit its limit accepts writes again once the subscribers have acknowledged and it was cleaned.
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
    this.held = null;
    const segment = this.txn?.segment;
    this.txn = null;
    this.packs.clear();
    this.pendingSchemas = [];
    segment?.discard();
    for (const wake of this.waiters.splice(0)) wake();
    await this.db.close();
  }

  /** Decodes position bytes read from the log; malformed bytes are damage. */
  decodePosition(bytes: Buffer, what: string): P {
    try {
      return this.codec.decode(bytes);
    } catch (cause) {
      throw new TidemarkError('CHANGELOG_CORRUPT', {
        detail: `${what} in ${this.path} has a bad position`,
        cause,
      });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new TidemarkError('INTERNAL', { detail: `change log ${this.path} is closed` });
  }

  /** Interns `table`'s shape and records it as the table's latest within the open transaction. */
  private touch(txn: OpenTxn, table: TableSchema): number {
    const id = this.schemaId(table);
    txn.tables.set(table.relationId, id);
    return id;
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
    const length = this.enc.encodeLength(rec);
    this.recordsAppended++;
    const framed = this.packs.framedBytes(length);
    txn.bytes += framed;
    if (txn.segment) {
      txn.segment.appendRecord(this.enc.bytes.subarray(0, length));
      return;
    }
    this.packs.add(this.enc.bytes, length);
    if (txn.bytes > this.spillBytes) this.startSpill(txn);
    else if (this.packs.bytes >= this.writeBatchBytes) this.flush(txn, null);
  }

  /**
   * The transaction passed `spillBytes`: its buffered records move to a new segment, and every
   * later one goes there. Packs already written to LMDB stay (they precede the segment).
   */
  private startSpill(txn: OpenTxn): void {
    txn.segment = new SegmentWriter({
      dir: this.spillDir,
      seq: txn.seq,
      bufferBytes: this.writeBatchBytes,
      beforeWrite: (bytes) => this.reserveDisk(bytes),
    });
    for (const p of this.packs.take()) txn.segment.appendFrames(p.bytes, p.records);
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
   * commit index, latest table shapes and the `committed` mark when `commit` is given. State
   * changes only once the write succeeded.
   */
  private flush(txn: OpenTxn, commit: { position: Buffer } | null): void {
    // Held transactions come before this one: written first, in the same LMDB write.
    const held = this.held;
    this.held = null;
    this.unlessWritten(held, () => this.checkDiskLimit());
    const packs = this.packs.take();
    const schemas = this.pendingSchemas;
    this.unlessWritten(held, () => {
      this.write(() => {
        this.db.transactionSync(() => {
          if (held) {
            this.putHeld(held);
            if (!commit) this.db.putSync(metaKey('committed'), held.markBytes);
          }
          for (const [k, v] of schemas) this.db.putSync(k, v);
          packs.forEach((p, i) => this.db.putSync(dataKey(txn.seq, txn.pack + i), p.bytes));
          if (commit) {
            this.db.putSync(commitKey(txn.seq), commit.position);
            for (const [table, schemaId] of txn.tables) {
              if (schemaId === null) this.db.removeSync(tableKey(table));
              else {
                const v = Buffer.allocUnsafe(4);
                v.writeUInt32BE(schemaId);
                this.db.putSync(tableKey(table), v);
              }
            }
            this.db.putSync(metaKey('committed'), encodeMark(txn.seq, commit.position));
          }
        });
      }, 'appending');
    });
    if (held) {
      this.settleHeld(held);
      this.wakeReaders();
    }
    txn.pack += packs.length;
    if (!commit && packs.length > 0) txn.flushed = true;
    this.pendingSchemas = [];
  }

  private checkDiskLimit(): void {
    const max = this.options.maxDiskBytes;
    if (max === undefined) return;
    const used = this.usedBytes();
    if (used >= max) {
      throw new TidemarkError('CHANGELOG_DISK_FULL', {
        detail: `${this.path} holds ${used} bytes (LMDB pages in use and spill segments), its limit is ${max}`,
      });
    }
  }

  private removeRange(from: Buffer, to: Buffer): void {
    // Chunked so that dropping a huge transaction never builds one huge write transaction.
    for (;;) {
      const keys = [...this.db.getKeys({ start: from, end: to, limit: 10_000 })];
      if (keys.length === 0) return;
      this.write(() => this.db.transactionSync(() => keys.forEach((k) => this.db.removeSync(k))), 'cleaning');
    }
  }

  /** Deletes what a crash left after `committed` (an unfinished transaction) and at or before `coveredFrom`. */
  private dropTail(): void {
    const last = this.committedMark?.seq ?? this.coveredFromMark?.seq ?? 0n;
    this.removeRange(dataKeyAfter(last), DATA_END);
    this.removeRange(commitKey(last + 1n), Buffer.from([COMMIT_START[0]! + 1]));
    this.dropCovered();
  }

  /** Deletes the packs and commit index of every transaction at or before `coveredFrom`. */
  private dropCovered(): void {
    const from = this.coveredFromMark?.seq;
    if (from === undefined) return;
    this.removeRange(DATA_START, dataKeyAfter(from));
    this.removeRange(COMMIT_START, commitKey(from + 1n));
  }

  /**
   * Deletes every spill file but the segments of committed transactions still held: the segment
   * of a transaction cut by a crash, one left by a crash inside `clean`, anything else. Counts
   * the bytes of those kept.
   */
  private sweepSpill(): void {
    try {
      mkdirSync(this.spillDir, { recursive: true });
    } catch (err) {
      throw wrapSpillError(err, this.spillDir, 'creating');
    }
    const committed = this.committedMark?.seq ?? null;
    const from = this.coveredFromMark?.seq ?? 0n;
    for (const { name, bytes } of listSpillDir(this.spillDir)) {
      const seq = seqOfSegment(name);
      const keep =
        seq !== null && committed !== null && seq <= committed && seq > from && this.references(seq, name);
      if (keep) this.committedSpillBytes += bytes;
      else removeSpillFile(join(this.spillDir, name));
    }
  }

  /** True when transaction `seq` references segment `name` (its second-to-last pack). */
  private references(seq: bigint, name: string): boolean {
    const last = this.db.getRange({
      start: dataKey(seq, 0xffffffff),
      // Exclusive: the last key of the transaction before, so pack 0 of this one is included.
      end: dataKey(seq - 1n, 0xffffffff),
      reverse: true,
      limit: 2,
    });
    for (const { value } of last) {
      try {
        if (segmentOfPack(value)?.file === name) return true;
      } catch (err) {
        if (!(err instanceof RecordFormatError)) throw err;
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `a pack of transaction ${seq} in ${this.path}: ${err.message}`,
          cause: err,
        });
      }
    }
    return false;
  }

  private readMark(name: MetaName): LogMark<P> | null {
    const v = this.db.get(metaKey(name));
    if (v === undefined) return null;
    const mark = decodeMark(v);
    if (!mark)
      throw new TidemarkError('CHANGELOG_CORRUPT', {
        detail: `meta ${name} in ${this.path} has ${v.length} bytes`,
      });
    return { seq: mark.seq, position: this.decodePosition(mark.position, `meta ${name}`) };
  }

  private write(fn: () => void, action: string): void {
    try {
      fn();
    } catch (err) {
      throw err instanceof TidemarkError ? err : wrapLmdbError(err, this.path, action);
    }
  }
}
