/** sortKey() of the class values: plain string order must be PostgreSQL's order (their compare()). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Numeric } from './numeric.ts';
import { PgDate, PgInterval, PgTimestamp } from './temporal.ts';

function sameOrder<T extends { sortKey(): string; compare(o: T): number }>(a: T, b: T): void {
  const ka = a.sortKey();
  const kb = b.sortKey();
  expect(Math.sign(ka < kb ? -1 : ka > kb ? 1 : 0), `${String(a)} vs ${String(b)}`).toBe(
    Math.sign(a.compare(b)),
  );
}

const numeric = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.constantFrom(Numeric.NAN, Numeric.POSITIVE_INFINITY, Numeric.NEGATIVE_INFINITY),
  },
  {
    weight: 12,
    arbitrary: fc
      .tuple(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: 0, max: 40 }))
      .map(([c, s]) => Numeric.of(c, s)),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.integer({ min: -30, max: 30 }), fc.integer({ min: 0, max: 4 }))
      .map(([c, s]) => Numeric.of(BigInt(c), s)),
  },
);

describe('sortKey order equals PostgreSQL order', () => {
  it('numeric (scales ignored, specials placed as PostgreSQL places them)', () => {
    fc.assert(
      fc.property(numeric, numeric, (a, b) => sameOrder(a, b)),
      { seed: 42, numRuns: 3000 },
    );
    expect(Numeric.parse('1.0').sortKey()).toBe(Numeric.parse('1.00').sortKey());
    expect(Numeric.parse('-0.00').sortKey()).toBe(Numeric.parse('0').sortKey());
  });

  it('date, timestamp and interval, infinities included', () => {
    const days = fc.oneof(
      fc.constantFrom(Infinity, -Infinity),
      fc.integer({ min: -2_451_545, max: 2_145_031_948 }),
    );
    fc.assert(
      fc.property(days, days, (a, b) => sameOrder(PgDate.fromDays(a), PgDate.fromDays(b))),
      {
        seed: 7,
        numRuns: 1000,
      },
    );
    const ts = fc.oneof(
      fc.constantFrom(
        PgTimestamp.infinity(1, { withTimeZone: false }),
        PgTimestamp.infinity(-1, { withTimeZone: false }),
      ),
      fc
        .bigInt({ min: -(2n ** 62n), max: 2n ** 62n })
        .map((us) => PgTimestamp.fromMicros(us, { withTimeZone: false })),
    );
    fc.assert(
      fc.property(ts, ts, (a, b) => sameOrder(a, b)),
      { seed: 8, numRuns: 1000 },
    );
    const iv = fc
      .tuple(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      )
      .map(([m, d, us]) => new PgInterval(m, d, us));
    fc.assert(
      fc.property(iv, iv, (a, b) => sameOrder(a, b)),
      { seed: 9, numRuns: 1000 },
    );
  });
});
