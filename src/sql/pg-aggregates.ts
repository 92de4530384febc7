/**
 * The dataflow's AggregateFunction (dataflow/aggregate-function.ts) with PostgreSQL's semantics:
 * sum(int2/int4) → bigint, sum(int8/numeric) → exact numeric, avg → numeric with numeric_div's
 * scale, min/max in PostgreSQL's order, string_agg in the order of its argument.
 */
import { Numeric } from '../decode/numeric.ts';
import type { AggregateFunction } from '../dataflow/aggregate-function.ts';
import type { Value } from '../decode/value.ts';
import type { AggregateCall } from './plan.ts';
import type { SqlKind } from './sql-type.ts';
import { checkInt, SqlRuntimeError, toNumeric } from './value-ops.ts';
import { addExact, exactToNumber } from './exact-float-sum.ts';

const ZERO = Numeric.fromBigInt(0n);

export function pgAggregate(call: AggregateCall): AggregateFunction {
  const argKind = call.argType?.kind ?? 'int8';
  switch (call.name) {
    case 'count':
      // The count is a JS number (exact far beyond any table); older state holds a bigint.
      return {
        kind: 'invertible',
        init: () => [0],
        add: (acc, _v, w) => {
          // In place: the engine hands each group's accumulator to one fold at a time.
          (acc as Value[])[0] = Number(acc[0] ?? 0) + w;
          return acc;
        },
        result: (acc) => BigInt((acc[0] ?? 0) as number | bigint),
      };
    case 'sum':
    case 'avg': {
      if (argKind === 'interval')
        throw new SqlRuntimeError(`${call.name}(interval) is not supported incrementally`);
      if (argKind === 'int2' || argKind === 'int4' || argKind === 'int8') return integerSum(call);
      return inexactOrNumericSum(call, argKind === 'float4' || argKind === 'float8', argKind);
    }
    case 'bool_and':
    case 'bool_or':
      return {
        kind: 'invertible',
        init: () => [0n, 0n],
        add: (acc, v, w) =>
          v === true ? [(acc[0] as bigint) + BigInt(w), acc[1]!] : [acc[0]!, (acc[1] as bigint) + BigInt(w)],
        result: (acc) => {
          const t = acc[0] as bigint;
          const f = acc[1] as bigint;
          if (t + f === 0n) return null;
          return call.name === 'bool_and' ? f === 0n : t > 0n;
        },
      };
    case 'min':
      return { kind: 'ordered', reads: 'first', result: (vs) => vs[0] ?? null };
    case 'max':
      return { kind: 'ordered', reads: 'last', result: (vs) => vs[0] ?? null };
    case 'string_agg':
      return {
        kind: 'ordered',
        reads: 'all',
        result: (vs) => (vs.length === 0 ? null : vs.join(call.delimiter ?? '')),
      };
  }
}

/**
 * sum/avg over int2/int4/int8: accumulator [count, exact integer sum], the sum a JS number while
 * it is a safe integer and a bigint beyond (no Numeric arithmetic per change). Older state holds
 * [bigint count, Numeric sum]; both forms are read.
 */
function integerSum(call: AggregateCall): AggregateFunction {
  return {
    kind: 'invertible',
    init: () => [0, 0],
    add: (acc, v, w) => {
      const out = acc as Value[];
      out[0] = Number(acc[0] ?? 0) + w;
      const s = acc[1] ?? 0;
      if (typeof s === 'number') {
        const x = typeof v === 'number' ? v : Number(v as bigint);
        const next = s + x * w;
        if (Number.isSafeInteger(next) && Number.isSafeInteger(x * w)) {
          out[1] = next;
          return out;
        }
      }
      out[1] = integerOf(s) + integerOf(v) * BigInt(w);
      return out;
    },
    result: (acc) => {
      const n = Number(acc[0] ?? 0);
      if (n === 0) return null;
      const s = integerOf(acc[1] ?? 0);
      if (call.name === 'avg') return Numeric.fromBigInt(s).div(Numeric.fromBigInt(BigInt(n)));
      if (call.resultType.kind === 'int8') return checkInt('int8', s);
      return Numeric.fromBigInt(s);
    },
  };
}

function integerOf(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  const x = v as Numeric;
  return x.coefficient / 10n ** BigInt(x.scale);
}

/** Accumulator slots of `inexactOrNumericSum`. */
const COUNT = 0;
const FINITE = 1;
const NANS = 2;
const POS_INF = 3;
const NEG_INF = 4;
/** From here: pairs [scale, count] of the numeric values summed (numeric only). */
const SCALES = 5;
/** float: the exponent of the exact sum (FINITE × 2^EXP, exact-float-sum.ts). */
const EXP = 5;

