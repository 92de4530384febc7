/**
 * Text-form cells ⇄ typed Values (the mapping table is in `value.ts`), PostgreSQL's ordering,
 * and a canonical hash key. `encodeText(decodeCell(t, oid), oid) === t` for every text PostgreSQL
 * prints with the source session settings.
 *
 * Enums and other user types arrive with per-database OIDs. Pass the column's `typeName` hint to
 * say what they are: `enum:<name>` (e.g. `enum:public.mood`, see `typeHintFor`) decodes to a
 * string, `enum:<name>[]` to a PgArray of strings; anything else unknown is OpaqueText.
 */
import type { ColumnSchema, EnumType } from '../core/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { Numeric } from './numeric.ts';
import { formatArrayLiteral, parseArrayLiteral, type ArrayItem } from './pg-array.ts';
import { PgTypeOid, builtinTypeName, elementOidOf } from './pg-type-oids.ts';
import { PgDate, PgInterval, PgTimestamp } from './temporal.ts';
import { JsonText, OpaqueText, PgArray, type Value } from './value.ts';

/** Element OID carried by arrays of enum values (no built-in OID applies). */
export const ENUM_ELEMENT_OID = 0;

const ENUM_HINT = 'enum:';

/** The `typeName` hint for a column: `enum:<name>` for enum columns (and `…[]` for their arrays). */
export function typeHintFor(column: ColumnSchema, enums: readonly EnumType[]): string {
  const isArray = column.typeName.endsWith('[]');
  const base = isArray ? column.typeName.slice(0, -2) : column.typeName;
  const quoted = (n: string) => `"${n.replaceAll('"', '""')}"`;
  const isEnum = enums.some(
    (e) =>
      base === `${e.schema}.${e.name}` || base === e.name || base === `${quoted(e.schema)}.${quoted(e.name)}`,
  );
  return isEnum ? `${ENUM_HINT}${column.typeName}` : column.typeName;
}

function invalid(text: string, type: string): TidemarkError {
  return new TidemarkError('VALUE_INVALID_TEXT', { detail: `"${text}" is not a ${type}` });
}

/** int2/int4/oid text: a digit loop (the hot path of decoding; no regex, no Number()). */
function parseInt32(text: string, type: string): number {
  const len = text.length;
  let i = text.charCodeAt(0) === 45 ? 1 : 0;
  if (len === i || len > 11) throw invalid(text, type);
  let n = 0;
  for (; i < len; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) throw invalid(text, type);
    n = n * 10 + d;
  }
  return text.charCodeAt(0) === 45 ? -n : n;
}

function parseFloat(text: string): number {
  if (text === 'NaN') return NaN;
  if (text === 'Infinity') return Infinity;
  if (text === '-Infinity') return -Infinity;
  const n = Number(text);
  if (Number.isNaN(n) || text === '') throw invalid(text, 'float');
  return n;
}

