/**
 * The in-memory StateStore: one ordered map, written through. Nothing survives the process; use
 * it for tests, benchmarks and views whose state is small. See state-store.ts for the contract.
 *
 * Unlike the overlay of epoch-write-batch.ts, writes go straight into the map and the first write
 * of a key in an epoch remembers the key's prior value. That log is what `abortEpoch` restores,
 * and, once the epoch commits, it is the undo record `rollbackLastEpoch` restores — so reads and
 * scans never merge two maps, and a commit is O(1).
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { SortedMap } from './sorted-map.ts';
import type { ScanOptions, StateStore } from './state-store.ts';

/** Higher than every character our keys use after a scanned prefix (they are BMP characters). */
const PREFIX_END = '\uffff';

interface Undo {
  readonly epoch: number;
  readonly previousEpoch: number | null;
  /** Full key → value before the epoch (undefined: absent). */
  readonly prior: Map<string, string | undefined>;
}

export class MemoryStateStore implements StateStore {
  private readonly data = new SortedMap<string>();
  private committed: number | null = null;
  private openEpoch: number | null = null;
  private prior = new Map<string, string | undefined>();
  private undo: Undo | null = null;

  get(ns: string, key: string): string | undefined {
    return this.data.get(`${ns}|${key}`);
  }

  put(ns: string, key: string, value: string): void {
    this.requireOpen('put');
    const full = `${ns}|${key}`;
    if (!this.prior.has(full)) this.prior.set(full, this.data.get(full));
    this.data.set(full, value);
  }

  delete(ns: string, key: string): void {
    this.requireOpen('delete');
    const full = `${ns}|${key}`;
    if (!this.prior.has(full)) {
      const before = this.data.get(full);
      if (before === undefined) return;
      this.prior.set(full, before);
    }
    this.data.delete(full);
  }

  scanPrefix(ns: string, prefix: string, options: ScanOptions = {}): [string, string][] {
    const full = `${ns}|${prefix}`;
    const reverse = options.reverse ?? false;
    const limit = options.limit ?? Infinity;
    const out: [string, string][] = [];
    if (limit <= 0) return out;
    const strip = ns.length + 1;
    for (const [k, v] of this.data.entries(reverse ? full + PREFIX_END : full, { reverse })) {
      if (!k.startsWith(full)) break;
      out.push([k.slice(strip), v]);
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

  private restore(prior: ReadonlyMap<string, string | undefined>): void {
    for (const [k, v] of prior) {
      if (v === undefined) this.data.delete(k);
      else this.data.set(k, v);
    }
  }

  private requireOpen(what: string): void {
    if (this.openEpoch === null) {
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', { detail: `${what} outside an epoch` });
    }
  }
}
