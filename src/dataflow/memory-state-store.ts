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
import { NsTable } from './ns-table.ts';
import type { ScanOptions, StateStore } from './state-store.ts';

/** Higher than every character our keys use after a scanned prefix (they are BMP characters). */
const PREFIX_END = '\uffff';

/** Per namespace table: key → value before the epoch (undefined: absent). */
type PriorValues = Map<NsTable<string>, Map<string, string | undefined>>;

interface Undo {
  readonly epoch: number;
  readonly previousEpoch: number | null;
  readonly prior: PriorValues;
}

export class MemoryStateStore implements StateStore {
  private readonly tables = new Map<string, NsTable<string>>();
  private committed: number | null = null;
  private openEpoch: number | null = null;
  private prior: PriorValues = new Map();
  private undo: Undo | null = null;

  get(ns: string, key: string): string | undefined {
    return this.tables.get(ns)?.get(key);
  }

  put(ns: string, key: string, value: string): void {
    this.requireOpen('put');
    const table = this.table(ns);
    const prior = this.priorOf(table);
    if (!prior.has(key)) prior.set(key, table.get(key));
    table.set(key, value);
  }

  delete(ns: string, key: string): void {
    this.requireOpen('delete');
    const table = this.tables.get(ns);
    if (table === undefined) return;
    const prior = this.priorOf(table);
    if (!prior.has(key)) {
      const before = table.get(key);
      if (before === undefined) return;
      prior.set(key, before);
    }
    table.delete(key);
  }

  scanPrefix(ns: string, prefix: string, options: ScanOptions = {}): [string, string][] {
    const reverse = options.reverse ?? false;
    const limit = options.limit ?? Infinity;
    const out: [string, string][] = [];
    const table = this.tables.get(ns);
    if (limit <= 0 || table === undefined) return out;
    for (const [k, v] of table.entries(reverse ? prefix + PREFIX_END : prefix, { reverse })) {
      if (!k.startsWith(prefix)) break;
      out.push([k, v]);
      if (out.length >= limit) break;
    }
    return out;
  }

  beginEpoch(epoch: number): void {
    if (this.openEpoch !== null || (this.committed !== null && epoch <= this.committed)) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', {
        detail: `cannot begin epoch ${epoch}: open epoch ${this.openEpoch ?? 'none'}, last committed ${this.committed ?? 'none'}`,
      });
    }
    this.openEpoch = epoch;
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
    this.prior = new Map();
    this.committed = epoch;
    this.openEpoch = null;
    return Promise.resolve();
  }

  abortEpoch(): void {
    this.restore(this.prior);
    this.prior = new Map();
    this.openEpoch = null;
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

  private priorOf(table: NsTable<string>): Map<string, string | undefined> {
    let prior = this.prior.get(table);
    if (prior === undefined) this.prior.set(table, (prior = new Map()));
    return prior;
  }

  private restore(prior: PriorValues): void {
    for (const [table, values] of prior) {
      for (const [k, v] of values) {
        if (v === undefined) table.delete(k);
        else table.set(k, v);
      }
    }
  }

  private requireOpen(what: string): void {
    if (this.openEpoch === null) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', { detail: `${what} outside an epoch` });
    }
  }
}
