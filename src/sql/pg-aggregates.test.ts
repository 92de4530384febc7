import { describe, expect, it } from 'vitest';
import { Numeric } from '../decode/numeric.ts';
import type { Value } from '../decode/value.ts';
import { pgAggregate } from './pg-aggregates.ts';
import { sqlType, type SqlKind } from './sql-type.ts';
import type { AggregateFunction } from '../dataflow/aggregate-function.ts';

function fn(name: 'sum' | 'avg', kind: SqlKind): AggregateFunction {
  const t = sqlType(kind);
  return pgAggregate({
    name,
    star: false,
    distinct: false,
    args: [],
    argType: t,
    resultType: name === 'avg' && kind !== 'float8' ? sqlType('numeric') : t,
  });
}

/** Folds `changes` (value, weight) into a fresh accumulator, or into `from`; returns the result. */
function fold(f: AggregateFunction, changes: [Value, number][], from?: readonly Value[]): { result: Value } {
  if (f.kind !== 'invertible') throw new Error('not invertible');
  let acc: readonly Value[] = from ?? f.init();
  for (const [v, w] of changes) acc = f.add(acc, v, w);
  return { result: f.result(acc) };
}

describe('sum and avg follow retractions as PostgreSQL recomputes them', () => {
  it('a float sum leaves ±Infinity and NaN when they are retracted (it stayed NaN / Infinity)', () => {
    const sum = fn('sum', 'float8');
    expect(
      fold(sum, [
        [Infinity, 1],
        [1, 1],
        [Infinity, -1],
      ]).result,
    ).toBe(1);
    expect(
      fold(sum, [
        [Infinity, 1],
        [-Infinity, 1],
        [1, 1],
        [-Infinity, -1],
      ]).result,
    ).toBe(Infinity);
    expect(
      fold(sum, [
        [Infinity, 1],
        [-Infinity, 1],
        [1, 1],
      ]).result,
    ).toBeNaN();
    expect(
      fold(sum, [
        [NaN, 1],
        [2, 1],
        [NaN, -1],
      ]).result,
    ).toBe(2);
    expect(
      fold(sum, [
        [-Infinity, 1],
        [2, 1],
      ]).result,
    ).toBe(-Infinity);
    expect(
      fold(fn('avg', 'float8'), [
        [NaN, 1],
        [2, 1],
        [4, 1],
        [NaN, -1],
      ]).result,
    ).toBe(3);
  });

  it('a numeric sum leaves NaN and ±Infinity, and shows the largest scale among the values it holds', () => {
    const sum = fn('sum', 'numeric');
    const n = (t: string) => Numeric.parse(t);
    const text = (v: Value) => String(v);
    expect(
      text(
        fold(sum, [
          [n('NaN'), 1],
          [n('2'), 1],
          [n('NaN'), -1],
        ]).result,
      ),
    ).toBe('2');
    expect(
      text(
        fold(sum, [
          [n('Infinity'), 1],
          [n('2'), 1],
        ]).result,
      ),
    ).toBe('Infinity');
    expect(
      text(
        fold(sum, [
          [n('Infinity'), 1],
          [n('-Infinity'), 1],
        ]).result,
      ),
    ).toBe('NaN');
    expect(
      text(
        fold(sum, [
          [n('1.5'), 1],
          [n('0.00'), 1],
          [n('0.00'), -1],
        ]).result,
      ),
    ).toBe('1.5');
    expect(
      text(
        fold(sum, [
          [n('1.5'), 1],
          [n('0.00'), 1],
        ]).result,
      ),
    ).toBe('1.50');
    expect(
      text(
        fold(sum, [
          [n('1.5'), 2],
          [n('2.25'), 1],
          [n('2.25'), -1],
          [n('1.5'), -1],
        ]).result,
      ),
    ).toBe('1.5');
    expect(
      text(
        fold(fn('avg', 'numeric'), [
          [n('1.5'), 1],
          [n('2.500'), 1],
          [n('2.500'), -1],
        ]).result,
      ),
    ).toBe(text(n('1.5').div(Numeric.fromBigInt(1n))));
  });

  it('a float sum is exact: retractions leave no rounding error (+1e20, +1, −1e20 gave 0, not 1)', () => {
    expect(
      fold(fn('sum', 'float8'), [
        [1e20, 1],
        [1, 1],
        [1e20, -1],
      ]).result,
    ).toBe(1);
    expect(
      fold(fn('avg', 'float8'), [
        [1e20, 1],
        [1, 1],
        [3, 1],
        [1e20, -1],
      ]).result,
    ).toBe(2);
    expect(
      fold(fn('sum', 'float4'), [
        [Math.fround(0.1), 1],
        [Math.fround(0.2), 1],
        [Math.fround(0.1), -1],
      ]).result,
    ).toBe(Math.fround(0.2));
  });

  it('reads accumulators written before the special counts and scales ([count, sum])', () => {
    expect(fold(fn('sum', 'float8'), [[1, 1]], [1n, 2.5]).result).toBe(3.5);
    expect(fold(fn('sum', 'float8'), [], [1n, 2.5, 0, 0, 0]).result).toBe(2.5);
    // An old sum that had overflowed has lost its finite part: it stays what it was.
    expect(fold(fn('sum', 'float8'), [[1e308, -1]], [3n, Infinity]).result).toBe(Infinity);
    expect(fold(fn('sum', 'float8'), [[1, 1]], [2n, NaN]).result).toBeNaN();
    expect(
      String(fold(fn('sum', 'numeric'), [[Numeric.parse('1.25'), 1]], [1n, Numeric.parse('1.5')]).result),
    ).toBe('2.75');
  });
});
