/**
 * One canonical text per value, so that a row read from two different databases compares equal
 * exactly when it holds the same values (`tidemark verify`, reconcile). Every side first turns
 * what it stored back into the pivot text form (PostgreSQL's text output, `row.ts`); this module
 * then removes the differences of form that are not differences of value:
 *
 * | family       | canonical form                                                                    |
 * |--------------|-----------------------------------------------------------------------------------|
 * | NULL         | null — never equal to '' (the empty string stays '')                             |
 * | bool         | `t` / `f` (from `t`, `true`, `1`, …)                                              |
 * | integers     | decimal digits, no `+`, no leading zeros, `-0` → `0`                              |
 * | numeric      | no trailing fraction zeros (`1.50` = `1.5` = `1.500`), `-0` → `0`; NaN, ±Infinity |
 * | float4/8     | shortest round-trip text of the value (float4 rounded to single precision); `-0` → `0` |
 * | bytea        | `\x` + lowercase hex                                                              |
 * | timestamptz  | UTC, `YYYY-MM-DD HH:MM:SS[.ffffff]` without trailing fraction zeros, `Z`          |
 * | timestamp, time | fraction without trailing zeros                                                |
 * | json, jsonb  | parsed and printed with sorted keys and no spaces (numbers as IEEE doubles)       |
 * | uuid         | lowercase                                                                         |
 * | char(n)      | trailing spaces removed (PostgreSQL ignores them too; MySQL CHAR drops them)      |
 * | arrays       | re-printed as `array_out` would, each element canonical by the element's family   |
 * | anything else| the text as it is                                                                 |
 *
 * The numeric scale is dropped on purpose: a downstream `DECIMAL(12,4)` holding `1.5000` holds the
 * value of the source's `1.5`. A sink that rounds (it never should) shows as a difference.
 */
import { createHash } from 'node:crypto';
import type { ColumnSchema } from '../core/table-schema.ts';
import type { Row } from '../core/row.ts';
import { formatArrayLiteral, parseArrayLiteral, type ArrayItem } from '../decode/pg-array.ts';

/** pg_type OIDs of the families above (the pivot type system is PostgreSQL's). */
const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

export type CanonicalCell = (text: string | null) => string | null;

/** The canonicalising function of one column, decided once per table. */
export function canonicalizer(column: Pick<ColumnSchema, 'typeOid' | 'typeName'>): CanonicalCell {
  const f = column.typeName.endsWith('[]') ? canonicalArray(column.typeName) : canonicalText(column.typeOid);
  return (text) => (text === null ? null : f(text));
}

function canonicalText(typeOid: number): (text: string) => string {
  switch (typeOid) {
    case OID.bool:
      return canonicalBool;
    case OID.int2:
    case OID.int4:
    case OID.int8:
    case OID.oid:
    case OID.numeric:
      return canonicalNumeric;
    case OID.float4:
      return (t) => canonicalFloat(t, true);
    case OID.float8:
      return (t) => canonicalFloat(t, false);
    case OID.bytea:
      return (t) => (t.startsWith('\\x') ? `\\x${t.slice(2).toLowerCase()}` : t);
    case OID.timestamptz:
      return canonicalTimestamptz;
    case OID.timestamp:
    case OID.time:
      return trimFraction;
    case OID.json:
    case OID.jsonb:
      return canonicalJson;
    case OID.uuid:
      return (t) => t.toLowerCase();
    case OID.bpchar:
      return (t) => t.replace(/ +$/, '');
    default:
      return (t) => t;
  }
}

/** Element type names (`format_type`) of the families above, for arrays. */
const ELEMENT_OIDS: readonly [RegExp, number][] = [
  [/^boolean$/, OID.bool],
  [/^(smallint|integer|bigint|oid|numeric(\(.*\))?)$/, OID.numeric],
  [/^real$/, OID.float4],
  [/^double precision$/, OID.float8],
  [/^bytea$/, OID.bytea],
  [/^timestamp(\(\d\))? with time zone$/, OID.timestamptz],
  [/^(timestamp(\(\d\))? without time zone|time(\(\d\))? without time zone)$/, OID.timestamp],
  [/^jsonb?$/, OID.json],
  [/^uuid$/, OID.uuid],
  [/^character(\(\d+\))?$/, OID.bpchar],
];

