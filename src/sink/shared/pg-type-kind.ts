/**
 * Classifies a PostgreSQL column type into the few kinds non-PostgreSQL sinks map differently.
 * Shared by the SQLite, MySQL, file and NATS sinks; decided by type OID for built-in types, by
 * `typeName` for arrays (`…[]`) and for enums (matched against `TableSchema.enums`).
 */
import { decodeCell, encodeText } from '../../decode/pg-values.ts';
import { PgTypeOid } from '../../decode/pg-type-oids.ts';
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';

export type PgTypeKind =
  | 'bool'
  | 'int2'
  | 'int4'
  | 'int8'
  | 'float4'
  | 'float8'
  | 'numeric'
  | 'text'
  | 'varchar'
  | 'bpchar'
  | 'bytea'
  | 'json'
  | 'uuid'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'time'
  | 'interval'
  | 'array'
  | 'enum'
  | 'other';

const O = PgTypeOid;
const BY_OID: ReadonlyMap<number, PgTypeKind> = new Map<number, PgTypeKind>([
  [O.bool, 'bool'],
  [O.bytea, 'bytea'],
  [O.char, 'bpchar'],
  [O.name, 'text'],
  [O.int8, 'int8'],
  [O.int2, 'int2'],
  [O.int4, 'int4'],
  [O.text, 'text'],
  [O.oid, 'int8'], // unsigned 32-bit, does not fit int4
  [O.json, 'json'],
  [O.float4, 'float4'],
  [O.float8, 'float8'],
  [O.bpchar, 'bpchar'],
  [O.varchar, 'varchar'],
  [O.date, 'date'],
  [O.time, 'time'],
  [O.timestamp, 'timestamp'],
  [O.timestamptz, 'timestamptz'],
  [O.interval, 'interval'],
  [O.numeric, 'numeric'],
  [O.uuid, 'uuid'],
  [O.jsonb, 'json'],
]);

export function pgTypeKind(column: ColumnSchema, table: Pick<TableSchema, 'enums'>): PgTypeKind {
  if (column.typeName.endsWith('[]')) return 'array';
  const kind = BY_OID.get(column.typeOid);
  if (kind) return kind;
  if (isEnum(column.typeName, table)) return 'enum';
  return 'other';
}

function isEnum(typeName: string, table: Pick<TableSchema, 'enums'>): boolean {
  const bare = (s: string) => s.replaceAll('"', '');
  const name = bare(typeName);
  return table.enums.some((e) => name === `${e.schema}.${e.name}` || name === e.name);
}

/** `numeric(p,s)` → {precision, scale}; null for unconstrained numeric. */
export function numericPrecision(column: ColumnSchema): { precision: number; scale: number } | null {
  const m = /^numeric\((\d+)(?:,\s*(-?\d+))?\)$/.exec(column.typeName);
  if (!m) return null;
  return { precision: Number(m[1]), scale: Number(m[2] ?? 0) };
}

/** The declared length of `character varying(n)` / `character(n)`, or null when unbounded. */
export function charLength(column: ColumnSchema): number | null {
  const m = /\((\d+)\)$/.exec(column.typeName);
  return m ? Number(m[1]) : null;
}

/** bytea's hex text form (`\\x0a1b…`, what the source session prints) as bytes. */
export function byteaFromText(text: string): Buffer {
  const bytes = decodeCell(text, PgTypeOid.bytea) as Uint8Array;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Bytes back to bytea's hex text form. */
export function byteaToText(bytes: Uint8Array): string {
  return encodeText(bytes) ?? '';
}
