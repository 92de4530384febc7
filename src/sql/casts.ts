/**
 * Casts between the supported types, as PostgreSQL performs them: which are implicit (applied to
 * make operands agree) and which need CAST/`::`, and what each does to a value (numeric → int
 * rounds half away from zero, float → int rounds half to even, text is parsed as the type's
 * input function would).
 */
import { Numeric } from '../decode/numeric.ts';
import type { Value } from '../decode/value.ts';
import { isInteger, isFloat, type SqlKind, type SqlType } from './sql-type.ts';
import { checkInt, SqlRuntimeError } from './value-ops.ts';

const IMPLICIT_NUMERIC: SqlKind[] = ['int2', 'int4', 'int8', 'numeric', 'float4', 'float8'];

/** True when PostgreSQL applies this cast without being asked (assignment casts excluded). */
export function isImplicitCast(from: SqlKind, to: SqlKind): boolean {
  if (from === to || from === 'unknown') return true;
  const a = IMPLICIT_NUMERIC.indexOf(from);
  const b = IMPLICIT_NUMERIC.indexOf(to);
  if (a >= 0 && b >= 0) return a <= b;
  if (from === 'date') return to === 'timestamp' || to === 'timestamptz';
  if (from === 'timestamp') return to === 'timestamptz';
  if (from === 'bpchar') return to === 'text';
  return false;
}

/** True when CAST(from AS to) exists for the supported types. */
export function isExplicitCast(from: SqlKind, to: SqlKind): boolean {
  const textual = (k: SqlKind) => k === 'text' || k === 'bpchar';
  if (isImplicitCast(from, to) || textual(to) || textual(from)) return true;
  const num = (k: SqlKind) => IMPLICIT_NUMERIC.includes(k);
  if (num(from) && num(to)) return true;
  if ((from === 'bool' && to === 'int4') || (from === 'int4' && to === 'bool')) return true;
  if (from === 'timestamptz' && (to === 'timestamp' || to === 'date')) return true;
  if (from === 'timestamp' && to === 'date') return true;
  return false;
}

/** A function converting non-null values of `from` to `to`; the cast must exist. */
export function castFn(from: SqlType, to: SqlType): (v: Value) => Value {
  const f = from.kind;
  const t = to.kind;
  if (f === 'bpchar') {
    // character(n) loses its padding when cast to anything else (rtrim, as bpchar_text does).
    if (t === 'bpchar') return padTo(to);
    const then = castFn({ kind: 'text', typeName: 'text' }, to);
    return (v) => then(rtrimSpaces(v as string));
  }
  if (f === 'text' || f === 'unknown') {
    if (t === 'text') return (v) => v;
    if (t === 'bpchar') return padTo(to);
    return (v) => parseText(to, v as string);
  }
  if (t === 'text') return (v) => formatText(f, v);
  if (t === 'bpchar') {
    const pad = padTo(to);
    return (v) => pad(formatText(f, v));
  }
  if (f === t) return t === 'numeric' && to.scale !== undefined ? roundScale(to.scale) : (v) => v;
  if (isInteger(t)) {
    if (isInteger(f)) return (v) => checkInt(t, t === 'int8' ? BigInt(v as number | bigint) : Number(v));
    if (f === 'numeric') return (v) => numericToInt(t, v as Numeric);
    if (isFloat(f)) return (v) => floatToInt(t, v as number);
    if (f === 'bool') return (v) => (v ? 1 : 0);
  }
  if (t === 'numeric') {
    const scaled = to.scale === undefined ? (n: Numeric) => n : roundScale(to.scale);
    if (f === 'int8') return (v) => scaled(Numeric.fromBigInt(v as bigint));
    if (isInteger(f) || isFloat(f)) return (v) => scaled(Numeric.fromNumber(v as number));
  }
  if (isFloat(t)) {
    const round = t === 'float4' ? Math.fround : (x: number) => x;
    if (f === 'numeric') return (v) => round((v as Numeric).toNumber());
    if (f === 'int8') return (v) => round(Number(v as bigint));
    if (isInteger(f) || isFloat(f)) return (v) => round(v as number);
  }
  if (t === 'bool' && f === 'int4') return (v) => v !== 0;
  return temporalCast(from, to);
}

/** Trailing spaces removed: the text a character(n) value compares and casts as. */
export function rtrimSpaces(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 32) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** A cast to character(n): padded with spaces to n characters (longer values keep their length). */
function padTo(to: SqlType): (v: Value) => Value {
  const m = /\((\d+)\)$/.exec(to.typeName);
  if (!m) return (v) => v;
  const n = Number(m[1]);
  return (v) => {
    const s = v as string;
    const len = [...s].length;
    return len >= n ? s : s + ' '.repeat(n - len);
  };
}

