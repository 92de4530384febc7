/**
 * The in-memory StateStore: one table per namespace (ns-table.ts), written through. Nothing survives the process; use
 * it for tests, benchmarks and views whose state is small. See state-store.ts for the contract.
 *
 * Unlike the overlay of epoch-write-batch.ts, writes go straight into the map and the first write
 * of a key in an epoch remembers the key's prior value. That log is what `abortEpoch` restores,
 * and, once the epoch commits, it is the undo record `rollbackLastEpoch` restores — so reads and
 * scans never merge two maps, and a commit is O(1).
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { NsTable, type NsEntry } from './ns-table.ts';
import type { ScanOptions, StateStore } from './state-store.ts';

/** What one epoch overwrote, oldest first: restored newest first, so repeated entries are harmless. */
interface PriorLog {
  readonly tables: NsTable<string>[];
  readonly keys: string[];
  /** undefined: the key was absent. */
  readonly values: (string | undefined)[];
}

interface Undo {
  readonly epoch: number;
  readonly previousEpoch: number | null;
  readonly prior: PriorLog;
}

const emptyLog = (): PriorLog => ({ tables: [], keys: [], values: [] });

export class MemoryStateStore implements StateStore {
  private readonly tables = new Map<string, NsTable<string>>();
  private committed: number | null = null;
  private openEpoch: number | null = null;
  /** Numbers the epochs opened by this store: an entry marked with it is logged already. */
  private sequence = 0;
  private prior: PriorLog = emptyLog();
  private undo: Undo | null = null;
  /**
   * The last key `get` looked up and what it found: operators read a key and then write it, and
   * the write reuses the lookup. Reset whenever entries are added or removed.
   */
  private lastTable: NsTable<string> | null = null;
  private lastKey = '';
  private lastEntry: NsEntry<string> | undefined = undefined;

  get(ns: string, key: string): string | undefined {
    const table = this.tables.get(ns);
    if (table === undefined) return undefined;
    const e = table.entry(key);
    this.lastTable = table;
    this.lastKey = key;
    this.lastEntry = e;
    return e?.value;
  }

  put(ns: string, key: string, value: string): void {
    this.requireOpen('put');
    const table = this.table(ns);
    const e = table === this.lastTable && key === this.lastKey ? this.lastEntry : table.entry(key);
    if (e === undefined) {
      this.log(table, key, undefined);
      this.lastEntry = table.add(key, value, this.sequence);
      this.lastTable = table;
      this.lastKey = key;
      return;
    }
    if (e.mark !== this.sequence) {
      this.log(table, key, e.value);
      e.mark = this.sequence;
    }
    e.value = value;
  }

  /** The map's own lookup is cheap: the same as `put`. */
  insert(ns: string, key: string, value: string): void {
    this.put(ns, key, value);
  }

  delete(ns: string, key: string): void {
    this.requireOpen('delete');
    const table = this.tables.get(ns);
    const e =
      table !== undefined && table === this.lastTable && key === this.lastKey
        ? this.lastEntry
        : table?.entry(key);
    if (table === undefined || e === undefined) return;
    if (e.mark !== this.sequence) this.log(table, key, e.value);
    table.delete(key);
    this.lastTable = null;
  }

  scanPrefix(ns: string, prefix: string, options: ScanOptions = {}): [string, string][] {
    const out: [string, string][] = [];
    const limit = options.limit ?? Infinity;
    const table = this.tables.get(ns);
    if (limit <= 0 || table === undefined) return out;
    const after = options.after;
    if (after !== undefined && options.reverse !== true) {
      for (const [k, v] of table.entries(after > prefix ? after : prefix, { reverse: false })) {
        if (k <= after) continue;
        if (!k.startsWith(prefix) || out.length >= limit) break;
        out.push([k, v]);
      }
      return out;
    }
    table.collectPrefix(prefix, options.reverse ?? false, limit, out);
    return out;
  }

  beginEpoch(epoch: number): void {
    if (this.openEpoch !== null || (this.committed !== null && epoch <= this.committed)) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', {
        detail: `cannot begin epoch ${epoch}: open epoch ${this.openEpoch ?? 'none'}, last committed ${this.committed ?? 'none'}`,
      });
    }
    this.openEpoch = epoch;
    this.sequence++;
  }

  commitEpoch(epoch: number): Promise<void> {
    if (this.openEpoch !== epoch) {
      return Promise.reject(
        new TidemarkError('DATAFLOW_EPOCH_ORDER', {
          detail: `cannot commit epoch ${epoch}: the open epoch is ${this.openEpoch ?? 'none'}`,
        }),
      );
    }
    this.undo = { epoch, previousEpoch: this.committed, prior: this.prior };
    this.prior = emptyLog();
    this.committed = epoch;
    this.openEpoch = null;
    return Promise.resolve();
  }

  abortEpoch(): void {
    this.restore(this.prior);
    this.prior = emptyLog();
    this.openEpoch = null;
    // Entries restored above must be logged again by the next epoch.
    this.sequence++;
  }

  rollbackLastEpoch(): Promise<void> {
    const undo = this.undo;
    if (this.openEpoch !== null || undo === null) {
      return Promise.reject(
        new TidemarkError('DATAFLOW_EPOCH_ORDER', {
          detail: `cannot roll back: ${this.openEpoch !== null ? `epoch ${this.openEpoch} is open` : 'no undo record (nothing committed since the last rollback)'}`,
        }),
      );
    }
    this.restore(undo.prior);
    this.sequence++;
    this.committed = undo.previousEpoch;
    this.undo = null;
    return Promise.resolve();
  }

  undoableEpoch(): number | null {
    return this.undo?.epoch ?? null;
  }

  lastCommittedEpoch(): number | null {
    return this.committed;
  }

  close(): Promise<void> {
    this.abortEpoch();
    return Promise.resolve();
  }

  private table(ns: string): NsTable<string> {
    let table = this.tables.get(ns);
    if (table === undefined) this.tables.set(ns, (table = new NsTable()));
    return table;
  }

  private log(table: NsTable<string>, key: string, value: string | undefined): void {
    this.prior.tables.push(table);
    this.prior.keys.push(key);
    this.prior.values.push(value);
  }

  private restore(prior: PriorLog): void {
    this.lastTable = null;
    for (let i = prior.keys.length - 1; i >= 0; i--) {
      const table = prior.tables[i] as NsTable<string>;
      const key = prior.keys[i] as string;
      const value = prior.values[i];
      if (value === undefined) table.delete(key);
      else table.set(key, value);
    }
  }

  private requireOpen(what: string): void {
    if (this.openEpoch === null) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', { detail: `${what} outside an epoch` });
    }
  }
}
