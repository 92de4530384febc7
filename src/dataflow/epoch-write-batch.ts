/**
 * The shared half of a durable StateStore: the open epoch's writes, kept in an ordered overlay
 * over the backend's data and merged into reads, spilled into the backend whenever they pass
 * `spillBytes` (the backend logs what each spilled write overwrote, so the epoch can still be
 * aborted, and rolled back once committed). A backend provides ordered reads, spilling writes of
 * the open epoch, and an atomic commit (`OrderedBackend`).
 *
 *   put/delete ─► overlay (≤ spillBytes) ──spill──► backend: data + undo log of the epoch
 *                                                  commit ─► the last writes, the epoch number
 *                                                            and the undo log made current, at once
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { NOT_HELD } from './epoch-log.ts';
import { NsTable } from './ns-table.ts';
import { MISS, ReadCache } from './read-cache.ts';
import type { ScanOptions, StateStore } from './state-store.ts';

/** A write: namespace, key in it, new value (undefined: delete), the value it overwrites when known. */
export type Write = readonly [
  ns: string,
  key: string,
  value: string | undefined,
  prior: string | undefined | typeof UNKNOWN,
];

/** A write's prior value the store does not know (the backend reads it). */
export const UNKNOWN: unique symbol = Symbol('unknown prior');

/** The backend's data, per namespace, plus the epochs written into it. */
export interface OrderedBackend {
  /** The value as of the last commit, plus the open epoch's spilled writes. */
  get(ns: string, key: string): string | undefined;
  /**
   * The committed value the backend holds in memory (undefined: deleted there), or NOT_HELD: a
   * memory lookup, never a read of the disk. Such keys are not kept in the read cache.
   */
  held(ns: string, key: string): string | undefined | typeof NOT_HELD;
  /**
   * Entries of namespace `ns` (keys within it) from the first key ≥ `from` (or, reversed, from
   * the last key ≤ `from`) onwards, up to the namespace's end.
   */
  range(ns: string, from: string, reverse: boolean): Iterable<[string, string]>;
  /** Applies writes of the open epoch `epoch` (undefined: delete), logging what they overwrite. */
  spill(epoch: number, writes: readonly Write[]): void;
  /**
   * Applies the open epoch's last writes and commits `epoch` atomically; its undo becomes the one
   * `rollbackLast` restores (the previous one is dropped).
   */
  commit(epoch: number, overlay: EpochOverlay): Promise<void>;
  /** Undoes the open epoch's spilled writes (no-op when none). */
  abort(): void;
  /** Restores the epoch committed before the last commit (see StateStore.rollbackLastEpoch). */
  rollbackLast(): Promise<void>;
  committedEpoch(): number | null;
  undoableEpoch(): number | null;
  close(): Promise<void>;
}

/** The open epoch's writes at its commit. */
export interface EpochOverlay {
  /** Per namespace (undefined: deleted). Handed over: the store starts new tables after it. */
  readonly tables: ReadonlyMap<string, NsTable<string | undefined>>;
  /** The writes with the values they overwrite where known (for a backend that logs priors). */
  writes(): Write[];
}

const TOMBSTONE = undefined;

/** Higher than every character our keys use after a scanned prefix (they are BMP characters). */
const PREFIX_END = '\uffff';

/** The mark of an overlay entry whose key held no value in the backend before the epoch wrote it. */
const ABSENT_BEFORE = 1;

/** Bytes an overlay entry costs beyond its strings (map entries, the table's nodes). */
const ENTRY_OVERHEAD_BYTES = 96;

export interface EpochWriteBatchOptions {
  /** The open epoch's writes held in memory before they are spilled into the backend. */
  readonly spillBytes?: number;
}

export const DEFAULT_SPILL_BYTES = 16 * 1024 * 1024;

export class EpochWriteBatchStore implements StateStore {
  /**
   * The open epoch's writes not yet spilled, per namespace (undefined: deleted); an entry marked
   * ABSENT_BEFORE overwrites nothing in the backend, so its prior needs no read for the undo log.
   */
  private pending = new Map<string, NsTable<string | undefined>>();
  /**
   * The last key read from the backend, and whether it was found: operators read a key and then
   * write it, and a write after "absent" then knows its prior without a second read (on LMDB a
   * random page each); an insert after "found" is refused (see `insert`).
   */
  private missNs = '';
  private missKey: string | null = null;
  private missFound = false;
  /**
   * The last value found in the backend itself (not its layers or the cache), cached only when
   * the next such read comes or the epoch commits without writing that key: a key read and then
   * written in the same epoch (a base row's update) would only go into the cache and out again at
   * commit, the entry surviving scavenges in between (3% of a GROUP BY's upkeep,
   * docs/performance.md "2026-12-05 e").
   */
  private deferNs = '';
  private deferKey: string | null = null;
  private deferValue = '';
  private pendingBytes = 0;
  /** Backend values (undefined: absent); updated with every write that reaches the backend. */
  private readonly cache = new ReadCache();
  private openEpoch: number | null = null;
  private readonly spillBytes: number;
  /** Times the open epoch's writes were spilled into the backend (for tests and benches). */
  spills = 0;

