/**
 * PostgreSQL → SQLite type mapping. SQLite has four storage classes; we keep every value exact:
 *
 * | PostgreSQL                     | SQLite column | stored value                                  |
 * |--------------------------------|---------------|-----------------------------------------------|
 * | int2, int4, int8, oid          | INTEGER       | 64-bit integer (int8 bound as bigint)         |
 * | bool                           | INTEGER       | 1 / 0                                         |
 * | float4, float8                 | REAL          | double; NaN kept as the text 'NaN' (SQLite would store NULL); -0 reads back as 0 (REAL drops the sign of zero) |
 * | numeric                        | TEXT          | PostgreSQL's text form (exact, no rounding)   |
 * | bytea                          | BLOB          | the bytes                                     |
 * | everything else                | TEXT          | PostgreSQL's text form (timestamps, json, arrays, uuid, enums …) |
 */
import { encodeText } from '../../decode/pg-values.ts';
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';
import { byteaFromText, byteaToText, pgTypeKind, type PgTypeKind } from '../shared/pg-type-kind.ts';

export type SqliteAffinity = 'INTEGER' | 'REAL' | 'TEXT' | 'BLOB';
export type SqliteValue = string | number | bigint | Buffer | null;

export function sqliteAffinity(kind: PgTypeKind): SqliteAffinity {
  switch (kind) {
    case 'int2':
    case 'int4':
    case 'int8':
    case 'bool':
      return 'INTEGER';
    case 'float4':
    case 'float8':
      return 'REAL';
    case 'bytea':
      return 'BLOB';
    default:
      return 'TEXT';
  }
}

/** Converts text-form cells to bound values, one converter per column, decided once per table. */
export function cellConverters(table: TableSchema): ((text: string) => SqliteValue)[] {
  return table.columns.map((c) => converter(pgTypeKind(c, table)));
}

function converter(kind: PgTypeKind): (text: string) => SqliteValue {
  switch (kind) {
    case 'int2':
    case 'int4':
      return Number;
    case 'int8':
      return BigInt;
    case 'bool':
      return (t) => (t === 't' ? 1 : 0);
    case 'float4':
    case 'float8':
      return (t) => (t === 'NaN' ? 'NaN' : Number(t));
    case 'bytea':
      return byteaFromText;
    default:
      return (t) => t;
  }
}

/** A stored value back to PostgreSQL's text form (for reading a sink back in tests and tools). */
export function sqliteToText(value: unknown, column: ColumnSchema, table: TableSchema): string | null {
  if (value === null || value === undefined) return null;
  const kind = pgTypeKind(column, table);
  if (kind === 'bool') return encodeText(Number(value) === 1);
  if (kind === 'bytea' && value instanceof Uint8Array) return byteaToText(value);
  if ((kind === 'float4' || kind === 'float8') && typeof value === 'number')
    return encodeText(value, column.typeOid);
  return String(value);
}
