/**
 * Serializes rows of Values for the state store (memory or disk): JSON where every value that
 * JSON cannot carry exactly is a tagged array `[tag, payload]`.
 *
 *   null, true/false, finite numbers except -0, strings   → themselves
 *   NaN, ±Infinity, -0                                      → ["f", "NaN" | "Infinity" | "-Infinity" | "-0"]
 *   bigint                                                  → ["i", "123"]
 *   Uint8Array                                              → ["x", base64]
 *   class values                                            → [tag, payload] from the codec registry
 *     numeric "num": text · date "date": days | "±infinity" · timestamp[tz] "ts"/"tstz": µs text
 *     or "±infinity" · interval "iv": [months, days, µs text]
 *
 * Class values register a tag once (`registerValueCodec`), e.g. the decode stage for Numeric and
 * the temporal types. The persisted format is guarded by a golden test (value-codec.test.ts):
 * change it only together with a state migration.
 */
import { Numeric } from '../decode/numeric.ts';
import { PgDate, PgInterval, PgTimestamp } from '../decode/temporal.ts';
import { JsonText, OpaqueText, PgArray, type Value } from '../decode/value.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ValueCodec {
  /** Short, stable, persisted; never reused for another class. */
  readonly tag: string;
  readonly is: (v: object) => boolean;
  readonly encode: (v: Value) => Json;
  readonly decode: (payload: Json) => Value;
}

const byTag = new Map<string, ValueCodec>();
const RESERVED = new Set(['f', 'i', 'x']);

/** Adds a codec for a class of values. Call at module load; a tag may be registered only once. */
export function registerValueCodec(codec: ValueCodec): void {
  const existing = byTag.get(codec.tag);
  if (existing === codec) return;
  if (RESERVED.has(codec.tag) || existing !== undefined) {
    throw new TidemarkError('INTERNAL', { detail: `value codec tag '${codec.tag}' is already taken` });
  }
  byTag.set(codec.tag, codec);
}

export function encodeValue(v: Value): Json {
  if (v === null) return null;
  switch (typeof v) {
    case 'boolean':
    case 'string':
      return v;
    case 'number':
      if (Number.isFinite(v) && !Object.is(v, -0)) return v;
      return ['f', Object.is(v, -0) ? '-0' : String(v)];
    case 'bigint':
      return ['i', v.toString()];
  }
  if (v instanceof Uint8Array)
    return ['x', Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')];
  for (const codec of byTag.values()) if (codec.is(v)) return [codec.tag, codec.encode(v)];
  throw new TidemarkError('DATAFLOW_UNSUPPORTED_VALUE', {
    detail: `no value codec is registered for class ${v.constructor.name}`,
  });
}

export function decodeValue(j: Json): Value {
  if (j === null || typeof j === 'boolean' || typeof j === 'number' || typeof j === 'string') return j;
  if (!Array.isArray(j) || j.length !== 2 || typeof j[0] !== 'string') throw corrupt(JSON.stringify(j));
  const [tag, payload] = j as [string, Json];
  switch (tag) {
    case 'f':
      return Number(payload);
    case 'i':
      return BigInt(payload as string);
    case 'x':
      return new Uint8Array(Buffer.from(payload as string, 'base64'));
  }
  const codec = byTag.get(tag);
  if (codec === undefined) throw corrupt(`unknown value tag '${tag}'`);
  return codec.decode(payload);
}

export function encodeRow(row: readonly Value[]): string {
  return JSON.stringify(row.map(encodeValue));
}

export function decodeRow(text: string): Value[] {
  const parsed = JSON.parse(text) as Json;
  if (!Array.isArray(parsed)) throw corrupt(text.slice(0, 80));
  return parsed.map(decodeValue);
}

/**
 * Several rows (e.g. an aggregate group's key, counts and accumulators) as one stored value:
 * the JSON of `rows.map((r) => r.map(encodeValue))`, written without the intermediate arrays.
 * Rows of JSON's own values only (the common group: numbers, text) are JSON.stringify's, the same
 * text in one buffer: the concatenation below allocates ~10× the text's size in pieces (~500 B
 * per aggregate group, the largest allocation of a GROUP BY's upkeep).
 */
export function encodeRows(rows: readonly (readonly Value[])[]): string {
  if (jsonNative(rows)) return JSON.stringify(rows);
  let out = '[';
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as readonly Value[];
    out += i === 0 ? '[' : ',[';
    for (let j = 0; j < row.length; j++) {
      if (j > 0) out += ',';
      out += valueJson(row[j] ?? null);
    }
    out += ']';
  }
  return out + ']';
}

