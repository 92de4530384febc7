/**
 * Aggregate functions over JS numbers and bigints (PostgreSQL result types where they are cheap
 * to honour: count is int8 → bigint). The SQL front end replaces sum/avg with exact numeric
 * versions; these are enough for tests and for views over float or bigint columns.
 */
import type { Value } from '../decode/value.ts';
import type { InvertibleAggregate, OrderedAggregate } from './aggregate-function.ts';

/** count(*) and count(x): the engine skips NULL x, so both count what reaches them. */
export const count: InvertibleAggregate = {
  kind: 'invertible',
  init: () => [0],
  add: ([n], _value, weight) => [(n as number) + weight],
  result: ([n]) => BigInt(n as number),
};

/** sum over numbers, or over bigints when the first value is one; NULL for no values. */
export const sum: InvertibleAggregate = {
  kind: 'invertible',
  init: () => [0, 0],
  add: ([total, n], value, weight) => {
    if (typeof value === 'bigint')
      return [BigInt(total as number | bigint) + value * BigInt(weight), (n as number) + weight];
    return [(total as number) + (value as number) * weight, (n as number) + weight];
  },
  result: ([total, n]) => ((n as number) === 0 ? null : (total as Value)),
};

/** avg as a float; NULL for no values. */
export const avg: InvertibleAggregate = {
  kind: 'invertible',
  init: () => [0, 0],
  add: ([total, n], value, weight) => [(total as number) + Number(value) * weight, (n as number) + weight],
  result: ([total, n]) => ((n as number) === 0 ? null : (total as number) / (n as number)),
};

/** bool_and: false if any false, else true if any true, else NULL. */
export const boolAnd: InvertibleAggregate = {
  kind: 'invertible',
  init: () => [0, 0],
  add: ([t, f], value, weight) =>
    value === true ? [(t as number) + weight, f as number] : [t as number, (f as number) + weight],
  result: ([t, f]) => ((f as number) > 0 ? false : (t as number) > 0 ? true : null),
};

/** bool_or: true if any true, else false if any false, else NULL. */
export const boolOr: InvertibleAggregate = {
  kind: 'invertible',
  init: () => [0, 0],
  add: ([t, f], value, weight) =>
    value === true ? [(t as number) + weight, f as number] : [t as number, (f as number) + weight],
  result: ([t, f]) => ((t as number) > 0 ? true : (f as number) > 0 ? false : null),
};

export const min: OrderedAggregate = {
  kind: 'ordered',
  reads: 'first',
  result: (values) => values[0] ?? null,
};

export const max: OrderedAggregate = {
  kind: 'ordered',
  reads: 'last',
  result: (values) => values[0] ?? null,
};

/** string_agg(x, separator) in order-key order; NULL for no values. */
export function stringAgg(separator: string): OrderedAggregate {
  return {
    kind: 'ordered',
    reads: 'all',
    result: (values) => (values.length === 0 ? null : values.map((v) => String(v)).join(separator)),
  };
}
