/**
 * The shared half of every StateStore: the open epoch's writes, kept in an ordered overlay over
 * the backend's committed data and merged into reads, so a backend only has to provide ordered
 * committed reads and one atomic batch write (`OrderedBackend`).
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { NsTable } from './ns-table.ts';
import type { ScanOptions, StateStore } from './state-store.ts';

/** What rolls the committed state back from `epoch` to `previousEpoch`: each key's prior value. */
export interface UndoRecord {
  readonly epoch: number;
  readonly previousEpoch: number | null;
  /** Full key → value before `epoch` (undefined: the key was absent). */
  readonly entries: readonly (readonly [string, string | undefined])[];
}

/** Committed data of a backend, keyed by the full key `ns|key`. */
export interface OrderedBackend {
  get(fullKey: string): string | undefined;
  /** Entries from the first key ≥ `from` (or, reversed, from the last key ≤ `from`) onwards. */
  range(from: string, reverse: boolean): Iterable<[string, string]>;
  /**
   * Applies all writes (undefined = delete), records the epoch (null: none) and replaces the
   * stored undo record with `undo` (null: none), atomically.
   */
  write(
    writes: Iterable<readonly [string, string | undefined]>,
    epoch: number | null,
    undo: UndoRecord | null,
  ): Promise<void>;
  committedEpoch(): number | null;
  undoRecord(): UndoRecord | null;
  close(): Promise<void>;
}

const TOMBSTONE = undefined;

/** Higher than every character our keys use after a scanned prefix (they are BMP characters). */
const PREFIX_END = '\uffff';

/**
 * Committed values kept in memory in front of the backend, in two generations of at most this
 * many entries each: a hit in the old generation moves the entry to the young one, and a full
 * young generation replaces the old one, so hot keys (aggregate groups) stay while a stream of
 * one-off reads (base rows) passes through.
 */
const READ_CACHE_GENERATION = 100_000;

export class EpochWriteBatchStore implements StateStore {
  /** The open epoch's writes, per namespace (undefined: deleted). */
  private readonly pending = new Map<string, NsTable<string | undefined>>();
  /** Committed values by full key (undefined: absent); emptied on rollback. */
  private young = new Map<string, string | undefined>();
  private old = new Map<string, string | undefined>();
  private openEpoch: number | null = null;

  constructor(private readonly backend: OrderedBackend) {}

  get(ns: string, key: string): string | undefined {
    const table = this.pending.get(ns);
    if (table !== undefined && table.has(key)) return table.get(key);
    return this.committed(`${ns}|${key}`);
  }

  put(ns: string, key: string, value: string): void {
    this.requireOpen('put');
    this.pendingTable(ns).set(key, value);
  }

  delete(ns: string, key: string): void {
    this.requireOpen('delete');
    this.pendingTable(ns).set(key, TOMBSTONE);
  }

  scanPrefix(ns: string, prefix: string, options: ScanOptions = {}): [string, string][] {
    const full = `${ns}|${prefix}`;
    const reverse = options.reverse ?? false;
    const limit = options.limit ?? Infinity;
    const out: [string, string][] = [];
    if (limit <= 0) return out;
    const table = this.pending.get(ns);
    const a =
      table === undefined || table.size === 0
        ? null
        : table.entries(reverse ? prefix + PREFIX_END : prefix, { reverse })[Symbol.iterator]();
    const b = this.backend.range(reverse ? full + PREFIX_END : full, reverse)[Symbol.iterator]();
    const strip = ns.length + 1;
    let x = a === null ? null : nextInPrefix(a, prefix);
    let y = nextInPrefix(b, full);
    let yKey = y === null ? '' : y[0].slice(strip);
    while (x !== null || y !== null) {
      let take: [string, string | undefined];
      if (y === null || (x !== null && (reverse ? x[0] > yKey : x[0] < yKey))) {
        take = x as [string, string | undefined];
        x = nextInPrefix(a as Iterator<[string, string | undefined]>, prefix);
      } else {
        if (x === null || x[0] !== yKey) {
          take = [yKey, y[1]];
        } else {
          // Same key: the epoch's write wins over the committed value.
          take = x;
          x = nextInPrefix(a as Iterator<[string, string | undefined]>, prefix);
        }
        y = nextInPrefix(b, full);
        yKey = y === null ? '' : y[0].slice(strip);
      }
      if (take[1] === TOMBSTONE) continue;
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
    const writes: [string, string | undefined][] = [];
    const prior: [string, string | undefined][] = [];
    for (const [ns, table] of this.pending) {
      for (const [key, value] of table.all()) {
        const full = `${ns}|${key}`;
        writes.push([full, value]);
        prior.push([full, this.committed(full)]);
      }
    }
    const undo: UndoRecord = { epoch, previousEpoch: this.backend.committedEpoch(), entries: prior };
    try {
      await this.backend.write(writes, epoch, undo);
    } catch (err) {
      this.clearReadCache();
      throw err;
    }
    for (const [full, value] of writes) this.cacheCommitted(full, value);
    this.pending.clear();
    this.openEpoch = null;
  }

  async rollbackLastEpoch(): Promise<void> {
    const undo = this.backend.undoRecord();
    if (this.openEpoch !== null || undo === null) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', {
        detail: `cannot roll back: ${this.openEpoch !== null ? `epoch ${this.openEpoch} is open` : 'no undo record (nothing committed since the last rollback)'}`,
      });
    }
    this.clearReadCache();
    await this.backend.write(undo.entries, undo.previousEpoch, null);
  }

  undoableEpoch(): number | null {
    return this.backend.undoRecord()?.epoch ?? null;
  }

  abortEpoch(): void {
    this.pending.clear();
    this.openEpoch = null;
  }

  lastCommittedEpoch(): number | null {
    return this.backend.committedEpoch();
  }

  async close(): Promise<void> {
    this.abortEpoch();
    this.clearReadCache();
    await this.backend.close();
  }

  private committed(full: string): string | undefined {
    const young = this.young.get(full);
    if (young !== undefined || this.young.has(full)) return young;
    const old = this.old.get(full);
    const value = old !== undefined || this.old.has(full) ? old : this.backend.get(full);
    this.cacheCommitted(full, value);
    return value;
  }

  private cacheCommitted(full: string, value: string | undefined): void {
    if (this.young.size >= READ_CACHE_GENERATION) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(full, value);
  }

  private clearReadCache(): void {
    this.young = new Map();
    this.old = new Map();
  }

  private pendingTable(ns: string): NsTable<string | undefined> {
    let table = this.pending.get(ns);
    if (table === undefined) this.pending.set(ns, (table = new NsTable()));
    return table;
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
