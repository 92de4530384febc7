/**
 * The LMDB store's backend (lmdb-state-store.ts): the environment's layout, commits, merges,
 * spills, undo, and the map kept within the RSS limit.
 *
 *   named database   key                         value
 *   data             UTF-8 of `ns|key`           the state value (see state-store.ts)
 *   elog             [epoch, chunk]              a committed epoch's writes not merged into data
 *                                                yet (epoch-log.ts)
 *   meta             'format'                    '5'
 *                    'epoch'                     the last committed epoch
 *                    'undo'                      {epoch, previousEpoch, elog: true}: the last epoch
 *                                                is in elog; or {epoch, previousEpoch, db, wipe,
 *                                                count}: it is in data, its undo log in undo-<db>
 *                    'open'                      {epoch, db, wipe, count}: an epoch with writes
 *                                                spilled but not committed (rolled back at open)
 *                    'rollback'                  '1' while a rollback runs (finished at open)
 *   undo-a, undo-b   sequence number (1, 2, …)   a pack: JSON [[fullKey, prior value or null], …]
 *
 * A commit appends the epoch's writes to elog as one sequential record and keeps them in memory
 * (epoch-log.ts: the last epoch as its own layer, older ones folded into one), with no random
 * B-tree write and no prior read: its undo is dropping the record. Once the layers pass
 * `memtableBytes`, the epochs before the last are merged into data, each key written once, in
 * chunks of transactions (a crash between them replays the records again: writes are values, so
 * merging twice is harmless), the last of which deletes their records. An epoch too large for
 * memory spills: the layers are merged first (the last epoch with an undo log, as it was the undo
 * record), so that spilled writes are never shadowed, and the epoch is committed into data.
 *
 * An epoch's undo log records, for every write spilled or committed, the value it overwrote;
 * undoing applies the log newest first (repeated keys are harmless: the oldest entry wins), in
 * chunks of transactions, idempotently, so a crash during an undo is finished at the next open.
 * The first epoch of an empty store logs nothing: its undo empties the data ("wipe").
 * `commit` writes the last writes, the epoch number and the log's meta record in one LMDB
 * transaction and empties the other log (the previous epoch's): the two alternate.
 *
 * Limit: LMDB keys are at most 1978 bytes, so rows keyed into state (join, distinct, top-n,
 * ordered aggregates) must stay below that; longer keys fail with DATAFLOW_UNSUPPORTED_VALUE.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { open, type Database, type RootDatabase } from 'lmdb';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { decodeRecord, encodeRecords, Layer, mergeLayers, NOT_HELD } from './epoch-log.ts';
import { UNKNOWN, type EpochOverlay, type OrderedBackend, type Write } from './epoch-write-batch.ts';
import { fullGc, residentBytes } from './process-memory.ts';

/**
 * 4: a group's state may omit its last output (aggregate.ts, invertible aggregates only), which
 * code of format 3 would misread as accumulators. 5: a float sum's accumulator holds an exact sum
 * (a bigint and an exponent, sql/exact-float-sum.ts), on which code of format 4 fails. Marked so
 * that older code refuses the store.
 */
const FORMAT = '5';
/** Formats this code opens (2: no elog, read as one with an empty elog; 3: every group whole; 4). */
const FORMATS = new Set(['2', '3', '4', FORMAT]);
const MAX_KEY_BYTES = 1978;
/** Undo packs applied per LMDB transaction while undoing. */
const UNDO_CHUNK = 100;
/** Undo entries packed into one value of an undo log. */
const PACK_ENTRIES = 256;
/** Keys written into data per transaction while merging the layers. */
const MERGE_CHUNK = 50_000;
/** Reads between two looks at how much of the map is resident. */
const MAP_CHECK_READS = 256;
/** The address range reserved for the map (not memory: pages count only once read). */
const MAP_SIZE_BYTES = 2 ** 40;
/** File pages of the map always allowed, whatever the process's RSS. */
const MIN_MAP_BYTES = 32 * 1024 * 1024;
export const DEFAULT_RSS_LIMIT_BYTES = 400 * 1024 * 1024;
export const DEFAULT_MAP_BUDGET_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MEMTABLE_BYTES = 64 * 1024 * 1024;

