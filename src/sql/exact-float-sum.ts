/**
 * An exact sum of doubles, kept as sum × 2^exp (a bigint and an integer): every finite double is
 * an integer times a power of two, so adding and retracting are exact and the result does not
 * depend on the order of the changes. A running double sum does: +1e20, +1, −1e20 leaves 0 where
 * PostgreSQL, recomputing the query over the one row left, shows 1. The result is the exact sum
 * rounded once to the nearest double (ties to even), as IEEE 754 rounds a single addition.
 */
import type { Value } from '../decode/value.ts';

const bits = new DataView(new ArrayBuffer(8));

/**
 * Adds `x` × `w` (finite `x`, integer `w`) to the exact sum in `acc[sumAt]` (bigint) ×
 * 2^`acc[expAt]`, in place. The exponent only falls when a value needs it, and starts over when
 * the sum is zero.
 */
export function addExact(acc: Value[], sumAt: number, expAt: number, x: number, w: number): void {
  if (x === 0 || w === 0) return;
  bits.setFloat64(0, x);
  const hi = bits.getUint32(0);
  const lo = bits.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mhi = hi & 0xfffff;
  let exp = -1074; // subnormal
  if (biased !== 0) {
    mhi |= 0x100000;
    exp = biased - 1075;
  }
  // Drop the mantissa's trailing zero bits so that the exponent stays as high as it can.
  const tz = lo !== 0 ? 31 - Math.clz32(lo & -lo) : 63 - Math.clz32(mhi & -mhi);
  const m = (mhi * 0x1_0000_0000 + lo) / 2 ** tz;
  exp += tz;
  let d = BigInt(m);
  if (hi >>> 31) d = -d;
  if (w !== 1) d *= BigInt(w);
  let sum = acc[sumAt] as bigint;
  let at = acc[expAt] as number;
  if (sum === 0n) {
    acc[sumAt] = d;
    acc[expAt] = exp;
    return;
  }
  if (exp < at) {
    sum <<= BigInt(at - exp);
    at = exp;
  }
  acc[sumAt] = sum + (exp > at ? d << BigInt(exp - at) : d);
  acc[expAt] = at;
}

/** `sum` × 2^`exp` rounded to the nearest double (ties to even); ±Infinity past the range. */
export function exactToNumber(sum: bigint, exp: number): number {
  if (sum === 0n) return 0;
  const negative = sum < 0n;
  let a = negative ? -sum : sum;
  const n = bitLength(a);
  const top = exp + n - 1; // the exponent of the leading bit
  let r: number;
  if (top > 1023) r = Infinity;
  else if (top >= -1022) {
    // A normal result: one rounding, by Number(), of at most 64 bits whose last one is sticky
    // (set when any bit cut off was), then an exact scaling by a power of two.
    if (n > 64) {
      const k = BigInt(n - 64);
      const cut = a & ((1n << k) - 1n);
      a >>= k;
      if (cut !== 0n) a |= 1n;
      exp += n - 64;
    }
    r = scale(Number(a), exp);
  } else {
    // A subnormal result: round to a multiple of 2^-1074 here, so there is no second rounding.
    const s = -1074 - exp;
    if (s > 0) {
      const k = BigInt(s);
      let q = a >> k;
      const rest = a - (q << k);
      const half = 1n << (k - 1n);
      if (rest > half || (rest === half && (q & 1n) === 1n)) q += 1n;
      a = q;
      exp = -1074;
    }
    r = scale(Number(a), exp);
  }
  return negative ? -r : r;
}

function bitLength(a: bigint): number {
  const hex = a.toString(16);
  return (hex.length - 1) * 4 + 32 - Math.clz32(parseInt(hex[0]!, 16));
}

/** f × 2^e, exact when the result is a double (steps keep each factor and product in range). */
function scale(f: number, e: number): number {
  while (e > 1000) {
    f *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    f *= 2 ** -1000;
    e += 1000;
  }
  return f * 2 ** e;
}
