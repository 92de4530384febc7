/**
 * Runtime operations on typed values with PostgreSQL's semantics: integer overflow is an error
 * (int2/int4/int8 each with its own range and message), integer division truncates, division by
 * zero is an error, numeric stays exact. Callers have already coerced both operands to one type
 * (see `sql-type.ts` `commonType`), so each function switches on that one kind. NULL never
 * reaches these functions: the compiler propagates it first.
 */
import { Numeric } from '../decode/numeric.ts';
import type { Value } from '../decode/value.ts';
import type { SqlKind } from './sql-type.ts';

/** A PostgreSQL runtime error (its own message text); wrapped with the view's name by the compiler. */
export class SqlRuntimeError extends Error {
  override readonly name = 'SqlRuntimeError';
}

const INT_RANGE: Record<'int2' | 'int4', [number, number, string]> = {
  int2: [-32768, 32767, 'smallint out of range'],
  int4: [-2147483648, 2147483647, 'integer out of range'],
};
const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

export function checkInt(kind: SqlKind, v: number | bigint): number | bigint {
  if (kind === 'int8') {
    const b = v as bigint;
    if (b < INT8_MIN || b > INT8_MAX) throw new SqlRuntimeError('bigint out of range');
    return b;
  }
  const [lo, hi, msg] = INT_RANGE[kind as 'int2' | 'int4'];
  const n = v as number;
  if (n < lo || n > hi) throw new SqlRuntimeError(msg);
  return n;
}

function checkFloat(kind: SqlKind, r: number, a: number, b: number): number {
  if (!Number.isFinite(r) && Number.isFinite(a) && Number.isFinite(b)) {
    throw new SqlRuntimeError('value out of range: overflow');
  }
  return kind === 'float4' ? Math.fround(r) : r;
}

export type ArithOp = '+' | '-' | '*' | '/' | '%';

export function arith(kind: SqlKind, op: ArithOp, a: Value, b: Value): Value {
  switch (kind) {
    case 'int2':
    case 'int4': {
      const x = a as number;
      const y = b as number;
      if ((op === '/' || op === '%') && y === 0) throw new SqlRuntimeError('division by zero');
      // A float product is exact below 2^53 and far out of range above it, so the check holds.
      const r =
        op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : op === '/' ? Math.trunc(x / y) : x % y;
      return checkInt(kind, r === 0 ? 0 : r);
    }
    case 'int8': {
      const x = a as bigint;
      const y = b as bigint;
      if ((op === '/' || op === '%') && y === 0n) throw new SqlRuntimeError('division by zero');
      const r = op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : op === '/' ? x / y : x % y;
      return checkInt(kind, r);
    }
    case 'float4':
    case 'float8': {
      const x = a as number;
      const y = b as number;
      if ((op === '/' || op === '%') && y === 0) throw new SqlRuntimeError('division by zero');
      if (op === '%')
        throw new SqlRuntimeError('operator does not exist: double precision % double precision');
      const r = op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : x / y;
      return checkFloat(kind, r, x, y);
    }
    case 'numeric': {
      const x = a as Numeric;
      const y = b as Numeric;
      if ((op === '/' || op === '%') && y.isZero()) throw new SqlRuntimeError('division by zero');
      if (op === '+') return x.add(y);
      if (op === '-') return x.sub(y);
      if (op === '*') return x.mul(y);
      if (op === '/') return x.div(y);
      // numeric_mod: x - trunc(x / y) * y, at the larger scale.
      const q = x.divToScale(y, Math.max(x.scale, y.scale) + 1).trunc(0);
      return x.sub(q.mul(y));
    }
    default:
      throw new SqlRuntimeError(`operator does not exist: ${kind} ${op} ${kind}`);
  }
}

export function negate(kind: SqlKind, a: Value): Value {
  if (kind === 'int8') return checkInt(kind, -(a as bigint));
  if (kind === 'numeric') return (a as Numeric).neg();
  const r = -(a as number);
  return kind === 'int2' || kind === 'int4' ? checkInt(kind, r === 0 ? 0 : r) : r;
}

export function abs(kind: SqlKind, a: Value): Value {
  if (kind === 'int8') return checkInt(kind, (a as bigint) < 0n ? -(a as bigint) : (a as bigint));
  if (kind === 'numeric') return (a as Numeric).abs();
  const r = Math.abs(a as number);
  return kind === 'int2' || kind === 'int4' ? checkInt(kind, r) : r;
}

interface Ordered {
  compare(other: never): number;
}

/**
 * Total order of two non-null values of one kind, as PostgreSQL sorts them (text by code point,
 * the C collation; NaN above every other float).
 */
export function compareValues(a: Value, b: Value): number {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
    if (Number.isNaN(b)) return -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return compareText(a, b);
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b ? 0 : a ? 1 : -1;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b);
  if (a !== null && typeof a === 'object' && typeof (a as unknown as Ordered).compare === 'function') {
    return (a as unknown as { compare(o: unknown): number }).compare(b);
  }
  return compareText(String(a), String(b));
}

/** Code-point order (what PostgreSQL's C collation gives for UTF-8). */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length < b.length ? -1 : 1;
}

export function toNumeric(kind: SqlKind, v: Value): Numeric {
  if (kind === 'numeric') return v as Numeric;
  if (kind === 'int8') return Numeric.fromBigInt(v as bigint);
  return Numeric.fromNumber(v as number);
}