/**
 * sum/avg over float4/float8 and numeric: [count, sum of the finite values, NaN count, +∞ count,
 * −∞ count, then (numeric) a count per scale or (float) the sum's exponent]. The special values
 * are counted apart because a sum holding one is stuck there (∞ − ∞ is NaN), while a retraction
 * must bring the sum back; the scales because PostgreSQL shows a numeric sum with the largest
 * scale among its values, which falls when the only 1.50 goes. A float sum is exact (a bigint
 * times a power of two), so retractions leave no rounding error behind. State written before
 * holds [count, sum], the sum a double for floats, and reads as before.
 */
function inexactOrNumericSum(call: AggregateCall, float: boolean, argKind: SqlKind): AggregateFunction {
  return {
    kind: 'invertible',
    init: () => (float ? [0n, 0n, 0, 0, 0, 0] : [0n, ZERO, 0, 0, 0]),
    add: (acc, v, w) => {
      // In place, as count's: the engine hands each group's accumulator to one fold at a time.
      const out = acc as Value[];
      while (out.length < (float ? EXP + 1 : SCALES)) out.push(0); // state written before: [count, sum]
      // An old double sum starts the exact one; one already NaN or infinite (an overflow, or a
      // special value added before they were counted apart) has lost its finite part: it folds
      // on as a double, as it did.
      const old = float ? out[FINITE] : undefined;
      if (typeof old === 'number') {
        out[FINITE] = 0n;
        if (Number.isFinite(old)) addExact(out, FINITE, EXP, old, 1);
        else out[FINITE] = old;
      }
      out[COUNT] = (acc[COUNT] as bigint) + BigInt(w);
      const x = float ? (v as number) : toNumeric(argKind, v);
      const special = float
        ? Number.isNaN(x)
          ? 'NaN'
          : x === Infinity
            ? 'Infinity'
            : x === -Infinity
              ? '-Infinity'
              : undefined
        : (x as Numeric).special;
      if (special !== undefined) {
        const slot = special === 'NaN' ? NANS : special === 'Infinity' ? POS_INF : NEG_INF;
        out[slot] = Number(acc[slot] ?? 0) + w;
      } else if (float) {
        const sum = out[FINITE];
        if (typeof sum === 'number') out[FINITE] = sum + (x as number) * w;
        else addExact(out, FINITE, EXP, x as number, w);
      } else {
        const n = x as Numeric;
        const dx = w === 1 ? n : w === -1 ? n.neg() : n.mul(Numeric.fromBigInt(BigInt(w)));
        out[FINITE] = (acc[FINITE] as Numeric).add(dx);
        addScale(out, n.scale, w);
      }
      return out;
    },
    result: (acc) => {
      const n = acc[COUNT] as bigint;
      if (n === 0n) return null;
      const nans = Number(acc[NANS] ?? 0);
      const pos = Number(acc[POS_INF] ?? 0);
      const neg = Number(acc[NEG_INF] ?? 0);
      if (nans > 0 || (pos > 0 && neg > 0)) return float ? NaN : Numeric.NAN;
      if (pos > 0) return float ? Infinity : Numeric.POSITIVE_INFINITY;
      if (neg > 0) return float ? -Infinity : Numeric.NEGATIVE_INFINITY;
      if (float) {
        const sum = acc[FINITE];
        const f = typeof sum === 'number' ? sum : exactToNumber(sum as bigint, acc[EXP] as number);
        return call.name === 'avg' ? f / Number(n) : argKind === 'float4' ? Math.fround(f) : f;
      }
      const s = liveScale(acc[FINITE] as Numeric, acc);
      if (call.name === 'avg') return s.div(Numeric.fromBigInt(n));
      if (call.resultType.kind === 'int8') return checkInt('int8', s.coefficient / 10n ** BigInt(s.scale));
      return s;
    },
  };
}

function addScale(acc: Value[], scale: number, w: number): void {
  for (let i = SCALES; i + 1 < acc.length; i += 2) {
    if (acc[i] === scale) {
      const c = Number(acc[i + 1]) + w;
      if (c === 0) acc.splice(i, 2);
      else acc[i + 1] = c;
      return;
    }
  }
  acc.push(scale, w);
}

/** The sum at the largest scale among the values it holds (exact: no digit lies beyond it). */
function liveScale(sum: Numeric, acc: readonly Value[]): Numeric {
  if (acc.length <= SCALES || !sum.isFinite()) return sum;
  let max = 0;
  for (let i = SCALES; i + 1 < acc.length; i += 2) max = Math.max(max, Number(acc[i]));
  return max < sum.scale ? sum.trunc(max) : sum;
}
