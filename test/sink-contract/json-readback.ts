/** Typed JSON (src/sink/shared/json-values.ts) back to PostgreSQL text forms, for reading sinks back. */
import { encodeText } from '../../src/decode/pg-values.ts';
import type { ColumnSchema, TableSchema } from '../../src/core/table-schema.ts';
import { pgTypeKind } from '../../src/sink/shared/pg-type-kind.ts';

/** JSON.parse, keeping integers beyond 2^53 exact by reading them as strings (test data only). */
export function parseJsonExact(text: string): unknown {
  return JSON.parse(text.replace(/([:[,])(-?\d{16,})(?=[,\]}])/g, '$1"$2"'));
}

export function jsonToPgText(value: unknown, column: ColumnSchema, t: TableSchema): string | null {
  if (value === null || value === undefined) return null;
  switch (pgTypeKind(column, t)) {
    case 'bool':
      return value === true ? 't' : 'f';
    case 'float4':
    case 'float8':
      return typeof value === 'number' ? encodeText(value, column.typeOid) : String(value);
    case 'bytea':
      return `\\x${Buffer.from(value as string, 'base64').toString('hex')}`;
    case 'array':
      return jsonArrayToPg(value);
    default:
      return String(value);
  }
}

/** A JSON array as PostgreSQL array text, every element quoted. */
export function jsonArrayToPg(value: unknown): string {
  if (value === null) return 'NULL';
  if (Array.isArray(value)) return `{${value.map(jsonArrayToPg).join(',')}}`;
  if (typeof value === 'boolean') return value ? 't' : 'f';
  const text =
    typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}
