/**
 * GROUP BY with aggregate functions. Output rows are `[...groupKey, ...results]`. A group whose
 * rows are all gone retracts its row; without GROUP BY there is exactly one output row at all
 * times, as in SQL (count 0, sum NULL over no rows).
 *
 * Maintains the invariant that for every group with rows, state holds:
 *   g|rowKey(key)                          → [[rows], key, acc0, acc1, …]    (invertible only)
 *                                            [[rows, true], key, lastOutput, acc0, acc1, …]
 *   (the first form when every aggregate is invertible: the output emitted last is the results
 *   of the accumulators, so it is not stored; state written before holds the second form, read
 *   either way)
 *   d<i>|rowKey(key)rowKey([v])            → multiplicity of v        (DISTINCT aggregate i)
 *   v<i>|rowKey(key)orderKey rowKey([v])   → multiplicity and v       (ordered aggregate i)
 * Each epoch touches only the groups its changes fall into; min/max read one entry of the
 * ordered multiset, string_agg reads the group's multiset.
 */
import type { Value } from '../decode/value.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { AggregateFunction } from './aggregate-function.ts';
import { markConsolidated, type Change, type Row } from './change.ts';
import type { Operator, OperatorState } from './operator.ts';
import { orderToken } from './order-key.ts';
import { rowKey, valueToken } from './row-key.ts';
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
  /**
   * The stored text this state was decoded from or written as, while it sits in the cache; ''
   * while an epoch folds changes into it (stored texts are never empty), so that a fold stopped
   * by an error, or an epoch aborted, can never leave a cached state that matches the store.
   */
  text: string;
}

/** Decoded groups kept per operator; the cache is emptied when it reaches this size. */
const GROUP_CACHE_ENTRIES = 20_000;

const ascending = (v: Value): string => orderToken(v, { descending: false, nullsFirst: false });

