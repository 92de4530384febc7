/**
 * The types the view compiler reasons about: PostgreSQL's, reduced to the families that change
 * semantics (integer widths overflow differently, numeric is exact, text compares by code point
 * under the C collation). Anything else is `other` and can only be passed through, grouped,
 * compared for equality or tested for NULL.
 */
export type SqlKind =
  | 'bool'
  | 'int2'
  | 'int4'
  | 'int8'
  | 'float4'
  | 'float8'
  | 'numeric'
  | 'text'
  /** character(n): stored and printed padded; compared and cast to text without trailing spaces. */
  | 'bpchar'
  | 'date'
  | 'timestamp'
  | 'timestamptz'
  | 'interval'
  | 'json'
  | 'bytea'
  /** An untyped literal or NULL whose type the context decides (PostgreSQL's `unknown`). */
  | 'unknown'
  | 'other';

export interface SqlType {
  readonly kind: SqlKind;
  /** `format_type` spelling, e.g. `bigint`, `numeric(12,2)`, `character varying(20)`. */
  readonly typeName: string;
  /** numeric(p,s) scale when declared, for casts that round. */
  readonly scale?: number;
}

const CANONICAL: Record<SqlKind, string> = {
  bool: 'boolean',
  int2: 'smallint',
  int4: 'integer',
  int8: 'bigint',
  float4: 'real',
  float8: 'double precision',
  numeric: 'numeric',
  text: 'text',
  bpchar: 'bpchar',
  date: 'date',
  timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone',
  interval: 'interval',
  json: 'jsonb',
  bytea: 'bytea',
  unknown: 'text',
  other: 'text',
};

const TYPE_OIDS: Partial<Record<SqlKind, number>> = {
  bool: 16,
  int2: 21,
  int4: 23,
  int8: 20,
  float4: 700,
  float8: 701,
  numeric: 1700,
  text: 25,
  bpchar: 1042,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  json: 3802,
  bytea: 17,
  unknown: 25,
};

export function sqlType(kind: SqlKind): SqlType {
  return { kind, typeName: CANONICAL[kind] };
}

export function typeOid(t: SqlType): number {
  return TYPE_OIDS[t.kind] ?? 0;
}

/** Classifies a `format_type` name from the catalog or a cast (`int4`, `numeric(10,2)`, …). */
export function typeFromName(name: string): SqlType {
  const n = name
    .trim()
    .toLowerCase()
    .replace(/^pg_catalog\./, '');
  const base = n.replace(/\(.*\)$/, '').trim();
  const kind = KIND_BY_NAME[base];
  if (kind === undefined) return { kind: 'other', typeName: name };
  if (kind === 'numeric') {
    const m = /^numeric\s*\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)$/.exec(n);
    if (m) {
      const scale = Number(m[2] ?? 0);
      return { kind, typeName: `numeric(${m[1]},${scale})`, scale };
    }
    return sqlType('numeric');
  }
  if ((kind === 'text' && base !== 'text') || (kind === 'bpchar' && base !== 'bpchar'))
    return { kind, typeName: n };
  return sqlType(kind);
}

const KIND_BY_NAME: Record<string, SqlKind> = {
  bool: 'bool',
  boolean: 'bool',
  int2: 'int2',
  smallint: 'int2',
  int4: 'int4',
  int: 'int4',
  integer: 'int4',
  int8: 'int8',
  bigint: 'int8',
  float4: 'float4',
  real: 'float4',
  float8: 'float8',
  'double precision': 'float8',
  numeric: 'numeric',
  decimal: 'numeric',
  text: 'text',
  varchar: 'text',
  'character varying': 'text',
  bpchar: 'bpchar',
  character: 'bpchar',
  char: 'bpchar',
  name: 'text',
  date: 'date',
  timestamp: 'timestamp',
  'timestamp without time zone': 'timestamp',
  timestamptz: 'timestamptz',
  'timestamp with time zone': 'timestamptz',
  interval: 'interval',
  json: 'json',
  jsonb: 'json',
  bytea: 'bytea',
};

export const isInteger = (k: SqlKind): boolean => k === 'int2' || k === 'int4' || k === 'int8';
export const isFloat = (k: SqlKind): boolean => k === 'float4' || k === 'float8';
export const isNumericFamily = (k: SqlKind): boolean => isInteger(k) || isFloat(k) || k === 'numeric';
export const isTemporal = (k: SqlKind): boolean => k === 'date' || k === 'timestamp' || k === 'timestamptz';

/** PostgreSQL's numeric type hierarchy, for implicit promotion (int2 < int4 < int8 < numeric < float). */
const NUMERIC_RANK: Partial<Record<SqlKind, number>> = {
  int2: 1,
  int4: 2,
  int8: 3,
  numeric: 4,
  float4: 5,
  float8: 6,
};

/**
 * The common type two operands are implicitly cast to (UNION, CASE, COALESCE, comparisons), or
 * undefined when PostgreSQL would refuse. `unknown` literals adopt the other side's type.
 */
export function commonType(a: SqlType, b: SqlType): SqlType | undefined {
  if (a.kind === 'unknown') return b.kind === 'unknown' ? sqlType('text') : b;
  if (b.kind === 'unknown') return a;
  if (a.kind === b.kind) return a.typeName === b.typeName ? a : sqlType(a.kind);
  const ra = NUMERIC_RANK[a.kind];
  const rb = NUMERIC_RANK[b.kind];
  if (ra !== undefined && rb !== undefined) return ra >= rb ? sqlType(a.kind) : sqlType(b.kind);
  const pair = new Set([a.kind, b.kind]);
  if (pair.has('bpchar') && pair.has('text')) return sqlType('text');
  if (pair.has('date') && pair.has('timestamp')) return sqlType('timestamp');
  if (pair.has('timestamptz') && (pair.has('date') || pair.has('timestamp'))) return sqlType('timestamptz');
  return undefined;
}
