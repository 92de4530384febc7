/**
 * The aggregate functions the aggregate operator folds groups with. The SQL front end implements
 * these with PostgreSQL's arithmetic (exact numeric sums, int overflow errors, avg scale);
 * default-aggregates.ts ships number/bigint versions for tests and simple views.
 *
 * Two kinds:
 * - `invertible`: an accumulator (a row of Values, so any state store can keep it) that can add
 *   and remove values: count, sum, avg, bool_and/bool_or (as true/false counts).
 * - `ordered`: the engine keeps the group's values as an ordered multiset in the state store and
 *   the function reads the first, the last or all of them: min, max, string_agg.
 * `DISTINCT` works with both: the engine feeds a value only when it appears in or leaves the group.
 */
import type { Value } from '../decode/value.ts';
import type { Row } from './change.ts';

export interface InvertibleAggregate {
  readonly kind: 'invertible';
  /** The accumulator of an empty group. */
  init(): Row;
  /**
   * Folds `weight` copies of `value` into `acc` (negative weight: removes them) and returns the new
   * accumulator (may reuse `acc`). NULL arguments never reach it, except for count(*), which has
   * no argument and is called with NULL for every row.
   */
  add(acc: Row, value: Value, weight: number): Row;
  /** The SQL result for the accumulator (NULL for sum over no rows, 0 for count). */
  result(acc: Row): Value;
}

export interface OrderedAggregate {
  readonly kind: 'ordered';
  /** Which of the group's values, in ascending order-key order, `result` needs. */
  readonly reads: 'first' | 'last' | 'all';
  /** The SQL result from those values (repeated by multiplicity for `all`; empty for no rows). */
  result(values: readonly Value[]): Value;
}

export type AggregateFunction = InvertibleAggregate | OrderedAggregate;