interface LogRecord {
  readonly epoch: number;
  readonly db: 'a' | 'b';
  /** The store was empty before the epoch: undo = empty the data, nothing is logged. */
  readonly wipe: boolean;
  /** Packs in the log: sequence numbers 1 … count. */
  readonly count: number;
}

/** The last commit's undo: drop its elog record, or apply its undo log. */
type UndoRecord =
  { readonly epoch: number; readonly previousEpoch: number | null; readonly elog: true } | LogUndo;

type LogUndo = LogRecord & { readonly previousEpoch: number | null; readonly elog?: undefined };

export class LmdbBackend implements OrderedBackend {
  private root!: RootDatabase<string, string>;
  private data!: Database<string, string>;
  private meta!: Database<string, string>;
  /** Records are written as UTF-8 bytes (epoch-log.ts encodeRecords) and read back as text. */
  private elog!: Database<string | Buffer, [number, number]>;
  private undoA!: Database<string, number>;
  private undoB!: Database<string, number>;
  private epoch: number | null = null;
  private undo: UndoRecord | null = null;
  private openLog: LogRecord | null = null;
  /** The last committed epoch's writes while its undo is dropping them (undo.elog). */
  private last: Layer | null = null;
  /** Committed epochs before the last, not merged into data yet. */
  private older = Layer.empty();
  /** A merge failed after its commit: the next commit merges first. */
  private mergeOwed = false;
  private reads = 0;
  /** Iterators over the map in progress: no re-map under them. */
  private ranges = 0;
  private mapBaseline = 0;
  /** The heap's used bytes after the last garbage collection this store asked for. */
  private heapAfterCollect = 0;
  /** Re-maps done (for benches and tests). */
  remaps = 0;
  /** Garbage collections asked for instead of a re-map (for benches and tests). */
  collections = 0;
  /** Merges of the committed layers into data (for benches and tests). */
  merges = 0;