  constructor(
    private readonly backend: OrderedBackend,
    options: EpochWriteBatchOptions = {},
  ) {
    this.spillBytes = options.spillBytes ?? DEFAULT_SPILL_BYTES;
  }

  get(ns: string, key: string): string | undefined {
    const table = this.pending.get(ns);
    if (table !== undefined && table.has(key)) return table.get(key);
    return this.committed(ns, key);
  }

  put(ns: string, key: string, value: string): void {
    this.requireOpen('put');
    this.write(ns, key, value, this.lastReadAbsent(ns, key));
  }

  insert(ns: string, key: string, value: string): void {
    this.requireOpen('insert');
    // Checked without reading the disk (the epoch's writes, the last read, the backend's layers,
    // the read cache): a key known to hold a value means the caller's "absent" is wrong, and the
    // undo log would lose that value. The layers' lookup costs ~4% of a join's upkeep; without it
    // a key written in a recent epoch was overwritten silently.
    const table = this.pending.get(ns);
    const held =
      table !== undefined && table.has(key)
        ? table.get(key)
        : key === this.missKey && ns === this.missNs && this.missFound
          ? ''
          : this.known(ns, key);
    if (typeof held === 'string') {
      throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
        detail: `a row inserted as new already holds a value in state namespace ${ns}`,
      });
    }
    this.write(ns, key, value, true);
  }

  delete(ns: string, key: string): void {
    this.requireOpen('delete');
    this.write(ns, key, TOMBSTONE, this.lastReadAbsent(ns, key));
  }

  scanPrefix(ns: string, prefix: string, options: ScanOptions = {}): [string, string][] {
    const reverse = options.reverse ?? false;
    const limit = options.limit ?? Infinity;
    const out: [string, string][] = [];
    if (limit <= 0) return out;
    const table = this.pending.get(ns);
    const after = options.after;
    // An `after` before the prefix (outside it) skips nothing.
    const start = after !== undefined && !reverse && after > prefix ? after : prefix;
    const a =
      table === undefined || table.size === 0
        ? null
        : table.entries(reverse ? prefix + PREFIX_END : start, { reverse })[Symbol.iterator]();
    const b = this.backend.range(ns, reverse ? prefix + PREFIX_END : start, reverse)[Symbol.iterator]();
    let x = a === null ? null : nextInPrefix(a, prefix);
    let y = nextInPrefix(b, prefix);
    let yKey = y === null ? '' : y[0];
    while (x !== null || y !== null) {
      let take: [string, string | undefined];
      if (y === null || (x !== null && (reverse ? x[0] > yKey : x[0] < yKey))) {
        take = x as [string, string | undefined];
        x = nextInPrefix(a as Iterator<[string, string | undefined]>, prefix);
      } else {
        if (x === null || x[0] !== yKey) {
          take = [yKey, y[1]];
        } else {
          // Same key: the epoch's write wins over the backend's value.
          take = x;
          x = nextInPrefix(a as Iterator<[string, string | undefined]>, prefix);
        }
        y = nextInPrefix(b, prefix);
        yKey = y === null ? '' : y[0];
      }
      if (take[1] === TOMBSTONE) continue;
      if (after !== undefined && !reverse && take[0] <= after) continue;
      out.push([take[0], take[1]]);
      if (out.length >= limit) break;
    }
    // Close the backend's cursor when the scan stopped early.
    b.return?.();
    return out;
  }

  beginEpoch(epoch: number): void {
    const last = this.backend.committedEpoch();
    if (this.openEpoch !== null || (last !== null && epoch <= last)) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', {
        detail: `cannot begin epoch ${epoch}: open epoch ${this.openEpoch ?? 'none'}, last committed ${last ?? 'none'}`,
      });
    }
    this.openEpoch = epoch;
  }

  async commitEpoch(epoch: number): Promise<void> {
    if (this.openEpoch !== epoch) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', {
        detail: `cannot commit epoch ${epoch}: the open epoch is ${this.openEpoch ?? 'none'}`,
      });
    }
    const overlay: EpochOverlay = { tables: this.pending, writes: () => this.pendingWrites() };
    try {
      await this.backend.commit(epoch, overlay);
    } catch (err) {
      this.clearReadCache();
      throw err;
    }
    this.cacheWrites();
    this.cacheDeferred();
    this.clearPending();
    this.openEpoch = null;
  }

  async rollbackLastEpoch(): Promise<void> {
    if (this.openEpoch !== null || this.backend.undoableEpoch() === null) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', {
        detail: `cannot roll back: ${this.openEpoch !== null ? `epoch ${this.openEpoch} is open` : 'no undo record (nothing committed since the last rollback)'}`,
      });
    }
    this.clearReadCache();
    await this.backend.rollbackLast();
  }

  undoableEpoch(): number | null {
    return this.backend.undoableEpoch();
  }

  abortEpoch(): void {
    this.clearPending();
    this.openEpoch = null;
    this.clearReadCache();
    this.backend.abort();
  }

  lastCommittedEpoch(): number | null {
    return this.backend.committedEpoch();
  }

  async close(): Promise<void> {
    this.abortEpoch();
    await this.backend.close();
  }

  /** `absent`: the key holds no value now, so none in the backend unless the overlay wrote it. */
  private write(ns: string, key: string, value: string | undefined, absent: boolean): void {
    if (key === this.deferKey && ns === this.deferNs) this.deferKey = null;
    let table = this.pending.get(ns);
    if (table === undefined) this.pending.set(ns, (table = new NsTable()));
    const e = table.entry(key);
    // A key the overlay already holds keeps the mark of its first write (the backend's prior).
    if (e === undefined) table.add(key, value, absent ? ABSENT_BEFORE : 0);
    else e.value = value;
    this.pendingBytes += 2 * (ns.length + key.length + (value?.length ?? 0)) + ENTRY_OVERHEAD_BYTES;
    if (this.pendingBytes >= this.spillBytes) this.spill();
  }

  /** Moves the overlay into the backend (logged for undo): memory stays bounded in one epoch. */
  private spill(): void {
    this.spills++;
    const writes = this.pendingWrites();
    try {
      this.backend.spill(this.openEpoch as number, writes);
    } catch (err) {
      this.clearReadCache();
      throw err;
    }
    this.cacheWrites();
    this.clearPending();
  }

  /**
   * The overlay's writes (in no particular order: a backend that writes a B-tree sorts them), each
   * with the value it overwrites when the read cache knows it (operators read before they write).
   */
  private pendingWrites(): Write[] {
    const writes: Write[] = [];
    for (const [ns, table] of this.pending)
      for (const [key, e] of table.allEntries()) {
        const prior = e.mark === ABSENT_BEFORE ? undefined : this.known(ns, key);
        writes.push([ns, key, e.value, prior === MISS ? UNKNOWN : prior]);
      }
    return writes;
  }

  private clearPending(): void {
    // A new map: a commit may have handed the old one's tables to the backend.
    this.pending = new Map();
    this.pendingBytes = 0;
    this.missKey = null;
  }

  /**
   * A backend value: held in the backend's memory (written in recent epochs: groups, base rows
   * changed lately), else through the cache. Only values found are cached: keys read once and
   * then inserted (base rows) would only churn it; keys read and never written (a join's other
   * side) stay.
   */
  private committed(ns: string, key: string): string | undefined {
    let value = this.backend.held(ns, key);
    if (value === NOT_HELD) {
      const cached = this.cache.get(ns, key);
      if (cached !== MISS) value = cached;
      else if (key === this.deferKey && ns === this.deferNs) value = this.deferValue;
      else {
        this.cacheDeferred();
        value = this.backend.get(ns, key);
        if (value !== undefined) {
          this.deferNs = ns;
          this.deferKey = key;
          this.deferValue = value;
        }
      }
    }
    this.missNs = ns;
    this.missKey = key;
    this.missFound = value !== undefined;
    return value;
  }

  /** True when `key` is the last key read from the backend and was found absent there. */
  private lastReadAbsent(ns: string, key: string): boolean {
    return key === this.missKey && ns === this.missNs && !this.missFound;
  }

  /** The backend value as far as known without reading the disk, or MISS. */
  private known(ns: string, key: string): string | undefined | typeof MISS {
    const held = this.backend.held(ns, key);
    if (held !== NOT_HELD) return held;
    if (key === this.deferKey && ns === this.deferNs) return this.deferValue;
    return this.cache.peek(ns, key);
  }

  /** The deferred backend value (see `deferKey`) into the cache: its key was not written since. */
  private cacheDeferred(): void {
    if (this.deferKey === null) return;
    this.cache.set(this.deferNs, this.deferKey, this.deferValue);
    this.deferKey = null;
  }

  /**
   * The overlay's writes have reached the backend: their keys leave the cache (the backend holds
   * them in memory now, or reads them from the disk at the next read).
   */
  private cacheWrites(): void {
    const cache = this.cache;
    for (const [ns, table] of this.pending) cache.forget(ns, table);
  }

  private clearReadCache(): void {
    this.cache.clear();
    this.missKey = null;
    this.deferKey = null;
  }

  private requireOpen(what: string): void {
    if (this.openEpoch === null) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', { detail: `${what} outside an epoch` });
    }
  }
}

function nextInPrefix<T extends [string, unknown]>(it: Iterator<T>, prefix: string): T | null {
  const r = it.next();
  if (r.done === true || !r.value[0].startsWith(prefix)) return null;
  return r.value;
}