/** Whether every value is written by JSON.stringify as `valueJson` writes it. */
function jsonNative(rows: readonly (readonly Value[])[]): boolean {
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as readonly Value[];
    for (let j = 0; j < row.length; j++) {
      const v = row[j];
      if (typeof v === 'number') {
        if (!Number.isFinite(v) || Object.is(v, -0)) return false;
      } else if (typeof v !== 'string' && typeof v !== 'boolean' && v !== null && v !== undefined)
        return false;
    }
  }
  return true;
}

/** JSON.stringify(encodeValue(v)), with the common primitives written directly. */
function valueJson(v: Value): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (Number.isFinite(v) && !Object.is(v, -0)) return String(v);
      break;
    case 'bigint':
      return `["i","${v}"]`;
    case 'string':
      return JSON.stringify(v);
  }
  return JSON.stringify(encodeValue(v));
}

export function decodeRows(text: string): Value[][] {
  const parsed = JSON.parse(text) as Json;
  if (!Array.isArray(parsed)) throw corrupt(text.slice(0, 80));
  return parsed.map((r) => {
    if (!Array.isArray(r)) throw corrupt(text.slice(0, 80));
    return r.map(decodeValue);
  });
}

function corrupt(detail: string): TidemarkError {
  return new TidemarkError('DATAFLOW_STATE_CORRUPT', { detail: `cannot decode stored value: ${detail}` });
}

registerValueCodec({
  tag: 'json',
  is: (v) => v instanceof JsonText,
  encode: (v) => (v as JsonText).text,
  decode: (p) => new JsonText(p as string),
});
registerValueCodec({
  tag: 'opaque',
  is: (v) => v instanceof OpaqueText,
  encode: (v) => [(v as OpaqueText).text, (v as OpaqueText).typeName],
  decode: (p) => new OpaqueText((p as string[])[0] ?? '', (p as string[])[1] ?? ''),
});
registerValueCodec({
  tag: 'array',
  is: (v) => v instanceof PgArray,
  encode: (v) => {
    const a = v as PgArray;
    const out: Json[] = [a.elementOid, a.elements.map(encodeValue)];
    if (a.lowerBounds !== undefined) out.push([...a.lowerBounds]);
    return out;
  },
  decode: (p) => {
    const [oid, elements, bounds] = p as [number, Json[], number[] | undefined];
    return new PgArray(elements.map(decodeValue), oid, ...(bounds === undefined ? [] : [bounds]));
  },
});
registerValueCodec({
  tag: 'num',
  is: (v) => v instanceof Numeric,
  encode: (v) => (v as Numeric).toString(),
  decode: (p) => Numeric.parse(p as string),
});
registerValueCodec({
  tag: 'date',
  is: (v) => v instanceof PgDate,
  encode: (v) => {
    const d = (v as PgDate).days;
    return Number.isFinite(d) ? d : String(d).toLowerCase();
  },
  decode: (p) => (typeof p === 'number' ? PgDate.fromDays(p) : PgDate.parse(p as string)),
});
for (const withTimeZone of [false, true]) {
  registerValueCodec({
    tag: withTimeZone ? 'tstz' : 'ts',
    is: (v) => v instanceof PgTimestamp && v.withTimeZone === withTimeZone,
    encode: (v) => {
      const t = v as PgTimestamp;
      return t.special ?? t.micros.toString();
    },
    decode: (p) => {
      if (p === 'infinity' || p === '-infinity')
        return PgTimestamp.infinity(p === 'infinity' ? 1 : -1, { withTimeZone });
      return PgTimestamp.fromMicros(BigInt(p as string), { withTimeZone });
    },
  });
}
registerValueCodec({
  tag: 'iv',
  is: (v) => v instanceof PgInterval,
  encode: (v) => {
    const i = v as PgInterval;
    return [i.months, i.days, i.micros.toString()];
  },
  decode: (p) => {
    const [months, days, micros] = p as [number, number, string];
    return new PgInterval(months, days, BigInt(micros));
  },
});
