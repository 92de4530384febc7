/**
 * The dataflow's AggregateFunction (dataflow/aggregate-function.ts) with PostgreSQL's semantics:
 * sum(int2/int4) → bigint, sum(int8/numeric) → exact numeric, avg → numeric with numeric_div's
 * scale, min/max in PostgreSQL's order, string_agg in the order of its argument.
 */
import { Numeric } from '../decode/numeric.ts';
import type { AggregateFunction } from '../dataflow/aggregate-function.ts';
import type { Value } from '../decode/value.ts';
import type { AggregateCall } from './plan.ts';
import { checkInt, SqlRuntimeError, toNumeric } from './value-ops.ts';

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
      // Accumulator: [non-null count, exact sum as numeric]; floats sum as numbers.
      const float = argKind === 'float4' || argKind === 'float8';
      if (argKind === 'interval')
        throw new SqlRuntimeError(`${call.name}(interval) is not supported incrementally`);
      if (argKind === 'int2' || argKind === 'int4' || argKind === 'int8') return integerSum(call);
      return {
        kind: 'invertible',
        init: () => [0n, float ? 0 : ZERO],
        add: (acc, v, w) => {
          const n = (acc[0] as bigint) + BigInt(w);
          if (float) return [n, (acc[1] as number) + (v as number) * w];
          const x = toNumeric(argKind, v);
          const dx = w === 1 ? x : w === -1 ? x.neg() : x.mul(Numeric.fromBigInt(BigInt(w)));
          return [n, (acc[1] as Numeric).add(dx)];
        },
        result: (acc) => {
          const n = acc[0] as bigint;
          if (n === 0n) return null;
          if (float)
            return call.name === 'avg'
              ? (acc[1] as number) / Number(n)
              : argKind === 'float4'
                ? Math.fround(acc[1] as number)
                : acc[1]!;
          const s = acc[1] as Numeric;
          if (call.name === 'avg') return s.div(Numeric.fromBigInt(n));
          if (call.resultType.kind === 'int8')
            return checkInt('int8', s.coefficient / 10n ** BigInt(s.scale));
          return s;
        },
      };
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