function roundScale(scale: number): (v: Value) => Numeric {
  return (v) => (v as Numeric).round(scale);
}

function numericToInt(kind: SqlKind, n: Numeric): number | bigint {
  if (!n.isFinite())
    throw new SqlRuntimeError(`cannot convert ${n.toString()} to ${kind === 'int8' ? 'bigint' : 'integer'}`);
  const r = n.round(0).coefficient;
  return checkInt(kind, kind === 'int8' ? r : Number(r));
}

function floatToInt(kind: SqlKind, x: number): number | bigint {
  if (!Number.isFinite(x)) throw new SqlRuntimeError(`${kindLabel(kind)} out of range`);
  // rint(): half to even.
  let r = Math.round(x);
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) r -= 1;
  return checkInt(kind, kind === 'int8' ? BigInt(r) : r === 0 ? 0 : r);
}

function kindLabel(k: SqlKind): string {
  return k === 'int2' ? 'smallint' : k === 'int8' ? 'bigint' : 'integer';
}

/** The text PostgreSQL's output function prints for a value (for `::text`, `||`, concat). */
export function formatText(kind: SqlKind, v: Value): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && isFloat(kind)) return formatFloat(v);
  if (v instanceof Uint8Array) return `\\x${Buffer.from(v).toString('hex')}`;
  return String(v);
}

/** The type's output function (concat, `||`): like `::text` except booleans print `t`/`f`. */
export function outputText(kind: SqlKind, v: Value): string {
  return typeof v === 'boolean' ? (v ? 't' : 'f') : formatText(kind, v);
}

/** float8out: shortest round-trip digits, exponent form as PostgreSQL prints it. */
export function formatFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (Object.is(x, -0)) return '-0';
  const s = String(x);
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  if (m) return `${m[1]}e${m[2]}${m[3]!.padStart(2, '0')}`;
  const abs = Math.abs(x);
  if (abs >= 1e15 || (abs < 1e-4 && abs > 0)) {
    const e = x.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
    return e;
  }
  return s;
}

function parseText(to: SqlType, text: string): Value {
  const t = to.kind;
  const bad = () => new SqlRuntimeError(`invalid input syntax for type ${to.typeName}: "${text}"`);
  switch (t) {
    case 'int2':
    case 'int4':
    case 'int8': {
      const s = text.trim();
      if (!/^[+-]?\d+$/.test(s)) throw bad();
      const b = BigInt(s);
      if (t === 'int8') return checkInt(t, b);
      if (b > 2n ** 31n || b < -(2n ** 31n))
        throw new SqlRuntimeError(`value "${text}" is out of range for type ${to.typeName}`);
      return checkInt(t, Number(b));
    }
    case 'numeric': {
      let n: Numeric;
      try {
        n = Numeric.parse(text.trim());
      } catch {
        throw bad();
      }
      return to.scale === undefined ? n : n.round(to.scale);
    }
    case 'float4':
    case 'float8': {
      const s = text.trim().toLowerCase();
      const special: Record<string, number> = {
        nan: NaN,
        infinity: Infinity,
        '+infinity': Infinity,
        '-infinity': -Infinity,
        inf: Infinity,
        '-inf': -Infinity,
      };
      const x =
        s in special ? special[s]! : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(s) ? Number(s) : undefined;
      if (x === undefined) throw bad();
      return t === 'float4' ? Math.fround(x) : x;
    }
    case 'bool': {
      const s = text.trim().toLowerCase();
      if (['t', 'true', 'y', 'yes', 'on', '1'].includes(s)) return true;
      if (['f', 'false', 'n', 'no', 'off', '0'].includes(s)) return false;
      throw bad();
    }
    default:
      return parseTemporal(to, text);
  }
}

/** Hooks for temporal types, filled by `temporal-ops.ts` (kept apart: decode/temporal.ts is separate). */
export const temporalHooks: {
  parse?: (to: SqlType, text: string) => Value;
  cast?: (from: SqlType, to: SqlType) => ((v: Value) => Value) | undefined;
} = {};

function parseTemporal(to: SqlType, text: string): Value {
  if (temporalHooks.parse) return temporalHooks.parse(to, text);
  throw new SqlRuntimeError(`cannot cast text to ${to.typeName}`);
}

function temporalCast(from: SqlType, to: SqlType): (v: Value) => Value {
  const f = temporalHooks.cast?.(from, to);
  if (f) return f;
  return () => {
    throw new SqlRuntimeError(`cannot cast type ${from.typeName} to ${to.typeName}`);
  };
}
