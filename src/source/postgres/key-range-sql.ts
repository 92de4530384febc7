/**
 * A key range (`core/table-read.ts`) as a PostgreSQL predicate: a row comparison over the key
 * columns in their own types and collations, bounds as literals cast to the column types. Shared
 * by the source's verify reads and the PostgreSQL sink's (same dialect, same types).
 */
import type { KeyRange } from '../../core/table-read.ts';
import type { Row } from '../../core/row.ts';
import { quoteIdent, type TableSchema } from '../../core/table-schema.ts';

export function pgLiteral(v: string): string {
  return `'${v.replaceAll("'", "''")}'`;
}

/** `ROW(k1, k2)` of the table's key columns. */
export function pgKeyRow(t: TableSchema): string {
  return `ROW(${t.keyColumns.map((i) => quoteIdent(t.columns[i]!.name)).join(', ')})`;
}

/** Key cells as a typed row literal; a NULL cell is a typed NULL. */
export function pgKeyLiteral(t: TableSchema, key: Row): string {
  return `ROW(${t.keyColumns
    .map((i, j) => {
      const v = key[j] ?? null;
      return `${v === null ? 'NULL' : pgLiteral(v)}::${t.columns[i]!.typeName}`;
    })
    .join(', ')})`;
}

/** `lower < key ≤ upper` as SQL (`true` for the whole table). */
export function pgKeyRangeWhere(t: TableSchema, range: KeyRange): string {
  const parts: string[] = [];
  if (range.lower !== null) parts.push(`${pgKeyRow(t)} > ${pgKeyLiteral(t, range.lower)}`);
  if (range.upper !== null) parts.push(`${pgKeyRow(t)} <= ${pgKeyLiteral(t, range.upper)}`);
  return parts.length === 0 ? 'true' : parts.join(' AND ');
}

/** `key IN (…)`, null-safe: a stored NULL key cell matches a NULL in `keys`. */
export function pgKeysWhere(t: TableSchema, keys: readonly Row[]): string {
  if (keys.length === 0) return 'false';
  return keys.map((k) => `${pgKeyRow(t)} IS NOT DISTINCT FROM ${pgKeyLiteral(t, k)}`).join(' OR ');
}
