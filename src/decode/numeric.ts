import { TidemarkError } from '../errors/tidemark-error.ts';

/**
 * PostgreSQL's `numeric`, exactly: a bigint coefficient and a display scale (digits after the
 * point), so `1.50` keeps its scale when printed, plus NaN and ±Infinity (PostgreSQL 14+).
 *
 * Arithmetic follows numeric.c: add/sub keep the larger scale, mul adds the scales, div picks its
 * scale with `select_div_scale` (at least 16 significant digits, never less than either input's
 * scale) and rounds half away from zero, so `avg` and `/` print the digits PostgreSQL prints.
 * Ordering is PostgreSQL's: -Infinity < finite < Infinity < NaN, and NaN equals NaN.
 *
 * Instances are immutable. Finite values always have `special === undefined`.
 */
export type NumericSpecial = 'NaN' | 'Infinity' | '-Infinity';

const NUMERIC_MIN_SIG_DIGITS = 16;
const NUMERIC_MAX_DISPLAY_SCALE = 1000;
const NUMERIC_MAX_EXPONENT = 1000;
const DEC_DIGITS = 4;

const POW10: bigint[] = [1n];
function pow10(n: number): bigint {
  for (let i = POW10.length; i <= n; i++) POW10.push(POW10[i - 1]! * 10n);
  return POW10[n]!;
}

/** Keeps sort-key exponents positive: numeric exponents stay within ±(131072 + 16383). */
const SORT_EXPONENT_BIAS = 1_000_000;

function mirrorDigits(digits: string): string {
  let out = '';
  for (let i = 0; i < digits.length; i++) out += String.fromCharCode(105 - digits.charCodeAt(i));
  return out;
}

function invalid(text: string): TidemarkError {
  return new TidemarkError('VALUE_INVALID_TEXT', { detail: `"${text}" is not a numeric` });
}

/** Number of decimal digits of a positive bigint. */
function digitCount(v: bigint): number {
  return v.toString().length;
}

/** Divides and rounds half away from zero. `d` must be positive. */
function divRound(n: bigint, d: bigint): bigint {
  const q = n / d;
  const r = n - q * d;
  const twice = (r < 0n ? -r : r) * 2n;
  if (twice >= d) return n < 0n ? q - 1n : q + 1n;
  return q;
}

export class Numeric {
  static readonly NAN = new Numeric(0n, 0, 'NaN');
  static readonly POSITIVE_INFINITY = new Numeric(0n, 0, 'Infinity');
  static readonly NEGATIVE_INFINITY = new Numeric(0n, 0, '-Infinity');
  static readonly ZERO = new Numeric(0n, 0, undefined);

  private constructor(
    /** The value is `coefficient × 10^-scale`; 0 for the special values. */
    readonly coefficient: bigint,
    /** Display scale: digits printed after the point (≥ 0). */
    readonly scale: number,
    readonly special: NumericSpecial | undefined,
  ) {}

  private canonicalText: string | undefined;

  /** A finite value `coefficient × 10^-scale`. */
  static of(coefficient: bigint, scale = 0): Numeric {
    if (!Number.isInteger(scale) || scale < 0) throw new RangeError(`numeric scale must be ≥ 0: ${scale}`);
    return new Numeric(coefficient, scale, undefined);
  }

  static fromBigInt(v: bigint): Numeric {
    return new Numeric(v, 0, undefined);
  }

  /**
   * Integers convert exactly; other numbers as PostgreSQL's `float8::numeric` does (15
   * significant digits). NaN and ±Infinity map to the special values.
   */
  static fromNumber(v: number): Numeric {
    if (Number.isNaN(v)) return Numeric.NAN;
    if (v === Infinity) return Numeric.POSITIVE_INFINITY;
    if (v === -Infinity) return Numeric.NEGATIVE_INFINITY;
    if (Number.isInteger(v)) return Numeric.fromBigInt(BigInt(v));
    return Numeric.parse(
      v
        .toPrecision(15)
        .replace(/(\.\d*?)0+(e|$)/, '$1$2')
        .replace(/\.(e|$)/, '$1'),
    );
  }

