/**
 * The shared half of every StateStore: the open epoch's writes, kept in an ordered overlay over
 * the backend's committed data and merged into reads, so a backend only has to provide ordered
 * committed reads and one atomic batch write (`OrderedBackend`).
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { SortedMap } from './sorted-map.ts';
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

export class EpochWriteBatchStore implements StateStore {
  private readonly pending = new SortedMap<string | undefined>();
  private openEpoch: number | null = null;

  constructor(private readonly backend: OrderedBackend) {}

  get(ns: string, key: string): string | undefined {
    const full = `${ns}|${key}`;
    if (this.pending.has(full)) return this.pending.get(full);
    return this.backend.get(full);
  }

  put(ns: string, key: string, value: string): void {
    this.requireOpen('put');
    this.pending.set(`${ns}|${key}`, value);
  }

  delete(ns: string, key: string): void {
    this.requireOpen('delete');
    this.pending.set(`${ns}|${key}`, TOMBSTONE);
  }

  scanPrefix(ns: string, prefix: string, options: ScanOptions = {}): [string, string][] {
    const full = `${ns}|${prefix}`;
    const reverse = options.reverse ?? false;
    const limit = options.limit ?? Infinity;
    const from = reverse ? full + PREFIX_END : full;
    const out: [string, string][] = [];
    if (limit <= 0) return out;
    const a = this.pending.entries(from, { reverse })[Symbol.iterator]();
    const b = this.backend.range(from, reverse)[Symbol.iterator]();
    let x = nextInPrefix(a, full);
    let y = nextInPrefix(b, full);
    const strip = ns.length + 1;
    while (x !== null || y !== null) {
      let take: [string, string | undefined];
      if (y === null || (x !== null && (reverse ? x[0] > y[0] : x[0] < y[0]))) {
        take = x as [string, string | undefined];
        x = nextInPrefix(a, full);
      } else if (x === null || x[0] !== y[0]) {
        take = y;
        y = nextInPrefix(b, full);
      } else {
        // Same key: the epoch's write wins over the committed value.
        take = x;
        x = nextInPrefix(a, full);
        y = nextInPrefix(b, full);
      }
      if (take[1] === TOMBSTONE) continue;
      out.push([take[0].slice(strip), take[1]]);
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
    const writes = [...this.pending.entries('')];
    const undo: UndoRecord = {
      epoch,
      previousEpoch: this.backend.committedEpoch(),
      entries: writes.map(([key]) => [key, this.backend.get(key)] as const),
    };
    await this.backend.write(writes, epoch, undo);
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
    await this.backend.close();
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