export class AggregateOperator implements Operator {
  private readonly groupKey: (row: Row) => Row;
  private readonly global: boolean;
  private readonly distinctParts: readonly string[];
  private readonly orderedParts: readonly string[];
  /** Every aggregate invertible: a group's last output is derived from its accumulators. */
  private readonly derived: boolean;
  /**
   * Saves decoding the group's state on every epoch; a cached state is folded into in place (no
   * copy per epoch). Entries are checked against the stored text, so an aborted or rolled-back
   * epoch can never leave a stale group behind.
   */
  private readonly cache = new Map<string, GroupState>();

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
    this.distinctParts = options.aggregates.map((_, i) => `d${i}`);
    this.orderedParts = options.aggregates.map((_, i) => `v${i}`);
    this.derived = options.aggregates.every((a) => a.fn.kind === 'invertible');
  }

  step([input = []]: readonly (readonly Change[])[]): Change[] {
    const out: Change[] = [];
    const groupKey = this.groupKey;
    // The epoch's groups, each loaded at its first change and folded change by change in input
    // order (no list of changes per group: those lived until the epoch's end, surviving
    // scavenges, docs/performance.md "2026-12-05 e").
    const touched = new Map<string, GroupState>();
    for (const c of input) {
      const key = groupKey(c.row);
      const gk = rowKey(key);
      let g = touched.get(gk);
      if (g === undefined) touched.set(gk, (g = this.load(gk, key)));
      this.fold(gk, g, c);
    }
    if (this.global && !touched.has(rowKey([])) && this.state.get('g', rowKey([])) === undefined) {
      touched.set(rowKey([]), this.load(rowKey([]), []));
    }
    for (const [gk, g] of touched) this.finish(gk, g, out);
    // One change per touched group, whose rows differ: already consolidated.
    return markConsolidated(out);
  }

  private fold(gk: string, g: GroupState, c: Change): void {
    const specs = this.options.aggregates;
    g.rows += c.weight;
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i] as AggregateSpec;
      const value = spec.arg === undefined ? null : spec.arg(c.row);
      if (spec.arg !== undefined && value === null) continue;
      let weight = c.weight;
      if (spec.distinct === true) {
        const part = this.distinctParts[i] as string;
        const [before, after] = this.state.addCount(part, gk + rowKey([value]), weight);
        weight = (after > 0 ? 1 : 0) - (before > 0 ? 1 : 0);
        if (weight === 0) continue;
      }
      if (spec.fn.kind === 'invertible') {
        g.accs[i] = spec.fn.add(g.accs[i] ?? spec.fn.init(), value, weight);
      } else {
        const order = (spec.orderKey ?? ascending)(value);
        this.state.addRow(this.orderedParts[i] as string, gk + order + rowKey([value]), [value], weight);
      }
    }
  }

  /** The group's changes folded in: its output change, its state stored and cached. */
  private finish(gk: string, g: GroupState, out: Change[]): void {
    const output = g.rows > 0 || this.global ? this.outputOf(gk, g) : null;
    const last = g.lastOutput;
    const changed = last === null || output === null || !sameRow(output, last);
    if (changed && last !== null) out.push({ row: last, weight: -1 });
    if (changed && output !== null) out.push({ row: output, weight: 1 });
    if (output === null) {
      this.state.delete('g', gk);
      this.cache.delete(gk);
      return;
    }
    const text = this.derived
      ? encodeRows([[g.rows], g.key, ...g.accs])
      : encodeRows([[g.rows, true], g.key, output, ...g.accs]);
    this.state.put('g', gk, text);
    g.lastOutput = output;
    g.text = text;
    if (this.cache.get(gk) !== g) {
      if (this.cache.size >= GROUP_CACHE_ENTRIES) this.cache.clear();
      this.cache.set(gk, g);
    }
  }

  /** The group's state, to fold into (`key`: the group's key, for a group not stored yet). */
  private load(gk: string, key: Row): GroupState {
    const stored = this.state.get('g', gk);
    if (stored === undefined) {
      return {
        rows: 0,
        key,
        lastOutput: null,
        accs: this.options.aggregates.map((a) => (a.fn.kind === 'invertible' ? a.fn.init() : [])),
        text: '',
      };
    }
    const cached = this.cache.get(gk);
    if (cached !== undefined && cached.text === stored) {
      cached.text = '';
      return cached;
    }
    const [head = [], storedKey = [], ...rest] = decodeRows(stored);
    const rows = head[0] as number;
    if (head.length > 1) {
      const [lastOutput = [], ...accs] = rest;
      return { rows, key: storedKey, lastOutput: head[1] === true ? lastOutput : null, accs, text: '' };
    }
    // Derived: the results of the accumulators as stored (result() leaves them as they are).
    const g: GroupState = { rows, key: storedKey, lastOutput: null, accs: rest, text: '' };
    g.lastOutput = this.outputOf(gk, g);
    return g;
  }

  /** The group's output row (key, then the aggregates' results). */
  private outputOf(gk: string, g: GroupState): Row {
    const specs = this.options.aggregates;
    const width = g.key.length;
    // Sized once: a spread key grown by push reallocates its backing store (~150 B per group).
    const row = new Array<Value>(width + specs.length);
    for (let i = 0; i < width; i++) row[i] = g.key[i] ?? null;
    for (let i = 0; i < specs.length; i++) row[width + i] = this.result(specs[i] as AggregateSpec, i, gk, g);
    return row;
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

/** Equal as rows of a view (rowKey equality), without building the keys for primitives. */
function sameRow(a: Row, b: Row): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? null;
    const y = b[i] ?? null;
    if (x === y) continue;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) {
      if (typeof x === 'number' && typeof y === 'number' && Number.isNaN(x) && Number.isNaN(y)) continue;
      return false;
    }
    // Values with canonical() (Numeric, dates): equal canonical texts of one class, without
    // building both tokens.
    const cx = (x as { canonical?: () => string }).canonical;
    if (typeof cx === 'function' && x.constructor === y.constructor) {
      if (cx.call(x) !== (y as { canonical: () => string }).canonical()) return false;
    } else if (valueToken(x) !== valueToken(y)) return false;
  }
  return true;
}
