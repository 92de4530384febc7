/**
 * The scalar functions a view may call, with PostgreSQL's argument types, result types and
 * NULL behaviour (all strict except `concat`). Volatile and set-returning functions are refused
 * by name so the message says why.
 */
import type { Node } from 'libpg-query';
import { Numeric } from '../decode/numeric.ts';
import type { Value } from '../decode/value.ts';
import { locationOf } from './ast.ts';
import { outputText } from './casts.ts';
import { coerce } from './coerce.ts';
import type { Compiled, ExprContext, RowFn } from './scope.ts';
import { isFloat, isInteger, sqlType, type SqlKind, type SqlType } from './sql-type.ts';
import { abs, SqlRuntimeError } from './value-ops.ts';
import { invalid, unsupported } from './view-error.ts';

export const AGGREGATES = new Set([
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'bool_and',
  'bool_or',
  'every',
  'string_agg',
]);

const VOLATILE = new Set([
  'now',
  'random',
  'clock_timestamp',
  'statement_timestamp',
  'transaction_timestamp',
  'timeofday',
  'nextval',
  'currval',
  'gen_random_uuid',
  'uuid_generate_v4',
  'setseed',
  'txid_current',
  'pg_current_xact_id',
]);
const SET_RETURNING = new Set([
  'generate_series',
  'unnest',
  'regexp_matches',
  'regexp_split_to_table',
  'json_each',
  'jsonb_each',
  'json_array_elements',
  'jsonb_array_elements',
  'string_to_table',
]);
const WINDOW = new Set([
  'row_number',
  'rank',
  'dense_rank',
  'lag',
  'lead',
  'ntile',
  'first_value',
  'last_value',
  'nth_value',
  'percent_rank',
  'cume_dist',
]);

export interface FunctionCall {
  readonly name: string;
  readonly args: readonly Compiled[];
  readonly argNodes: readonly Node[];
  readonly ctx: ExprContext;
  readonly location: number | undefined;
}

type Impl = (call: FunctionCall) => Compiled;

const text = sqlType('text');
const int4 = sqlType('int4');

/** Casts argument `i` to `to` (implicitly), failing like PostgreSQL's function lookup. */
function arg(call: FunctionCall, i: number, to: SqlType): RowFn {
  const c = call.args[i];
  if (!c) throw invalid(call.ctx.view, call.location, `function ${call.name} needs more arguments`);
  try {
    return coerce(c, to, { ctx: call.ctx, location: locationOf(call.argNodes[i]), explicit: false }).fn;
  } catch {
    throw noSuchFunction(call);
  }
}

function noSuchFunction(call: FunctionCall) {
  const types = call.args.map((a) => (a.type.kind === 'unknown' ? 'unknown' : a.type.typeName)).join(', ');
  return invalid(
    call.ctx.view,
    call.location,
    `function ${call.name}(${types}) does not exist`,
    'Check the argument types; add explicit casts.',
  );
}

function arity(call: FunctionCall, min: number, max: number): void {
  if (call.args.length < min || call.args.length > max) throw noSuchFunction(call);
}

/** A strict function: NULL in any argument gives NULL. */
function strict(type: SqlType, fns: RowFn[], f: (...vs: Value[]) => Value): Compiled {
  return {
    type,
    fn: (r) => {
      const vs: Value[] = [];
      for (const g of fns) {
        const v = g(r);
        if (v === null) return null;
        vs.push(v);
      }
      return f(...vs);
    },
  };
}

const chars = (s: string) => [...s];

function textFn(
  min: number,
  max: number,
  types: SqlType[],
  out: SqlType,
  f: (...vs: Value[]) => Value,
): Impl {
  return (call) => {
    arity(call, min, max);
    return strict(
      out,
      call.args.map((_, i) => arg(call, i, types[i] ?? text)),
      f,
    );
  };
}

function trimmer(mode: 'both' | 'left' | 'right'): Impl {
  return textFn(1, 2, [text, text], text, (s, set = ' ') => {
    const cs = chars(s as string);
    const drop = new Set(chars(set as string));
    let a = 0;
    let b = cs.length;
    if (mode !== 'right') while (a < b && drop.has(cs[a]!)) a++;
    if (mode !== 'left') while (b > a && drop.has(cs[b - 1]!)) b--;
    return cs.slice(a, b).join('');
  });
}

function substring(s: string, start: number, count?: number): string {
  const cs = chars(s);
  if (count !== undefined && count < 0) throw new SqlRuntimeError('negative substring length not allowed');
  const from = Math.max(start, 1);
  const end = count === undefined ? cs.length + 1 : start + count;
  return end <= from ? '' : cs.slice(from - 1, end - 1).join('');
}

