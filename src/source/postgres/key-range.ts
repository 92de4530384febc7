/**
 * Key-range predicates over a (possibly composite) key, compared in the key's own types and
 * collations: `ROW(k1, k2) > ROW($1::t1, $2::t2)`. Bounds are the key cells in text form (what the
 * type's output function printed), cast back with the column's type, so any key type works
 * (text with trailing spaces, uuid, numeric, bytea, enums) and order equals `ORDER BY k1, k2`.
 */
import { quoteIdent, type ColumnSchema } from '../../core/table-schema.ts';

/** `ROW(keys) > ROW($first::type, …)`: rows after a bound (parameters numbered from `first`). */
export function keyAfterPredicate(keyCols: readonly ColumnSchema[], first: number): string {
  return `${keyRow(keyCols)} > ${paramRow(keyCols, first)}`;
}

/** `ROW(keys) <= ROW($first::type, …)`: rows up to a bound. */
export function keyUpToPredicate(keyCols: readonly ColumnSchema[], first: number): string {
  return `${keyRow(keyCols)} <= ${paramRow(keyCols, first)}`;
}

function keyRow(keyCols: readonly ColumnSchema[]): string {
  return `ROW(${keyCols.map((c) => quoteIdent(c.name)).join(', ')})`;
}

function paramRow(keyCols: readonly ColumnSchema[], first: number): string {
  return `ROW(${keyCols.map((c, i) => `$${first + i}::${c.typeName}`).join(', ')})`;
}
