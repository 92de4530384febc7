/**
 * What every operator node implements. The graph calls `step` once per epoch on every node, in
 * build order (inputs before consumers), with the output batches of its inputs. Batches from
 * stateless nodes (filter, map, union all) are not consolidated: an operator must give the same
 * result for any batch with the same net weights (apply changes one by one, or sum them).
 */
import type { StateStore } from './state-store.ts';
import type { Change, Row } from './change.ts';
import { decodeRow, encodeRow } from './value-codec.ts';

export interface Operator {
  /**
   * Processes the epoch's input batches (one per input, in input order; empty when an input did
   * not change; possibly unconsolidated) and returns this node's output delta. Called once per epoch, inside the store's
   * open epoch; all state it keeps goes through its `OperatorState`. May return unconsolidated
   * changes: the graph consolidates them.
   */
  step(inputs: readonly (readonly Change[])[]): Change[];
}

/** The slice of the state store that belongs to one node: namespaces `n<id>.<part>`. */
export class OperatorState {
  /** part → namespace, built once so the hot path never concatenates. */
  private readonly namespaces = new Map<string, string>();

  constructor(
    private readonly store: StateStore,
    private readonly nodeNs: string,
  ) {}

  get(part: string, key: string): string | undefined {
    return this.store.get(this.ns(part), key);
  }

  put(part: string, key: string, value: string): void {
    this.store.put(this.ns(part), key, value);
  }

  delete(part: string, key: string): void {
    this.store.delete(this.ns(part), key);
  }

  scanPrefix(
    part: string,
    prefix: string,
    options: { reverse?: boolean; limit?: number } = {},
  ): [string, string][] {
    return this.store.scanPrefix(this.ns(part), prefix, options);
  }

  /** A stored multiplicity (0 when absent). */
  getCount(part: string, key: string): number {
    const v = this.get(part, key);
    return v === undefined ? 0 : Number(v);
  }

  /** Adds `delta` to a stored multiplicity, deleting it at 0; returns [before, after]. */
  addCount(part: string, key: string, delta: number): [number, number] {
    const before = this.getCount(part, key);
    const after = before + delta;
    if (after === 0) this.delete(part, key);
    else this.put(part, key, String(after));
    return [before, after];
  }

  /**
   * Adds `delta` copies of `row` under `key`, storing the row beside its count so scans can hand
   * it back; deletes the entry at 0. Returns [before, after].
   */
  addRow(part: string, key: string, row: Row, delta: number): [number, number] {
    const stored = this.get(part, key);
    const before = stored === undefined ? 0 : Number(stored.slice(0, stored.indexOf(' ')));
    const after = before + delta;
    if (after === 0) this.delete(part, key);
    else this.put(part, key, `${after} ${encodeRow(row)}`);
    return [before, after];
  }

  /**
   * `addRow` for a collection without duplicates, whose consolidated changes are +1 (the row is
   * absent: stored without a read) or −1 (it is there once: deleted); other weights fall back.
   */
  addDistinctRow(part: string, key: string, row: Row, delta: number): void {
    if (delta === 1) this.store.insert(this.ns(part), key, `1 ${encodeRow(row)}`);
    else if (delta === -1) this.delete(part, key);
    else this.addRow(part, key, row, delta);
  }

  /** The rows stored by `addRow` under keys starting with `prefix`, with their counts as weights. */
  scanRows(part: string, prefix: string, options: { reverse?: boolean; limit?: number } = {}): Change[] {
    return this.scanPrefix(part, prefix, options).map(([, v]) => decodeCountedRow(v));
  }

  private ns(part: string): string {
    let ns = this.namespaces.get(part);
    if (ns === undefined) this.namespaces.set(part, (ns = `${this.nodeNs}.${part}`));
    return ns;
  }
}

export function decodeCountedRow(stored: string): Change {
  const space = stored.indexOf(' ');
  return { weight: Number(stored.slice(0, space)), row: decodeRow(stored.slice(space + 1)) };
}
