/**
 * Key-range predicates over a (possibly composite) key, compared in the key's own types and
 * collations: `ROW(k1, k2) > ROW($1::t1, $2::t2)`. Bounds are the key cells in text form (what the
 * type's output function printed), cast back with the column's type, so any key type works
 * (text with trailing spaces, uuid, numeric, bytea, enums) and order equals `ORDER BY k1, k2`.
 */
import type pg from 'pg';
import { quoteIdent, type ColumnSchema, type TableSchema } from '../../core/table-schema.ts';

/**
 * The key's columns (indexes into `t.columns`) in the order of the index that enforces it — the
 * replica identity index, else the primary key. `ORDER BY` and `ROW(…) > ROW(…)` in that order
 * walk the index; in the table's column order a key such as PRIMARY KEY (tenant, id) over a table
 * (id, tenant, …) makes the source sort the whole table for every chunk. The table's order when
 * no such index holds exactly the described key columns.
 */
export async function keyIndexOrder(c: pg.Client, t: TableSchema): Promise<readonly number[]> {
  const { rows } = await c.query<{ name: string }>(
    `SELECT a.attname AS name
       FROM pg_class r
       JOIN pg_index i ON i.indrelid = r.oid
        AND (CASE WHEN r.relreplident = 'i' THEN i.indisreplident ELSE i.indisprimary END)
       CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = k.attnum
      WHERE r.oid = $1
      ORDER BY k.n`,
    [t.relationId],
  );
  const order = rows.map((r) => t.columns.findIndex((col) => col.name === r.name));
  const same = order.length === t.keyColumns.length && order.every((i) => t.keyColumns.includes(i));
  return same ? order : t.keyColumns;
}

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