  /** Parses what `numeric_in` accepts (PostgreSQL 15): sign, digits, point, exponent, NaN, Infinity. */
  static parse(text: string): Numeric {
    const s = text.trim();
    const special = parseSpecial(s);
    if (special) return special;
    let i = 0;
    let negative = false;
    if (s[i] === '+' || s[i] === '-') {
      negative = s[i] === '-';
      i++;
    }
    let digits = '';
    let frac = -1;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        digits += s[i];
        if (frac >= 0) frac++;
      } else if (c === 46 && frac < 0) {
        frac = 0;
      } else break;
    }
    if (digits === '') throw invalid(text);
    let exponent = 0;
    if (i < s.length) {
      if (s[i] !== 'e' && s[i] !== 'E') throw invalid(text);
      const exp = s.slice(i + 1);
      if (!/^[+-]?\d+$/.test(exp)) throw invalid(text);
      exponent = Number(exp);
      if (Math.abs(exponent) > NUMERIC_MAX_EXPONENT) throw invalid(text);
    }
    let coefficient = BigInt(digits);
    if (negative) coefficient = -coefficient;
    const scale = Math.max(frac, 0) - exponent;
    if (scale >= 0) return new Numeric(coefficient, scale, undefined);
    return new Numeric(coefficient * pow10(-scale), 0, undefined);
  }

  isNaN(): boolean {
    return this.special === 'NaN';
  }

  isFinite(): boolean {
    return this.special === undefined;
  }

  isZero(): boolean {
    return this.special === undefined && this.coefficient === 0n;
  }

  /** -1, 0 or 1; NaN for NaN (as PostgreSQL's `sign()`). */
  sign(): number {
    if (this.special === 'NaN') return NaN;
    if (this.special === 'Infinity') return 1;
    if (this.special === '-Infinity') return -1;
    return this.coefficient > 0n ? 1 : this.coefficient < 0n ? -1 : 0;
  }

  /** The text `numeric_out` prints: scale kept, `NaN`, `Infinity`, `-Infinity`. */
  toString(): string {
    if (this.special) return this.special;
    const neg = this.coefficient < 0n;
    const abs = (neg ? -this.coefficient : this.coefficient).toString();
    if (this.scale === 0) return neg ? '-' + abs : abs;
    const padded = abs.length <= this.scale ? '0'.repeat(this.scale - abs.length + 1) + abs : abs;
    const cut = padded.length - this.scale;
    return (neg ? '-' : '') + padded.slice(0, cut) + '.' + padded.slice(cut);
  }

  /** A string equal for equal values (1.0 and 1.00 give `1`), for hashing and grouping. */
  canonical(): string {
    // Memoized: rows are keyed many times on their way through a dataflow.
    return (this.canonicalText ??= this.stripped().toString());
  }

  /**
   * A string whose plain order is PostgreSQL's order of numerics (-Infinity < negatives < 0 <
   * positives < Infinity < NaN), equal for equal values: the decimal exponent, then the digits,
   * mirrored for negatives so a larger magnitude sorts first.
   */
  sortKey(): string {
    if (this.special === '-Infinity') return '0';
    if (this.special === 'Infinity') return '4';
    if (this.special === 'NaN') return '5';
    if (this.coefficient === 0n) return '2';
    const neg = this.coefficient < 0n;
    const digits = (neg ? -this.coefficient : this.coefficient).toString().replace(/0+$/, '');
    // value = 0.<digits> × 10^exponent
    const exponent = (neg ? -this.coefficient : this.coefficient).toString().length - this.scale;
    const body = String(exponent + SORT_EXPONENT_BIAS).padStart(7, '0') + digits;
    return neg ? '1' + mirrorDigits(body) + '~' : '3' + body + '!';
  }

  /** The nearest double (correctly rounded). */
  toNumber(): number {
    if (this.special === 'NaN') return NaN;
    if (this.special === 'Infinity') return Infinity;
    if (this.special === '-Infinity') return -Infinity;
    return Number(this.toString());
  }

  toJSON(): string {
    return this.toString();
  }

  neg(): Numeric {
    if (this.special === 'Infinity') return Numeric.NEGATIVE_INFINITY;
    if (this.special === '-Infinity') return Numeric.POSITIVE_INFINITY;
    if (this.special) return this;
    return new Numeric(-this.coefficient, this.scale, undefined);
  }

  abs(): Numeric {
    if (this.special === '-Infinity') return Numeric.POSITIVE_INFINITY;
    if (this.special) return this;
    return this.coefficient < 0n ? new Numeric(-this.coefficient, this.scale, undefined) : this;
  }

  add(other: Numeric): Numeric {
    if (this.special || other.special) {
      if (this.isNaN() || other.isNaN()) return Numeric.NAN;
      if (this.special && other.special) return this.special === other.special ? this : Numeric.NAN;
      return this.special ? this : other;
    }
    const scale = Math.max(this.scale, other.scale);
    return new Numeric(this.scaledTo(scale) + other.scaledTo(scale), scale, undefined);
  }

  sub(other: Numeric): Numeric {
    return this.add(other.neg());
  }

  mul(other: Numeric): Numeric {
    if (this.special || other.special) {
      if (this.isNaN() || other.isNaN()) return Numeric.NAN;
      const s = this.sign() * other.sign();
      if (s === 0) return Numeric.NAN; // infinity × 0
      return s > 0 ? Numeric.POSITIVE_INFINITY : Numeric.NEGATIVE_INFINITY;
    }
    return new Numeric(this.coefficient * other.coefficient, this.scale + other.scale, undefined);
  }

  /** `this / other` as PostgreSQL's `numeric_div`; throws VALUE_DIVISION_BY_ZERO. */
  div(other: Numeric): Numeric {
    if (this.isNaN() || other.isNaN()) return Numeric.NAN;
    if (this.special) {
      if (other.special) return Numeric.NAN;
      const s = other.sign();
      if (s === 0) throw new TidemarkError('VALUE_DIVISION_BY_ZERO', { detail: `${this} / 0` });
      return s * this.sign() > 0 ? Numeric.POSITIVE_INFINITY : Numeric.NEGATIVE_INFINITY;
    }
    if (other.special) return Numeric.ZERO;
    if (other.coefficient === 0n) {
      throw new TidemarkError('VALUE_DIVISION_BY_ZERO', { detail: `${this} / 0` });
    }
    return this.divToScale(other, selectDivScale(this, other));
  }

  /** The quotient rounded (half away from zero) to `scale` digits after the point. */
  divToScale(other: Numeric, scale: number): Numeric {
    // this/other = (c1 / 10^s1) / (c2 / 10^s2); scaled by 10^scale.
    const shift = scale - this.scale + other.scale;
    let n = this.coefficient;
    let d = other.coefficient;
    if (shift >= 0) n *= pow10(shift);
    else d *= pow10(-shift);
    if (d < 0n) {
      n = -n;
      d = -d;
    }
    return new Numeric(divRound(n, d), scale, undefined);
  }

  /** PostgreSQL's `round(x, scale)`: half away from zero; a negative scale rounds left of the point. */
  round(scale = 0): Numeric {
    return this.rescale(scale, true);
  }

  /** PostgreSQL's `trunc(x, scale)`: towards zero. */
  trunc(scale = 0): Numeric {
    return this.rescale(scale, false);
  }

  /** Negative, zero or positive as this sorts before, with or after `other` in PostgreSQL. */
  compare(other: Numeric): number {
    if (this.special || other.special) return specialRank(this) - specialRank(other);
    const scale = Math.max(this.scale, other.scale);
    const a = this.scaledTo(scale);
    const b = other.scaledTo(scale);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  equals(other: Numeric): boolean {
    return this.compare(other) === 0;
  }

  /** The same value with trailing fractional zeros removed. */
  stripped(): Numeric {
    if (this.special || this.scale === 0) return this;
    if (this.coefficient === 0n) return Numeric.ZERO;
    let c = this.coefficient;
    let s = this.scale;
    while (s > 0 && c % 10n === 0n) {
      c /= 10n;
      s--;
    }
    return s === this.scale ? this : new Numeric(c, s, undefined);
  }

  private scaledTo(scale: number): bigint {
    return scale === this.scale ? this.coefficient : this.coefficient * pow10(scale - this.scale);
  }

  private rescale(scale: number, round: boolean): Numeric {
    if (this.special) return this;
    const outScale = Math.max(scale, 0);
    if (scale >= this.scale) return new Numeric(this.scaledTo(outScale), outScale, undefined);
    const d = pow10(this.scale - scale);
    const q = round ? divRound(this.coefficient, d) : this.coefficient / d;
    return new Numeric(scale >= 0 ? q : q * pow10(-scale), outScale, undefined);
  }

  /**
   * Weight and first digit of the value in PostgreSQL's base-10000 representation (digit groups
   * aligned on the decimal point); (0, 0) for zero. Drives `select_div_scale`.
   */
  base10000Lead(): { weight: number; firstDigit: number } {
    const abs = this.coefficient < 0n ? -this.coefficient : this.coefficient;
    if (abs === 0n) return { weight: 0, firstDigit: 0 };
    const exponent = digitCount(abs) - 1 - this.scale;
    const weight = Math.floor(exponent / DEC_DIGITS);
    const shift = -this.scale - weight * DEC_DIGITS;
    const first = shift >= 0 ? abs * pow10(shift) : abs / pow10(-shift);
    return { weight, firstDigit: Number(first) };
  }
}

