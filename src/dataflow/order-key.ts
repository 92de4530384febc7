/**
 * Order keys: strings whose plain lexical order (JS `<`, which equals UTF-8 byte order for the
 * ASCII these are made of) is the SQL order of the values. Ordered operators (min/max,
 * string_agg, top-n) put them into state-store keys so that an ordered store — memory or LMDB —
 * hands back the extreme or the first n rows directly, without reading a whole group.
 *
 * Each encoded value is prefix-free and uses only ASCII 0x21..0x7e, so keys concatenate and
 * DESC is the character-wise mirror (c → 0x9f − c), which reverses the order of prefix-free codes.
 *
 *   null   '~' (NULLS LAST)  or '!' (NULLS FIRST)
 *   bool   'b' '0'|'1'
 *   float  'd' 16 hex digits of the IEEE bits, sign-flipped (NaN above +Infinity, -0 = 0)
 *   bigint 'i' sign '0'|'1', digit count (one char), digits (mirrored when negative)
 *   text   's' UTF-8 bytes in hex, '!'  (C collation: byte order)
 *   bytea  'x' hex, '!'
 *   other  'o' hex of UTF-8 of v.sortKey(), '!'  (the class promises sortKey order = SQL order)
 *
 * The planner passes an `OrderKeyFn` to the ordered operators; `orderKeyOf` builds one for ORDER BY
 * lists of built-in values. For text under a non-C collation it can supply its own function.
 */
import type { Value } from '../decode/value.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

/** Maps a row (or a value list) to its order key; equal keys mean "tie". */
export type OrderKeyFn = (row: readonly Value[]) => string;

export interface SortColumn {
  /** Index of the column in the row the key is computed from. */
  readonly column: number;
  readonly descending?: boolean;
  /** PostgreSQL default: NULLS LAST for ASC, NULLS FIRST for DESC. */
  readonly nullsFirst?: boolean;
}

/** An order key function for `ORDER BY` over columns holding built-in values. */
export function orderKeyOf(columns: readonly SortColumn[]): OrderKeyFn {
  return (row) => {
    let out = '';
    for (const c of columns) {
      const desc = c.descending ?? false;
      const nullsFirst = c.nullsFirst ?? desc;
      out += orderToken(row[c.column] ?? null, { descending: desc, nullsFirst });
    }
    return out;
  };
}

/** The order token of one value (see the header). */
export function orderToken(v: Value, options: { descending: boolean; nullsFirst: boolean }): string {
  // Nulls are placed after mirroring so that NULLS FIRST/LAST mean the final position.
  if (v === null) return options.nullsFirst ? '!' : '~';
  const token = ascendingToken(v);
  return options.descending ? mirror(token) : token;
}

function ascendingToken(v: Exclude<Value, null>): string {
  switch (typeof v) {
    case 'boolean':
      return v ? 'b1' : 'b0';
    case 'number':
      return `d${floatHex(v)}`;
    case 'bigint':
      return `i${bigintDigits(v)}`;
    case 'string':
      return `s${Buffer.from(v, 'utf8').toString('hex')}!`;
  }
  if (v instanceof Uint8Array)
    return `x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}!`;
  const obj = v as { sortKey?: () => string };
  if (typeof obj.sortKey === 'function') return `o${Buffer.from(obj.sortKey(), 'utf8').toString('hex')}!`;
  throw new TidemarkError('DATAFLOW_UNSUPPORTED_VALUE', {
    detail: `cannot order values of class ${v.constructor.name}: it has no sortKey(); pass an OrderKeyFn for it`,
  });
}

const floatView = new DataView(new ArrayBuffer(8));

function floatHex(v: number): string {
  floatView.setFloat64(0, Number.isNaN(v) ? NaN : v === 0 ? 0 : v);
  let hi = floatView.getUint32(0);
  let lo = floatView.getUint32(4);
  if (hi & 0x80000000) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
  } else {
    hi = (hi | 0x80000000) >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

function bigintDigits(v: bigint): string {
  const digits = (v < 0n ? -v : v).toString();
  if (digits.length > 90) {
    throw new TidemarkError('DATAFLOW_UNSUPPORTED_VALUE', {
      detail: `integer with ${digits.length} digits is too long to order`,
    });
  }
  const body = String.fromCharCode(0x21 + digits.length) + digits;
  return v < 0n ? `0${mirror(body)}` : `1${body}`;
}

function mirror(token: string): string {
  let out = '';
  for (let i = 0; i < token.length; i++) out += String.fromCharCode(0x9f - token.charCodeAt(i));
  return out;
}
