/**
 * The values of window functions over one partition, as PostgreSQL computes them: rows arrive
 * in window order (a row repeated by its multiplicity) with their order keys; peers are rows
 * with equal order keys. Ranking functions count rows or peer groups; lag/lead read other rows;
 * aggregates fold the frame (to the last peer, to the row, or the whole partition).
 */
import type { Row } from '../dataflow/change.ts';
import type { Value } from '../decode/value.ts';
import { pgAggregate } from './pg-aggregates.ts';
import type { WindowCall } from './plan.ts';
import { compareValues } from './value-ops.ts';

export type WindowCompute = (rows: readonly Row[], orderKeys: readonly string[]) => Value[][];

/** One function's values for every row of the partition. */
type Column = (rows: readonly Row[], orderKeys: readonly string[]) => Value[];

export function windowCompute(calls: readonly WindowCall[]): WindowCompute {
  const columns = calls.map(column);
  return (rows, keys) => {
    const cols = columns.map((c) => c(rows, keys));
    return rows.map((_, i) => cols.map((c) => c[i] ?? null));
  };
}

function column(call: WindowCall): Column {
  switch (call.name) {
    case 'row_number':
      return (rows) => rows.map((_, i) => BigInt(i + 1));
    case 'rank':
      return (rows, keys) => {
        const out: Value[] = [];
        let rank = 1;
        for (let i = 0; i < rows.length; i++) {
          if (i > 0 && keys[i] !== keys[i - 1]) rank = i + 1;
          out.push(BigInt(rank));
        }
        return out;
      };
    case 'dense_rank':
      return (rows, keys) => {
        const out: Value[] = [];
        let rank = 1;
        for (let i = 0; i < rows.length; i++) {
          if (i > 0 && keys[i] !== keys[i - 1]) rank++;
          out.push(BigInt(rank));
        }
        return out;
      };
    case 'lag':
    case 'lead': {
      const value = call.value!;
      const def = call.defaultValue;
      const step = call.name === 'lag' ? -call.offset : call.offset;
      return (rows) =>
        rows.map((row, i) => {
          const j = i + step;
          const other = rows[j];
          if (j >= 0 && other !== undefined) return value(other);
          return def ? def(row) : null;
        });
    }
    case 'first_value':
    case 'last_value': {
      const value = call.value!;
      return (rows, keys) =>
        rows.map((_, i) => {
          if (call.name === 'first_value') return rows.length > 0 ? value(rows[0]!) : null;
          const end = frameEnd(call.frame, keys, i, rows.length);
          return value(rows[end - 1]!);
        });
    }
    default:
      return aggregateColumn(call);
  }
}

/** One past the last row of row i's frame. */
function frameEnd(frame: WindowCall['frame'], keys: readonly string[], i: number, n: number): number {
  if (frame === 'all') return n;
  if (frame === 'rows') return i + 1;
  let end = i + 1;
  while (end < n && keys[end] === keys[i]) end++;
  return end;
}

/** A running aggregate: the frame grows row by row (or peer group by peer group). */
function aggregateColumn(call: WindowCall): Column {
  const agg = call.aggregate!;
  const arg = agg.args[0];
  if (agg.name === 'min' || agg.name === 'max') {
    const sign = agg.name === 'max' ? 1 : -1;
    return framed(
      call,
      () => ({ best: null as Value }),
      (acc, row) => {
        const v = arg!(row);
        if (v !== null && (acc.best === null || sign * compareValues(v, acc.best) > 0)) acc.best = v;
      },
      (acc) => acc.best,
    );
  }
  const fn = pgAggregate(agg);
  if (fn.kind !== 'invertible') throw new Error(`window aggregate ${agg.name} is not supported`);
  return framed(
    call,
    () => ({ acc: fn.init() }),
    (s, row) => {
      const v = arg ? arg(row) : null;
      if (arg && v === null) return;
      s.acc = fn.add(s.acc, v, 1);
    },
    (s) => fn.result(s.acc),
  );
}

function framed<S>(
  call: WindowCall,
  init: () => S,
  add: (state: S, row: Row) => void,
  result: (state: S) => Value,
): Column {
  return (rows, keys) => {
    const n = rows.length;
    const out = new Array<Value>(n);
    const s = init();
    if (call.frame === 'all') {
      for (const r of rows) add(s, r);
      const v = result(s);
      out.fill(v);
      return out;
    }
    let i = 0;
    while (i < n) {
      const end = frameEnd(call.frame, keys, i, n);
      for (let j = i; j < end; j++) add(s, rows[j]!);
      const v = result(s);
      for (let j = i; j < end; j++) out[j] = v;
      i = end;
    }
    return out;
  };
}