/** numeric.c `select_div_scale`. */
function selectDivScale(a: Numeric, b: Numeric): number {
  const l1 = a.base10000Lead();
  const l2 = b.base10000Lead();
  let qweight = l1.weight - l2.weight;
  if (l1.firstDigit <= l2.firstDigit) qweight--;
  let rscale = NUMERIC_MIN_SIG_DIGITS - qweight * DEC_DIGITS;
  rscale = Math.max(rscale, a.scale, b.scale, 0);
  return Math.min(rscale, NUMERIC_MAX_DISPLAY_SCALE);
}

function specialRank(n: Numeric): number {
  switch (n.special) {
    case '-Infinity':
      return -2;
    case 'Infinity':
      return 2;
    case 'NaN':
      return 3;
    default:
      return n.sign();
  }
}

function parseSpecial(s: string): Numeric | undefined {
  const c = s.charCodeAt(0);
  // Digits, '.', and signs followed by a digit are the common case: skip the string compares.
  if ((c >= 48 && c <= 57) || c === 46) return undefined;
  const lower = s.toLowerCase();
  switch (lower) {
    case 'nan':
      return Numeric.NAN;
    case 'infinity':
    case '+infinity':
    case 'inf':
    case '+inf':
      return Numeric.POSITIVE_INFINITY;
    case '-infinity':
    case '-inf':
      return Numeric.NEGATIVE_INFINITY;
    default:
      return undefined;
  }
}
