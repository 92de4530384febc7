import { describe, expect, it } from 'vitest';
import type { Value } from '../decode/value.ts';
import { mulberry32 } from '../cli/demo/workload.ts';
import { addExact, exactToNumber } from './exact-float-sum.ts';

/**
 * The oracle, by another road: each double scaled by 2 until it is an integer (exact), summed
 * over the common denominator 2^1074 as a bigint, written out as an exact decimal and rounded once
 * by parseFloat (correctly rounded in V8).
 */
function oracle(values: readonly number[]): number {
  let total = 0n;
  for (const x of values) {
    let y = x;
    let k = 0;
    while (!Number.isInteger(y)) {
      y *= 2;
      k++;
    }
    total += BigInt(y) << BigInt(1074 - k);
  }
  if (total === 0n) return 0;
  const negative = total < 0n;
  const digits = ((negative ? -total : total) * 5n ** 1074n).toString().padStart(1075, '0');
  const text = `${digits.slice(0, -1074)}.${digits.slice(-1074)}`;
  return (negative ? -1 : 1) * parseFloat(text);
}

function fold(changes: readonly [number, number][]): number {
  const acc: Value[] = [0n, 0];
  for (const [x, w] of changes) addExact(acc, 0, 1, x, w);
  return exactToNumber(acc[0] as bigint, acc[1] as number);
}

function randomDouble(rnd: () => number): number {
  const r = rnd();
  const sign = rnd() < 0.5 ? -1 : 1;
  if (r < 0.05) return sign * rnd() * 2 ** -1060; // subnormal
  if (r < 0.1) return sign * (1 + rnd()) * 2 ** (1000 + Math.floor(rnd() * 20)); // near the top
  if (r < 0.3) return sign * Math.floor(rnd() * 1e6); // integers
  if (r < 0.5) return (sign * Math.round(rnd() * 1e6)) / 100; // prices
  return sign * (1 + rnd()) * 2 ** Math.floor(rnd() * 120 - 60);
}

describe('exact float sums', () => {
  it('a retraction leaves no rounding error behind (a running double sum gave 0, not 1)', () => {
    expect(
      fold([
        [1e20, 1],
        [1, 1],
        [1e20, -1],
      ]),
    ).toBe(1);
    expect(
      fold([
        [0.1, 1],
        [0.2, 1],
        [0.3, -1],
      ]),
    ).toBe(oracle([0.1, 0.2, -0.3]));
    expect(fold([[0.1, 3]])).toBe(oracle([0.1, 0.1, 0.1]));
    expect(
      fold([
        [5e-324, 1],
        [5e-324, 1],
      ]),
    ).toBe(1e-323);
    expect(
      fold([
        [Number.MAX_VALUE, 1],
        [Number.MAX_VALUE, 1],
      ]),
    ).toBe(Infinity);
    expect(
      fold([
        [Number.MAX_VALUE, 2],
        [Number.MAX_VALUE, -1],
      ]),
    ).toBe(Number.MAX_VALUE);
  });

  it('rounds once, ties to even, in the normal and the subnormal range', () => {
    // 1 + 2^-53 is a tie between 1 and 1 + 2^-52: even is 1; one more 2^-60 breaks it upwards.
    expect(
      fold([
        [1, 1],
        [2 ** -53, 1],
      ]),
    ).toBe(1);
    expect(
      fold([
        [1, 1],
        [2 ** -53, 1],
        [2 ** -60, 1],
      ]),
    ).toBe(1 + 2 ** -52);
    expect(
      fold([
        [1 + 2 ** -52, 1],
        [2 ** -53, 1],
      ]),
    ).toBe(1 + 2 ** -51);
    // 2^-1022 (smallest normal) − 2^-1075: a tie between two subnormals.
    expect(
      fold([
        [2 ** -1022, 1],
        [2 ** -1074, -1],
      ]),
    ).toBe(2 ** -1022 - 2 ** -1074);
  });

  it('equals the correctly rounded sum whatever the order of adds and retractions (seeded)', () => {
    const rnd = mulberry32(20261205);
    for (let round = 0; round < 300; round++) {
      const values = Array.from({ length: 1 + Math.floor(rnd() * 30) }, () => randomDouble(rnd));
      const keep = values.map(() => rnd() < 0.6);
      const kept = values.filter((_, i) => keep[i]);
      const gone = values.filter((_, i) => !keep[i]);
      const changes: [number, number][] = [
        ...values.map((v): [number, number] => [v, 1]),
        ...gone.map((v): [number, number] => [v, -1]),
      ];
      // Any order, a retraction even before its add: the exact sum commutes.
      for (let i = changes.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [changes[i], changes[j]] = [changes[j]!, changes[i]!];
      }
      const want = oracle(kept);
      expect(fold(changes), `round ${round}: ${JSON.stringify(changes)}`).toBe(want);
    }
  });
});