  constructor(
    private readonly path: string,
    private readonly rssLimitBytes: number,
    private readonly mapBudgetBytes: number,
    private readonly memtableBytes: number,
    private readonly fsync: boolean,
  ) {
    this.openEnv();
    if (this.root.get('meta|epoch') !== undefined) {
      // State of format 1 (keys in the root database): views rebuild it from a snapshot.
      this.root.close().catch(() => {});
      for (const f of ['data.mdb', 'lock.mdb']) rmSync(join(path, f), { force: true });
      this.openEnv();
    }
    const format = this.meta.get('format');
    if (format !== undefined && !FORMATS.has(format)) {
      this.root.close().catch(() => {});
      throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
        detail: `view state of unknown format ${format} at ${path}`,
      });
    }
    if (format !== FORMAT) this.root.transactionSync(() => this.meta.putSync('format', FORMAT));
    const epoch = this.meta.get('epoch');
    this.epoch = epoch === undefined ? null : Number(epoch);
    this.undo = this.readRecord<UndoRecord>('undo');
    this.openLog = this.readRecord<LogRecord>('open');
    this.replay();
    // A crash during a rollback or an epoch: finish the rollback, undo the epoch.
    if (this.meta.get('rollback') !== undefined && this.undo?.elog !== true) this.finishRollback();
    if (this.openLog !== null) this.abort();
    this.mapBaseline = residentBytes()?.file ?? 0;
  }

  private openEnv(): void {
    this.root = open<string, string>({
      path: this.path,
      encoding: 'string',
      maxDbs: 8,
      // As the change log: a process crash loses nothing (pages are in the OS); a machine crash
      // may lose the last commits, and then the state is behind the sink and rebuilt.
      noSync: !this.fsync,
      // One mapping of the whole (sparse, never preallocated) address range: closing it for a
      // re-map is a single munmap. With remapChunks every chunk read is its own mapping, and
      // closing thousands of them cost ~0.5–2 s per re-map (measured, bench/views.ts).
      remapChunks: false,
      mapSize: MAP_SIZE_BYTES,
    });
    // Keys as strings (lmdb's ordered-binary: our keys, starting with a letter, are their UTF-8
    // bytes, so LMDB's order is the order state-store.ts relies on), encoded without a Buffer.
    this.data = this.root.openDB<string, string>({ name: 'data', encoding: 'string' });
    this.meta = this.root.openDB<string, string>({ name: 'meta', encoding: 'string' });
    // Keys [epoch, chunk] (ordered-binary arrays: in epoch order).
    this.elog = this.root.openDB<string | Buffer, [number, number]>({ name: 'elog', encoding: 'string' });
    this.undoA = this.root.openDB<string, number>({
      name: 'undo-a',
      keyEncoding: 'uint32',
      encoding: 'string',
    });
    this.undoB = this.root.openDB<string, number>({
      name: 'undo-b',
      keyEncoding: 'uint32',
      encoding: 'string',
    });
  }

  /** The epoch log's records into the layers: the undoable epoch's as the last layer. */
  private replay(): void {
    const undo = this.undo;
    for (const { key, value } of this.elog.getRange()) {
      let layer = this.older;
      if (undo?.elog === true && key[0] === undo.epoch) layer = this.last ??= Layer.empty();
      for (const [ns, k, v] of decodeRecord(String(value))) layer.set(ns, k, v);
    }
  }

  private readRecord<T>(name: string): T | null {
    const text = this.meta.get(name);
    if (text === undefined) return null;
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
        detail: `the ${name} record of the view state`,
        cause,
      });
    }
  }

  private log(db: 'a' | 'b'): Database<string, number> {
    return db === 'a' ? this.undoA : this.undoB;
  }

  get(ns: string, key: string): string | undefined {
    const v = this.held(ns, key);
    if (v !== NOT_HELD) return v;
    this.tick();
    return this.data.get(`${ns}|${key}`);
  }

  /** The value of the epoch log's layers (the last epoch's first), or NOT_HELD. */
  held(ns: string, key: string): string | undefined | typeof NOT_HELD {
    if (this.last !== null) {
      const v = this.last.lookup(ns, key);
      if (v !== NOT_HELD) return v;
    }
    return this.older.lookup(ns, key);
  }

  range(ns: string, from: string, reverse: boolean): Iterable<[string, string]> {
    const last = this.last?.entries(ns, from, reverse) ?? null;
    const older = this.older.entries(ns, from, reverse);
    // No layer holds the namespace (a snapshot's scans): the B-tree's cursor, without merging.
    if (last === null && older === null) return this.dataRange(ns, from, reverse);
    return mergeLayers([last, older], this.dataRange(ns, from, reverse), reverse);
  }

  private *dataRange(ns: string, from: string, reverse: boolean): Generator<[string, string]> {
    this.tick();
    this.ranges++;
    const prefix = `${ns}|`;
    try {
      for (const { key, value } of this.data.getRange({ start: prefix + from, reverse })) {
        if (!key.startsWith(prefix)) return;
        yield [key.slice(prefix.length), value];
      }
    } finally {
      this.ranges--;
    }
  }

  spill(epoch: number, writes: readonly Write[]): void {
    if (this.openLog === null) this.mergeAll();
    this.root.transactionSync(() => {
      const log = this.openLog ?? this.newLog(epoch);
      this.openLog = { ...log, count: this.apply(log, writes) };
      this.meta.putSync('open', JSON.stringify(this.openLog));
    });
    this.checkMap();
  }

  commit(epoch: number, overlay: EpochOverlay): Promise<void> {
    // A merge that failed after the last commit (a full disk, say) goes first: failing here
    // fails this commit before anything of it is written.
    if (this.mergeOwed) {
      this.mergeOlder(() => {});
      this.mergeOwed = false;
    }
    if (this.openLog !== null) return this.commitIntoData(epoch, overlay.writes());
    const layer = Layer.adopt(overlay.tables, checkKeyLength);
    const previous = this.undo;
    const undo: UndoRecord = { epoch, previousEpoch: this.epoch, elog: true };
    this.root.transactionSync(() => {
      for (const [i, bytes] of encodeRecords((visit) => layer.forEachWrite(visit)).entries())
        this.elog.putSync([epoch, i], bytes);
      this.meta.putSync('epoch', String(epoch));
      this.meta.putSync('undo', JSON.stringify(undo));
      if (previous !== null && previous.elog !== true) this.log(previous.db).clearSync();
    });
    if (this.last !== null) this.older.absorb(this.last);
    this.last = layer;
    this.epoch = epoch;
    this.undo = undo;
    if (this.older.size > 0 && this.older.bytes + layer.bytes > this.memtableBytes) {
      // Epoch `epoch` is committed: a failure from here must not report it as failed (the
      // caller would retry an epoch already durable). A merge stopped part-way leaves the layer
      // and its records as they were; the next commit merges first.
      try {
        this.mergeOlder(() => {});
      } catch {
        this.mergeOwed = true;
      }
    }
    this.checkMap();
    return Promise.resolve();
  }

  /** Commits an epoch that spilled: its last writes into data, with its undo log. */
  private commitIntoData(epoch: number, writes: readonly Write[]): Promise<void> {
    const previous = this.undo;
    const log = this.openLog as LogRecord;
    let undo: UndoRecord | null = null;
    this.root.transactionSync(() => {
      undo = { ...log, count: this.apply(log, writes), previousEpoch: this.epoch };
      this.meta.putSync('epoch', String(epoch));
      this.meta.putSync('undo', JSON.stringify(undo));
      this.meta.removeSync('open');
      // The previous epoch's log (the other database) is no longer needed.
      if (previous !== null && previous.elog !== true && previous.db !== log.db)
        this.log(previous.db).clearSync();
    });
    this.epoch = epoch;
    this.undo = undo;
    this.openLog = null;
    this.checkMap();
    return Promise.resolve();
  }

  /**
   * Merges every layer into data before an epoch spills there (a layer would shadow its writes):
   * the older epochs as they are, the last one with an undo log, which becomes its undo record.
   */
  private mergeAll(): void {
    const last = this.last;
    const undo = this.undo;
    if (last === null || undo?.elog !== true) {
      if (this.older.size > 0) this.mergeOlder(() => {});
      return;
    }
    this.mergeOlder(() => {
      const log = this.newLog(undo.epoch, undo.previousEpoch === null);
      const writes: Write[] = [];
      for (const [ns, key, value] of last.writes()) writes.push([ns, key, value, UNKNOWN]);
      const record: UndoRecord = {
        ...log,
        count: this.apply(log, writes),
        previousEpoch: undo.previousEpoch,
      };
      this.dropRecords(Infinity);
      this.meta.putSync('undo', JSON.stringify(record));
      this.undo = record;
    });
    this.last = null;
  }

  /**
   * Writes the older layer into data (each key once, in key order), in transactions of
   * MERGE_CHUNK keys; the last one also drops the merged epochs' records and runs `then`.
   */
  private mergeOlder(then: () => void): void {
    const writes = this.older.sortedWrites();
    const below = this.last === null ? Infinity : (this.undo as UndoRecord).epoch;
    let from = 0;
    do {
      const to = Math.min(writes.length, from + MERGE_CHUNK);
      this.root.transactionSync(() => {
        for (let i = from; i < to; i++) {
          const [key, value] = writes[i] as [string, string | undefined];
          if (value === undefined) this.data.removeSync(key);
          else this.data.putSync(key, value);
        }
        if (to === writes.length) {
          this.dropRecords(below);
          then();
        }
      });
      from = to;
    } while (from < writes.length);
    if (writes.length > 0) this.merges++;
    this.older = Layer.empty();
  }

  /** Deletes the epoch log's records of epochs before `below`; inside a write transaction. */
  private dropRecords(below: number): void {
    for (const key of [...this.elog.getKeys()]) if (key[0] < below) this.elog.removeSync(key);
  }

  /** A fresh undo log for `epoch`, in the database the current undo record does not use. */
  private newLog(epoch: number, wipe = this.epoch === null): LogRecord {
    const db = this.undo?.elog !== true && this.undo?.db === 'a' ? 'b' : 'a';
    this.log(db).clearSync();
    return { epoch, db, wipe, count: 0 };
  }

  /**
   * Writes into data in key order, logging priors in `log` (none when it wipes); inside a write
   * transaction. Returns the log's pack count.
   */
  private apply(log: LogRecord, writes: readonly Write[]): number {
    const sorted = writes.map(([ns, key, value, known]) => {
      checkKeyLength(ns, key);
      return [`${ns}|${key}`, value, known] as const;
    });
    sorted.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const undo = this.log(log.db);
    let count = log.count;
    let pack: [string, string | null][] = [];
    for (const [key, value, known] of sorted) {
      if (!log.wipe) {
        const prior = known === UNKNOWN ? this.data.get(key) : known;
        if (prior !== value) pack.push([key, prior ?? null]);
        if (pack.length >= PACK_ENTRIES) {
          undo.putSync(++count, JSON.stringify(pack));
          pack = [];
        }
      }
      if (value === undefined) this.data.removeSync(key);
      else this.data.putSync(key, value);
    }
    if (pack.length > 0) undo.putSync(++count, JSON.stringify(pack));
    return count;
  }

  abort(): void {
    const log = this.openLog;
    if (log === null) return;
    this.undoLog(log);
    this.root.transactionSync(() => {
      this.meta.removeSync('open');
      this.log(log.db).clearSync();
    });
    this.openLog = null;
  }

  rollbackLast(): Promise<void> {
    const undo = this.undo;
    if (undo === null)
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', { detail: 'cannot roll back: no undo record' });
    if (undo.elog === true) {
      // The epoch is only in the epoch log (and in memory): dropping its record undoes it.
      this.root.transactionSync(() => {
        for (const key of [...this.elog.getKeys({ start: [undo.epoch, 0] })]) this.elog.removeSync(key);
        this.setEpoch(undo.previousEpoch);
        this.meta.removeSync('undo');
      });
      this.last = null;
      this.epoch = undo.previousEpoch;
      this.undo = null;
      return Promise.resolve();
    }
    this.root.transactionSync(() => this.meta.putSync('rollback', '1'));
    this.finishRollback();
    return Promise.resolve();
  }

  private setEpoch(epoch: number | null): void {
    if (epoch === null) this.meta.removeSync('epoch');
    else this.meta.putSync('epoch', String(epoch));
  }

  /** Applies the undo log of the last commit, which went into data (not the epoch log). */
  private finishRollback(): void {
    const undo = this.undo as LogUndo | null;
    if (undo !== null) this.undoLog(undo);
    this.root.transactionSync(() => {
      this.setEpoch(undo?.previousEpoch ?? null);
      this.meta.removeSync('undo');
      this.meta.removeSync('rollback');
      if (undo !== null) this.log(undo.db).clearSync();
    });
    if (undo !== null) this.epoch = undo.previousEpoch;
    this.undo = null;
  }

  /** Applies a log newest first, in chunks; idempotent (a crash part-way is finished later). */
  private undoLog(log: LogRecord): void {
    if (log.wipe) {
      this.root.transactionSync(() => this.data.clearSync());
      return;
    }
    const undo = this.log(log.db);
    for (let seq = log.count; seq > 0;) {
      const stop = Math.max(0, seq - UNDO_CHUNK);
      this.root.transactionSync(() => {
        for (let i = seq; i > stop; i--) {
          const text = undo.get(i);
          if (text === undefined) continue;
          const pack = JSON.parse(text) as [string, string | null][];
          for (let j = pack.length - 1; j >= 0; j--) {
            const [key, prior] = pack[j]!;
            if (prior === null) this.data.removeSync(key);
            else this.data.putSync(key, prior);
          }
        }
      });
      seq = stop;
    }
  }

  committedEpoch(): number | null {
    return this.epoch;
  }

  undoableEpoch(): number | null {
    return this.undo?.epoch ?? null;
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  private tick(): void {
    if (++this.reads % MAP_CHECK_READS === 0) this.checkMap();
  }

  /**
   * LMDB is read through mmap: every page touched counts in the process's RSS until unmapped.
   * Past the RSS limit, close and reopen the environment (a munmap, synchronous): the pages stay
   * in the page cache, outside the process.
   */
  private checkMap(): void {
    if (this.ranges > 0) return;
    const mapped = residentBytes();
    if (mapped === null) return;
    const map = mapped.file - this.mapBaseline;
    if (map <= MIN_MAP_BYTES) return;
    if (mapped.total <= this.rssLimitBytes && map <= this.mapBudgetBytes) return;
    if (map <= this.mapBudgetBytes && mapped.total - this.collectGarbage() <= this.rssLimitBytes) return;
    this.root.close().catch(() => {});
    this.openEnv();
    this.remaps++;
    this.mapBaseline = Math.min(mapped.file, residentBytes()?.file ?? mapped.file);
  }

  /**
   * Over the RSS limit with the map within its budget, the JS heap's garbage may be what fills
   * the limit: V8 lets the old generation grow to several times its live size before collecting
   * it (694 MiB used, ~150 MiB live, measured after a 1M-row snapshot), and dropping the map
   * cannot free that. A full collection is asked for only when the heap has grown by an eighth of
   * the limit (at least 32 MiB) since the last one, so its cost stays proportional to the
   * allocation; otherwise the map is dropped. Returns the heap bytes released (0: none asked).
   */
  private collectGarbage(): number {
    const gc = fullGc();
    if (gc === null) return 0;
    const before = getHeapStatistics();
    if (before.used_heap_size - this.heapAfterCollect < Math.max(MIN_MAP_BYTES, this.rssLimitBytes / 8))
      return 0;
    gc();
    this.collections++;
    const after = getHeapStatistics();
    this.heapAfterCollect = after.used_heap_size;
    // The freed pages leave the RSS as V8 unmaps them (a background task): count them as gone.
    return Math.max(0, before.total_heap_size - after.total_heap_size);
  }
}
/** LMDB keys are at most MAX_KEY_BYTES: longer ones fail before they reach the log or data. */
function checkKeyLength(ns: string, key: string): void {
  // A UTF-8 character is at most 3 bytes per UTF-16 unit: measure only keys that may be long.
  const full = ns.length + 1 + key.length;
  if (full * 3 <= MAX_KEY_BYTES) return;
  const bytes = Buffer.byteLength(ns, 'utf8') + 1 + Buffer.byteLength(key, 'utf8');
  if (bytes <= MAX_KEY_BYTES) return;
  throw new TidemarkError('DATAFLOW_UNSUPPORTED_VALUE', {
    detail: `state key of ${bytes} bytes exceeds LMDB's ${MAX_KEY_BYTES}: ${ns}|${key.slice(0, 60)}…`,
    hint: 'Key, group or order views by shorter values, or use the memory state store.',
  });
}