function parseBytea(text: string): Uint8Array {
  if (!text.startsWith('\\x') || text.length % 2 !== 0)
    throw invalid(text.slice(0, 40), 'bytea in hex format');
  const hex = text.slice(2);
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw invalid(text.slice(0, 40), 'bytea in hex format');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/**
 * The typed value of a text-form cell of type `typeOid` (see `value.ts`). `typeName` is the
 * column's hint for non-built-in types (module doc). Throws VALUE_INVALID_TEXT on a malformed cell.
 */
export function decodeCell(text: string | null, typeOid: number, typeName?: string): Value {
  if (text === null) return null;
  switch (typeOid) {
    case PgTypeOid.text:
    case PgTypeOid.varchar:
    case PgTypeOid.bpchar:
    case PgTypeOid.name:
    case PgTypeOid.uuid:
    case PgTypeOid.char:
      return text;
    case PgTypeOid.int4:
    case PgTypeOid.int2:
    case PgTypeOid.oid:
      return parseInt32(text, 'integer');
    case PgTypeOid.int8:
      try {
        if (text === '') throw new SyntaxError('empty');
        return BigInt(text);
      } catch (cause) {
        throw new TidemarkError('VALUE_INVALID_TEXT', { detail: `"${text}" is not a bigint`, cause });
      }
    case PgTypeOid.bool:
      if (text === 't') return true;
      if (text === 'f') return false;
      throw invalid(text, 'boolean');
    case PgTypeOid.float4:
    case PgTypeOid.float8:
      return parseFloat(text);
    case PgTypeOid.numeric:
      return Numeric.parse(text);
    case PgTypeOid.bytea:
      return parseBytea(text);
    case PgTypeOid.json:
    case PgTypeOid.jsonb:
      return new JsonText(text);
    case PgTypeOid.date:
      return PgDate.parse(text);
    case PgTypeOid.timestamp:
      return PgTimestamp.parse(text, { withTimeZone: false });
    case PgTypeOid.timestamptz:
      return PgTimestamp.parse(text, { withTimeZone: true });
    case PgTypeOid.interval:
      return PgInterval.parse(text);
  }
  const elementOid = elementOidOf(typeOid);
  if (elementOid !== undefined) return decodeArray(text, elementOid);
  if (typeName?.startsWith(ENUM_HINT)) {
    return typeName.endsWith('[]') ? decodeArray(text, ENUM_ELEMENT_OID) : text;
  }
  return new OpaqueText(text, typeName ?? builtinTypeName(typeOid) ?? `oid ${typeOid}`);
}

function decodeArray(text: string, elementOid: number): PgArray {
  const parsed = parseArrayLiteral(text, { delimiter: elementOid === PgTypeOid.box ? ';' : ',' });
  const name = builtinTypeName(elementOid) ?? 'enum';
  const element = (item: ArrayItem): Value =>
    item === null || typeof item === 'string'
      ? elementOid === ENUM_ELEMENT_OID
        ? item
        : decodeCell(item, elementOid, name)
      : new PgArray(item.map(element), elementOid);
  const elements = parsed.items.map(element);
  const lbs = parsed.lowerBounds;
  return lbs && lbs.some((lb) => lb !== 1)
    ? new PgArray(elements, elementOid, lbs)
    : new PgArray(elements, elementOid);
}

/**
 * The text form PostgreSQL prints for `v` (inverse of `decodeCell`). `typeOid` is needed only to
 * print a float4 the way float4_out does (shortest digits for single precision).
 */
export function encodeText(v: Value, typeOid?: number): string | null {
  if (v === null) return null;
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
      return v ? 't' : 'f';
    case 'bigint':
      return v.toString();
    case 'number':
      return typeOid === PgTypeOid.float4 ? formatFloat4(v) : formatFloat8(v);
  }
  if (v instanceof Uint8Array)
    return '\\x' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (v instanceof PgArray) {
    const item = (e: Value): ArrayItem =>
      e instanceof PgArray ? e.elements.map(item) : encodeText(e, v.elementOid);
    return formatArrayLiteral(v.elements.map(item), {
      delimiter: v.elementOid === PgTypeOid.box ? ';' : ',',
      lowerBounds: v.lowerBounds,
    });
  }
  return v.toString();
}

/** float8_out (shortest round-trip digits; exponent form below 1e-4 and from 1e15). */
export function formatFloat8(v: number): string {
  return formatShortest(v, v.toExponential(), 15);
}

/** float4_out: the shortest digits that read back as the same single-precision value. */
export function formatFloat4(v: number): string {
  const f = Math.fround(v);
  if (!Number.isFinite(f)) return formatFloat8(f);
  let exp = f.toExponential(8);
  for (let p = 1; p <= 9; p++) {
    const candidate = f.toExponential(p - 1);
    if (Math.fround(Number(candidate)) === f) {
      exp = candidate;
      break;
    }
  }
  return formatShortest(f, exp, 6);
}

/** Lays out digits from JS exponent form `d.ddde±x` as PostgreSQL's float output does. */
function formatShortest(v: number, expForm: string, sciFrom: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const [mantissa = '', expText = '0'] = expForm.split('e');
  const exp = Number(expText);
  const neg = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = neg ? '-' : '';
  if (exp < -4 || exp >= sciFrom) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp);
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' + e : e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return sign + digits + '0'.repeat(exp + 1 - digits.length);
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/** Rank of each kind of value, so values of different kinds still order totally. */
function kindRank(v: Exclude<Value, null>): number {
  switch (typeof v) {
    case 'boolean':
      return 0;
    case 'number':
    case 'bigint':
      return 1;
    case 'string':
      return 3;
  }
  if (v instanceof Numeric) return 1;
  if (v instanceof Uint8Array) return 4;
  if (v instanceof PgDate || v instanceof PgTimestamp) return 5;
  if (v instanceof PgInterval) return 6;
  if (v instanceof PgArray) return 7;
  return 8; // JsonText, OpaqueText
}

/** Strings in C collation: UTF-8 byte order, i.e. code point order (not UTF-16 unit order). */
export function compareStringsC(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800–0xDFFF) encode code points above 0xFFFF: move them after 0xE000–0xFFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