function canonicalArray(typeName: string): (text: string) => string {
  const element = typeName.replace(/(\[\])+$/, '');
  const oid = ELEMENT_OIDS.find(([re]) => re.test(element))?.[1] ?? 0;
  const f = canonicalText(oid);
  const walk = (items: readonly ArrayItem[]): ArrayItem[] =>
    items.map((it) => (it === null ? null : typeof it === 'string' ? f(it) : walk(it)));
  return (text) => {
    try {
      const parsed = parseArrayLiteral(text);
      return formatArrayLiteral(walk(parsed.items), { lowerBounds: parsed.lowerBounds });
    } catch {
      return text;
    }
  };
}

function canonicalBool(t: string): string {
  const v = t.trim().toLowerCase();
  if (v === 't' || v === 'true' || v === '1' || v === 'y' || v === 'yes' || v === 'on') return 't';
  if (v === 'f' || v === 'false' || v === '0' || v === 'n' || v === 'no' || v === 'off') return 'f';
  return t;
}

/** Exact decimal text: sign, integer digits without leading zeros, fraction without trailing ones. */
export function canonicalNumeric(t: string): string {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(t);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) {
    const special = t.trim().toLowerCase();
    if (special === 'nan') return 'NaN';
    if (special === 'infinity' || special === '+infinity' || special === 'inf') return 'Infinity';
    if (special === '-infinity' || special === '-inf') return '-Infinity';
    return t;
  }
  let digits = (m[2] ?? '') + (m[3] ?? '');
  let point = (m[2] ?? '').length + Number(m[4] ?? 0); // digits before the decimal point
  const lead = /^0*/.exec(digits)![0].length;
  digits = digits.slice(lead);
  point -= lead;
  digits = digits.replace(/0+$/, '');
  if (digits === '') return '0';
  const sign = m[1] === '-' ? '-' : '';
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

function canonicalFloat(t: string, single: boolean): string {
  const s = t.trim();
  const lower = s.toLowerCase();
  if (lower === 'nan') return 'NaN';
  if (lower === 'infinity' || lower === 'inf' || lower === '+infinity') return 'Infinity';
  if (lower === '-infinity' || lower === '-inf') return '-Infinity';
  let v = Number(s);
  if (Number.isNaN(v)) return t;
  if (single) v = Math.fround(v);
  if (Object.is(v, -0)) v = 0;
  return String(v);
}

function trimFraction(t: string): string {
  return t.replace(/\.(\d*?)0+(?=$|[^\d])/, (_m, keep: string) => (keep === '' ? '' : `.${keep}`));
}

const TSTZ =
  /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d(?::?\d\d(?::?\d\d)?)?)?( BC)?$/;

/** A timestamptz as the UTC wall clock, whatever zone it was printed in. */
export function canonicalTimestamptz(t: string): string {
  const m = TSTZ.exec(t.trim());
  if (!m) return t; // infinity, -infinity
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z', bc = ''] = m;
  let offsetSec = 0;
  if (zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const parts = zone.slice(1).replaceAll(':', '');
    offsetSec =
      sign *
      (Number(parts.slice(0, 2)) * 3600 +
        Number(parts.slice(2, 4) || 0) * 60 +
        Number(parts.slice(4, 6) || 0));
  }
  const fraction = frac.replace(/0+$/, '');
  const tail = `${fraction ? `.${fraction}` : ''}Z${bc}`;
  if (offsetSec === 0 || bc) {
    return `${y}-${mo}-${d} ${h}:${mi}:${s}${tail}`;
  }
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s) - offsetSec, 0);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}${tail}`
  );
}

function canonicalJson(t: string): string {
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch {
    return t;
  }
  return stableJson(value);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A table's canonicalisers, one per column. */
export function rowCanonicalizer(
  columns: readonly Pick<ColumnSchema, 'typeOid' | 'typeName'>[],
): (row: Row) => Row {
  const fs = columns.map(canonicalizer);
  return (row) => fs.map((f, i) => f(row[i] ?? null));
}

/** The canonical cells as one unambiguous string (NULL and '' differ; no separator can collide). */
export function encodeCells(cells: readonly (string | null)[]): string {
  return JSON.stringify(cells);
}

/** 64 bits of MD5 over a canonical row's encoding, as an unsigned bigint (chunk sums add these). */
export function rowHash64(encoded: string): bigint {
  return createHash('md5').update(encoded).digest().readBigUInt64BE(0);
}
