/**
 * Typed JSON for rows in files and messages ("tidemark-json"). Written as JSON text directly so
 * every value stays exact:
 *
 * | PostgreSQL                 | JSON                                                          |
 * |----------------------------|---------------------------------------------------------------|
 * | int2, int4, int8, oid      | number, digits as printed (int8 keeps 64 bits; JS readers need a big-int-aware parser above 2^53) |
 * | float4, float8             | number; NaN, Infinity, -Infinity as strings                    |
 * | numeric                    | string (exact decimal text)                                   |
 * | bool                       | true / false                                                  |
 * | bytea                      | string, base64                                                |
 * | json, jsonb                | string: the JSON text as printed (embedding would make the JSON `null` value indistinguishable from SQL NULL) |
 * | arrays                     | JSON arrays (elements typed the same way; numeric as strings) |
 * | everything else            | string: PostgreSQL's text form (timestamps, uuid, enums, …)   |
 */
import { UNCHANGED, type Cell } from '../../core/row.ts';
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';
import { pgArrayToJson, type ArrayElementKind } from './pg-array-json.ts';
import { byteaFromText, pgTypeKind } from './pg-type-kind.ts';

export type JsonEncoder = (text: string) => string;

export function jsonEncoders(table: TableSchema): JsonEncoder[] {
  return table.columns.map((c) => jsonEncoder(c, table));
}

export function jsonEncoder(column: ColumnSchema, table: TableSchema): JsonEncoder {
  const kind = pgTypeKind(column, table);
  switch (kind) {
    case 'int2':
    case 'int4':
    case 'int8':
      return (t) => t;
    case 'float4':
    case 'float8':
      return (t) => (/^-?\d/.test(t) ? t : JSON.stringify(t));
    case 'bool':
      return (t) => (t === 't' ? 'true' : 'false');
    case 'bytea':
      return (t) => JSON.stringify(byteaFromText(t).toString('base64'));
    case 'array': {
      const element = arrayElementKind(column);
      return (t) => pgArrayToJson(t, element);
    }
    default:
      return (t) => JSON.stringify(t);
  }
}

/** The JSON encoding of an array's elements, from the array type name (`integer[]`, …). */
export function arrayElementKind(column: ColumnSchema): ArrayElementKind {
  const element = column.typeName.replace(/(\[\])+$/, '');
  if (/^(smallint|integer|bigint|oid)$/.test(element)) return 'int';
  if (/^(real|double precision)$/.test(element)) return 'float';
  if (element === 'boolean') return 'bool';
  return 'text';
}

/** `{"col": value, …}` for the given cells; UNCHANGED cells are left out, NULL is null. */
export function rowToJson(
  table: TableSchema,
  encoders: readonly JsonEncoder[],
  row: readonly Cell[],
  only?: readonly number[],
): string {
  const parts: string[] = [];
  const indexes = only ?? table.columns.map((_, i) => i);
  for (const i of indexes) {
    const cell = row[i];
    if (cell === UNCHANGED || cell === undefined) continue;
    const value = cell === null ? 'null' : encoders[i]!(cell);
    parts.push(`${JSON.stringify(table.columns[i]!.name)}:${value}`);
  }
  return `{${parts.join(',')}}`;
}

/** Names of the columns whose cells are UNCHANGED. */
export function unchangedColumns(table: TableSchema, row: readonly Cell[]): string[] {
  return table.columns.filter((_, i) => row[i] === UNCHANGED).map((c) => c.name);
}