function numericFn(
  call: FunctionCall,
  f: { int?: (k: SqlKind, v: Value) => Value; numeric: (n: Numeric) => Value; float: (x: number) => number },
): Compiled {
  arity(call, 1, 1);
  const k = call.args[0]!.type.kind;
  if (f.int && isInteger(k))
    return strict(call.args[0]!.type, [arg(call, 0, call.args[0]!.type)], (v) => f.int!(k, v));
  if (k === 'numeric')
    return strict(sqlType('numeric'), [arg(call, 0, sqlType('numeric'))], (v) => f.numeric(v as Numeric));
  // PostgreSQL resolves integer and unknown arguments to the float8 variant (float8 is the preferred numeric type).
  if (isFloat(k) || isInteger(k) || k === 'unknown') {
    const t = sqlType('float8');
    return strict(t, [arg(call, 0, t)], (v) => f.float(v as number));
  }
  throw noSuchFunction(call);
}

/** rint(): half to even, as PostgreSQL's round(float8). */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const FUNCTIONS: Record<string, Impl> = {
  lower: textFn(1, 1, [text], text, (s) => (s as string).toLowerCase()),
  upper: textFn(1, 1, [text], text, (s) => (s as string).toUpperCase()),
  length: textFn(1, 1, [text], int4, (s) => chars(s as string).length),
  char_length: textFn(1, 1, [text], int4, (s) => chars(s as string).length),
  character_length: textFn(1, 1, [text], int4, (s) => chars(s as string).length),
  substring: textFn(2, 3, [text, int4, int4], text, (s, a, n) =>
    substring(s as string, a as number, n as number | undefined),
  ),
  substr: textFn(2, 3, [text, int4, int4], text, (s, a, n) =>
    substring(s as string, a as number, n as number | undefined),
  ),
  btrim: trimmer('both'),
  ltrim: trimmer('left'),
  rtrim: trimmer('right'),
  replace: textFn(3, 3, [text, text, text], text, (s, a, b) =>
    (a as string) === '' ? s : (s as string).replaceAll(a as string, b as string),
  ),
  left: textFn(2, 2, [text, int4], text, (s, n) => {
    const cs = chars(s as string);
    return cs.slice(0, (n as number) < 0 ? Math.max(0, cs.length + (n as number)) : (n as number)).join('');
  }),
  right: textFn(2, 2, [text, int4], text, (s, n) => {
    const cs = chars(s as string);
    const k = n as number;
    return (k < 0 ? cs.slice(Math.min(cs.length, -k)) : cs.slice(Math.max(0, cs.length - k))).join('');
  }),
  position: textFn(2, 2, [text, text], int4, (s, sub) => strpos(s as string, sub as string)),
  strpos: textFn(2, 2, [text, text], int4, (s, sub) => strpos(s as string, sub as string)),
  concat: (call) => {
    const parts = call.args.map((a) => ({ fn: a.fn, kind: a.type.kind }));
    return {
      type: text,
      fn: (r) => {
        let out = '';
        for (const p of parts) {
          const v = p.fn(r);
          if (v !== null) out += outputText(p.kind, v);
        }
        return out;
      },
    };
  },
  abs: (call) => numericFn(call, { int: (k, v) => abs(k, v), numeric: (n) => n.abs(), float: Math.abs }),
  floor: (call) => numericFn(call, { numeric: (n) => floorNumeric(n), float: Math.floor }),
  ceil: (call) => numericFn(call, { numeric: (n) => floorNumeric(n.neg()).neg(), float: Math.ceil }),
  ceiling: (call) => numericFn(call, { numeric: (n) => floorNumeric(n.neg()).neg(), float: Math.ceil }),
  round: (call) => {
    if (call.args.length === 2) {
      return strict(sqlType('numeric'), [arg(call, 0, sqlType('numeric')), arg(call, 1, int4)], (n, s) =>
        (n as Numeric).round(s as number),
      );
    }
    return numericFn(call, { numeric: (n) => n.round(0), float: rint });
  },
};

function floorNumeric(n: Numeric): Numeric {
  const t = n.trunc(0);
  return n.isFinite() && n.sign() < 0 && t.compare(n) !== 0 ? t.sub(Numeric.fromBigInt(1n)) : t;
}

function strpos(s: string, sub: string): number {
  const i = s.indexOf(sub);
  return i < 0 ? 0 : chars(s.slice(0, i)).length + 1;
}

/** Extra functions registered by other modules (temporal functions). */
export const EXTRA_FUNCTIONS: Record<string, Impl> = {};

/** Compiles a call to a scalar function whose arguments are already compiled. */
export function scalarFunction(call: FunctionCall): Compiled {
  const { name, ctx, location } = call;
  if (VOLATILE.has(name)) {
    throw unsupported(
      ctx.view,
      location,
      `volatile function ${name}()`,
      'A view must depend only on its tables; pass the value in the data.',
    );
  }
  if (SET_RETURNING.has(name)) throw unsupported(ctx.view, location, `set-returning function ${name}()`);
  if (WINDOW.has(name)) {
    throw unsupported(
      ctx.view,
      location,
      `window function ${name}() here`,
      'Only row_number() OVER (PARTITION BY … ORDER BY …) in a FROM subquery, filtered by rn <= N outside, is supported.',
    );
  }
  const impl = FUNCTIONS[name] ?? EXTRA_FUNCTIONS[name];
  if (!impl)
    throw unsupported(
      ctx.view,
      location,
      `function ${name}()`,
      'See the supported functions in src/sql/README.md.',
    );
  return impl(call);
}
