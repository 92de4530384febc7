/**
 * Test support: obviously-correct, from-scratch implementations of the operators over whole
 * tables (lists of rows), used as the oracle for the incremental ones.
 */
import type { Value } from '../../decode/value.ts';
import type { Row } from '../change.ts';
import { rowKey } from '../row-key.ts';
import type { JoinKind } from '../join.ts';

/** SQL order of built-in values, NULL last: the order order-key.ts must reproduce. */
export function compareValues(a: Value, b: Value): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  if (typeof a === 'string' && typeof b === 'string') {
    return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  }
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  throw new Error(`reference cannot compare ${typeof a} with ${typeof b}`);
}

export function refJoin(
  left: readonly Row[],
  right: readonly Row[],
  o: {
    kind: JoinKind;
    leftKey: (r: Row) => readonly Value[];
    rightKey: (r: Row) => readonly Value[];
    leftWidth: number;
    rightWidth: number;
  },
): Row[] {
  const out: Row[] = [];
  const leftMatched = left.map(() => false);
  const rightMatched = right.map(() => false);
  left.forEach((l, i) => {
    right.forEach((r, j) => {
      const a = o.leftKey(l);
      const b = o.rightKey(r);
      if (a.includes(null) || b.includes(null) || rowKey(a) !== rowKey(b)) return;
      out.push([...l, ...r]);
      leftMatched[i] = true;
      rightMatched[j] = true;
    });
  });
  if (o.kind === 'left' || o.kind === 'full') {
    left.forEach((l, i) => leftMatched[i] || out.push([...l, ...new Array<Value>(o.rightWidth).fill(null)]));
  }
  if (o.kind === 'right' || o.kind === 'full') {
    right.forEach((r, j) => rightMatched[j] || out.push([...new Array<Value>(o.leftWidth).fill(null), ...r]));
  }
  return out;
}

/** Rows grouped by a key, in first-seen order. */
export function refGroups(rows: readonly Row[], key: (r: Row) => Row): { key: Row; rows: Row[] }[] {
  const groups = new Map<string, { key: Row; rows: Row[] }>();
  for (const r of rows) {
    const k = key(r);
    const g = groups.get(rowKey(k)) ?? { key: k, rows: [] };
    g.rows.push(r);
    groups.set(rowKey(k), g);
  }
  return [...groups.values()];
}

export function refDistinct(rows: readonly Row[]): Row[] {
  return [...new Map(rows.map((r) => [rowKey(r), r])).values()];
}

/** ORDER BY (then the row key, the engine's tie-break) LIMIT/OFFSET per partition. */
export function refTopN(
  rows: readonly Row[],
  o: {
    compare: (a: Row, b: Row) => number;
    partitionKey?: (r: Row) => Row;
    limit?: number;
    offset?: number;
    rowNumber?: boolean;
  },
): Row[] {
  const out: Row[] = [];
  for (const g of refGroups(rows, o.partitionKey ?? (() => []))) {
    const sorted = [...g.rows].sort(
      (a, b) => o.compare(a, b) || (rowKey(a) < rowKey(b) ? -1 : rowKey(a) > rowKey(b) ? 1 : 0),
    );
    const offset = o.offset ?? 0;
    sorted.slice(offset, o.limit === undefined ? undefined : offset + o.limit).forEach((r, i) => {
      out.push(o.rowNumber === true ? [...r, BigInt(offset + i + 1)] : r);
    });
  }
  return out;
}