function compareNumbers(a: number, b: number): number {
  // float8 ordering: NaN is the largest value and equals itself; -0 equals 0.
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function toNumeric(v: number | bigint | Numeric): Numeric {
  if (v instanceof Numeric) return v;
  return typeof v === 'bigint' ? Numeric.fromBigInt(v) : Numeric.fromNumber(v);
}

function flatten(a: PgArray, out: Value[] = []): Value[] {
  for (const e of a.elements) {
    if (e instanceof PgArray) flatten(e, out);
    else out.push(e);
  }
  return out;
}

/** Dimension lengths and lower bounds, e.g. `2x3@0:1`: what PostgreSQL compares after elements. */
function arrayShape(a: PgArray): string {
  const dims: number[] = [];
  let level: PgArray | undefined = a;
  while (level) {
    dims.push(level.elements.length);
    const first: Value | undefined = level.elements[0];
    level = first instanceof PgArray ? first : undefined;
  }
  return `${dims.join('x')}@${a.lowerBounds?.join(':') ?? ''}`;
}

/**
 * PostgreSQL's ordering of two values of one column type (`ORDER BY x ASC`, C collation for
 * text): NULLs last, NaN above every number, -Infinity/Infinity at the ends, intervals by their
 * 30-day-month span, arrays element by element (NULL elements last) then by length.
 */
export function compareValues(a: Value, b: Value): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  const ka = kindRank(a);
  const kb = kindRank(b);
  if (ka !== kb) return ka - kb;
  if (typeof a === 'string' && typeof b === 'string') return compareStringsC(a, b);
  if (typeof a === 'number' && typeof b === 'number') return compareNumbers(a, b);
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (ka === 1)
    return toNumeric(a as number | bigint | Numeric).compare(toNumeric(b as number | bigint | Numeric));
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b);
  if (a instanceof PgDate && b instanceof PgDate) return a.compare(b);
  if (a instanceof PgTimestamp && b instanceof PgTimestamp) return a.compare(b);
  if (a instanceof PgDate || b instanceof PgDate) {
    const ta = a instanceof PgDate ? a.toTimestamp({ withTimeZone: false }) : (a as PgTimestamp);
    const tb = b instanceof PgDate ? b.toTimestamp({ withTimeZone: false }) : (b as PgTimestamp);
    return ta.compare(tb);
  }
  if (a instanceof PgInterval && b instanceof PgInterval) return a.compare(b);
  if (a instanceof PgArray && b instanceof PgArray) {
    const ea = flatten(a);
    const eb = flatten(b);
    const n = Math.min(ea.length, eb.length);
    for (let i = 0; i < n; i++) {
      const c = compareValues(ea[i] ?? null, eb[i] ?? null);
      if (c !== 0) return c;
    }
    if (ea.length !== eb.length) return ea.length - eb.length;
    return compareStringsC(arrayShape(a), arrayShape(b));
  }
  return compareStringsC(String(a), String(b));
}

/** Equality as `IS NOT DISTINCT FROM`: NULL equals NULL, NaN equals NaN, 1.0 equals 1.00. */
export function valuesEqual(a: Value, b: Value): boolean {
  return compareValues(a, b) === 0;
}

/**
 * A canonical, type-tagged string, equal exactly when `valuesEqual` holds (for values of one
 * column type): numerics by canonical digits (integral ones share the tag of integers),
 * intervals by span, timestamps by instant. Strings carry their length, so keys of several
 * columns can be joined (`hashRowKey`) without ambiguity.
 */
export function hashKey(v: Value): string {
  if (v === null) return 'N';
  switch (typeof v) {
    case 'string':
      return `s${v.length}:${v}`;
    case 'boolean':
      return v ? 'T' : 'F';
    case 'bigint':
      return `i${v}`;
    case 'number':
      if (Number.isInteger(v)) return `i${v === 0 ? 0 : v}`;
      return `f${v}`;
  }
  if (v instanceof Numeric) {
    const c = v.canonical();
    return v.isFinite() && !c.includes('.') ? `i${c}` : `n${c}`;
  }
  if (v instanceof Uint8Array)
    return `b${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')};`;
  if (v instanceof PgDate) return `d${v.days}`;
  if (v instanceof PgTimestamp) return v.special ? `t${v.special}` : `t${v.micros}`;
  if (v instanceof PgInterval) return `v${v.spanMicros()}`;
  if (v instanceof PgArray) {
    return `a${arrayShape(v)}[${v.elements.map(hashKey).join(',')}]`;
  }
  return `o${v.text.length}:${v.text}`;
}

/** One key for several values (a row's key columns). */
export function hashRowKey(values: readonly Value[]): string {
  return values.map(hashKey).join(',');
}
