/**
 * The data model of the dataflow. A row is a list of typed values; a change is a row with an
 * integer weight (+1 insert, −1 delete, +n/−n for n copies); an update is −old +new. A batch is
 * all changes of one input in one epoch; a consolidated batch has at most one change per distinct
 * row and no zero weights.
 */
import type { Value } from '../decode/value.ts';
import { rowKey } from './row-key.ts';

export type Row = readonly Value[];

export interface Change {
  readonly row: Row;
  /** Non-zero integer: how many copies of `row` are added (positive) or removed (negative). */
  readonly weight: number;
}

/** Batches whose producer guarantees they are consolidated (see `markConsolidated`). */
const knownConsolidated = new WeakSet<readonly Change[]>();

/**
 * Marks a batch its producer knows to be consolidated (distinct rows, no zero weight), so that
 * `consolidate` hands it back as is instead of keying every row. The batch must not change after.
 */
export function markConsolidated<T extends readonly Change[]>(changes: T): T {
  knownConsolidated.add(changes);
  return changes;
}

/** Whether `changes` was marked by `markConsolidated`. */
export function isMarkedConsolidated(changes: readonly Change[]): boolean {
  return knownConsolidated.has(changes);
}

/**
 * Sums the weights of equal rows and drops the rows whose weights cancel out. The result is marked
 * (see `markConsolidated`), and a marked batch is returned itself: callers must not modify it.
 */
export function consolidate(changes: Iterable<Change>): Change[] {
  if (Array.isArray(changes)) {
    const batch = changes as Change[];
    if (knownConsolidated.has(batch)) return batch;
    if (batch.length <= 1)
      return markConsolidated(batch.length === 1 && batch[0]?.weight !== 0 ? [...batch] : []);
  }
  const byKey = new Map<string, { row: Row; weight: number }>();
  for (const c of changes) {
    if (c.weight === 0) continue;
    const key = rowKey(c.row);
    const entry = byKey.get(key);
    if (entry === undefined) byKey.set(key, { row: c.row, weight: c.weight });
    else entry.weight += c.weight;
  }
  const out: Change[] = [];
  for (const e of byKey.values()) if (e.weight !== 0) out.push(e);
  return markConsolidated(out);
}

/** A batch grouped by a key function, each group consolidated. Rows whose key is null are skipped. */
export function groupBy(changes: readonly Change[], key: (row: Row) => string | null): Map<string, Change[]> {
  const groups = new Map<string, Change[]>();
  for (const c of changes) {
    const k = key(c.row);
    if (k === null) continue;
    let list = groups.get(k);
    if (list === undefined) groups.set(k, (list = []));
    list.push(c);
  }
  return groups;
}
