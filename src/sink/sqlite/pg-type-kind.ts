/**
 * Classifies a PostgreSQL column type into the few kinds non-PostgreSQL sinks map differently.
 * Shared by the SQLite, MySQL, file and NATS sinks; decided by type OID for built-in types, by
 * `typeName` for arrays (`…[]`) and for enums (matched against `TableSchema.enums`).
 */
import type { ColumnSchema, TableSchema } from '../../decode/table-schema.ts';

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

const BY_OID: ReadonlyMap<number, PgTypeKind> = new Map<number, PgTypeKind>([
  [16, 'bool'],
  [17, 'bytea'],
  [18, 'bpchar'], // "char"
  [19, 'text'], // name
  [20, 'int8'],
  [21, 'int2'],
  [23, 'int4'],
  [25, 'text'],
  [26, 'int8'], // oid: unsigned 32-bit, does not fit int4
  [114, 'json'],
  [700, 'float4'],
  [701, 'float8'],
  [1042, 'bpchar'],
  [1043, 'varchar'],
  [1082, 'date'],
  [1083, 'time'],
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [1186, 'interval'],
  [1700, 'numeric'],
  [2950, 'uuid'],
  [3802, 'json'],
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

/** bytea's text form (`\x0a1b…`, hex output) as bytes. */
export function byteaFromText(text: string): Buffer {
  if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex');
  return byteaFromEscape(text);
}

/** The legacy `escape` output (bytea_output = escape): octal escapes and doubled backslashes. */
function byteaFromEscape(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x5c) {
      out.push(c);
    } else if (text[i + 1] === '\\') {
      out.push(0x5c);
      i++;
    } else {
      out.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    }
  }
  return Buffer.from(out);
}

/** Bytes back to bytea's hex text form. */
export function byteaToText(bytes: Uint8Array): string {
  return `\\x${Buffer.from(bytes).toString('hex')}`;
}
