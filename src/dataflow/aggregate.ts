/**
 * GROUP BY with aggregate functions. Output rows are `[...groupKey, ...results]`. A group whose
 * rows are all gone retracts its row; without GROUP BY there is exactly one output row at all
 * times, as in SQL (count 0, sum NULL over no rows).
 *
 * Maintains the invariant that for every group with rows, state holds:
 *   g|rowKey(key)                          → [[rows, emitted], key, lastOutput, acc0, acc1, …]
 *   d<i>|rowKey(key)rowKey([v])            → multiplicity of v        (DISTINCT aggregate i)
 *   v<i>|rowKey(key)orderKey rowKey([v])   → multiplicity and v       (ordered aggregate i)
 * Each epoch touches only the groups its changes fall into; min/max read one entry of the
 * ordered multiset, string_agg reads the group's multiset.
 */
import type { Value } from '../decode/value.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { AggregateFunction } from './aggregate-function.ts';
import { groupBy, type Change, type Row } from './change.ts';
import type { Operator, OperatorState } from './operator.ts';
import { orderToken } from './order-key.ts';
import { rowKey } from './row-key.ts';
import { decodeRows, encodeRows } from './value-codec.ts';

export interface AggregateSpec {
  readonly fn: AggregateFunction;
  /** The argument; absent for count(*). Rows where it is NULL are skipped, as in SQL. */
  readonly arg?: (row: Row) => Value;
  /** `agg(DISTINCT x)`: each distinct non-null value counts once. */
  readonly distinct?: boolean;
  /**
   * Ordered aggregates only: the order key of a value (order-key.ts); defaults to the value's own
   * ascending order, which is what min/max need.
   */
  readonly orderKey?: (value: Value) => string;
}

export interface AggregateOptions {
  /** The GROUP BY key of a row; absent for an aggregate without GROUP BY (one row, always). */
  readonly groupKey?: (row: Row) => Row;
  readonly aggregates: readonly AggregateSpec[];
}

interface GroupState {
  rows: number;
  key: Row;
  lastOutput: Row | null;
  accs: Row[];
}

const ascending = (v: Value): string => orderToken(v, { descending: false, nullsFirst: false });

export class AggregateOperator implements Operator {
  private readonly groupKey: (row: Row) => Row;
  private readonly global: boolean;

  constructor(
    private readonly state: OperatorState,
    private readonly options: AggregateOptions,
  ) {
    this.global = options.groupKey === undefined;
    this.groupKey = options.groupKey ?? (() => []);
    for (const a of options.aggregates) {
      if (a.fn.kind === 'invertible' && a.orderKey !== undefined) {
        throw new TidemarkError('DATAFLOW_GRAPH_INVALID', {
          detail: 'orderKey is only for ordered aggregates',
        });
      }
    }
  }

  step([input = []]: readonly (readonly Change[])[]): Change[] {
    const out: Change[] = [];
    const groups = groupBy(input, (row) => rowKey(this.groupKey(row)));
    if (this.global && !groups.has(rowKey([])) && this.state.get('g', rowKey([])) === undefined) {
      groups.set(rowKey([]), []);
    }
    for (const [gk, changes] of groups) this.stepGroup(gk, changes, out);
    return out;
  }

  private stepGroup(gk: string, changes: readonly Change[], out: Change[]): void {
    const specs = this.options.aggregates;
    const g = this.load(gk, changes);
    for (const c of changes) {
      g.rows += c.weight;
      specs.forEach((spec, i) => {
        const value = spec.arg === undefined ? null : spec.arg(c.row);
        if (spec.arg !== undefined && value === null) return;
        let weight = c.weight;
        if (spec.distinct === true) {
          const [before, after] = this.state.addCount(`d${i}`, gk + rowKey([value]), weight);
          weight = (after > 0 ? 1 : 0) - (before > 0 ? 1 : 0);
          if (weight === 0) return;
        }
        if (spec.fn.kind === 'invertible') {
          g.accs[i] = spec.fn.add(g.accs[i] ?? spec.fn.init(), value, weight);
        } else {
          const order = (spec.orderKey ?? ascending)(value);
          this.state.addRow(`v${i}`, gk + order + rowKey([value]), [value], weight);
        }
      });
    }
    const output =
      g.rows > 0 || this.global ? [...g.key, ...specs.map((spec, i) => this.result(spec, i, gk, g))] : null;
    if (g.lastOutput !== null && (output === null || rowKey(output) !== rowKey(g.lastOutput))) {
      out.push({ row: g.lastOutput, weight: -1 });
    }
    if (output !== null && (g.lastOutput === null || rowKey(output) !== rowKey(g.lastOutput))) {
      out.push({ row: output, weight: 1 });
    }
    if (output === null) {
      this.state.delete('g', gk);
    } else {
      this.state.put('g', gk, encodeRows([[g.rows, output !== null], g.key, output, ...g.accs]));
    }
  }

  private load(gk: string, changes: readonly Change[]): GroupState {
    const stored = this.state.get('g', gk);
    if (stored === undefined) {
      const first = changes[0];
      return {
        rows: 0,
        key: first === undefined ? [] : this.groupKey(first.row),
        lastOutput: null,
        accs: this.options.aggregates.map((a) => (a.fn.kind === 'invertible' ? a.fn.init() : [])),
      };
    }
    const [head = [], key = [], lastOutput = [], ...accs] = decodeRows(stored);
    return { rows: head[0] as number, key, lastOutput: head[1] === true ? lastOutput : null, accs };
  }

  private result(spec: AggregateSpec, i: number, gk: string, g: GroupState): Value {
    const fn = spec.fn;
    if (fn.kind === 'invertible') return fn.result(g.accs[i] ?? fn.init());
    if (fn.reads === 'all') {
      const values: Value[] = [];
      for (const c of this.state.scanRows(`v${i}`, gk))
        for (let n = 0; n < c.weight; n++) values.push(c.row[0] ?? null);
      return fn.result(values);
    }
    const extreme = this.state.scanRows(`v${i}`, gk, { reverse: fn.reads === 'last', limit: 1 });
    return fn.result(extreme.map((c) => c.row[0] ?? null));
  }
}
