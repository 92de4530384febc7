/** Row keys, order keys and the stored value codec (whose format is persisted: golden test). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Numeric } from '../decode/numeric.ts';
import { PgDate, PgInterval, PgTimestamp } from '../decode/temporal.ts';
import { JsonText, OpaqueText, PgArray, type Value } from '../decode/value.ts';
import { orderKeyOf, orderToken } from './order-key.ts';
import { rowKey } from './row-key.ts';
import { SortedMap } from './sorted-map.ts';
import { compareValues } from './test-support/reference.ts';
import { decodeRow, decodeRows, encodeRow, encodeRows, encodeValue } from './value-codec.ts';

const scalar: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.string({ unit: 'binary' }),
  fc.uint8Array({ maxLength: 6 }),
);

describe('row keys', () => {
  it('are equal exactly for equal rows (floats: -0 = 0, NaN = NaN) and prefix-free', () => {
    fc.assert(
      fc.property(fc.array(scalar, { maxLength: 4 }), fc.array(scalar, { maxLength: 4 }), (a, b) => {
        const ka = rowKey(a);
        const kb = rowKey(b);
        const same = ka === kb;
        expect(same).toBe(Buffer.from(encodeRow(a.map(norm))).equals(Buffer.from(encodeRow(b.map(norm)))));
        if (!same) expect(ka.startsWith(kb) || kb.startsWith(ka)).toBe(false);
      }),
      { seed: 1801, numRuns: 500 },
    );
    expect(rowKey([0])).toBe(rowKey([-0]));
    expect(rowKey([NaN])).toBe(rowKey([NaN]));
    expect(rowKey(['1'])).not.toBe(rowKey([1]));
    expect(rowKey([1])).not.toBe(rowKey([1n]));
  });
});

function norm(v: Value): Value {
  return typeof v === 'number' && Object.is(v, -0) ? 0 : v;
}

describe('order keys', () => {
  it('sort like SQL: same-typed values, NULLS LAST ascending, mirrored descending', () => {
    const sameType = fc.oneof(
      fc.array(fc.option(fc.double(), { nil: null })),
      fc.array(fc.option(fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }), { nil: null })),
      fc.array(fc.option(fc.string({ unit: 'binary' }), { nil: null })),
      fc.array(fc.option(fc.boolean(), { nil: null })),
    );
    fc.assert(
      fc.property(sameType, fc.boolean(), (values: Value[], descending) => {
        const key = orderKeyOf([{ column: 0, descending }]);
        const byKey = [...values].sort((a, b) => cmp(key([a]), key([b])));
        const expected = [...values].sort((a, b) =>
          descending ? -compareValues(a, b) : compareValues(a, b),
        );
        expect(byKey.map((v) => rowKey([norm(v)]))).toEqual(expected.map((v) => rowKey([norm(v)])));
      }),
      { seed: 1802, numRuns: 500 },
    );
  });

  it('are ASCII, and multi-column keys order column by column', () => {
    const key = orderKeyOf([{ column: 0 }, { column: 1, descending: true, nullsFirst: false }]);
    const rows: Value[][] = [
      ['b', 1],
      ['a', null],
      ['a', 2],
      ['ab', 5],
      [null, 0],
    ];
    expect([...rows].sort((x, y) => cmp(key(x), key(y)))).toEqual([
      ['a', 2],
      ['a', null],
      ['ab', 5],
      ['b', 1],
      [null, 0],
    ]);
    expect(orderToken('é', { descending: true, nullsFirst: true })).toMatch(/^[\x21-\x7e]+$/);
  });
});

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

describe('value codec', () => {
  it('round-trips every value kind', () => {
    fc.assert(
      fc.property(fc.array(scalar), (row) => {
        expect(decodeRow(encodeRow(row))).toEqual(row);
      }),
      { seed: 1803, numRuns: 300 },
    );
    const classes: Value[] = [
      new JsonText('{"a": 1}'),
      new OpaqueText('10:00', 'time'),
      new PgArray([1, null, new PgArray(['x'], 25)], 1007, [0]),
      Numeric.parse('-12.50'),
      Numeric.NAN,
      PgDate.parse('2024-02-29'),
      PgDate.INFINITY,
      PgTimestamp.parse('2024-01-02 03:04:05.5', { withTimeZone: false }),
      PgTimestamp.parse('2024-01-02 03:04:05+00', { withTimeZone: true }),
      PgTimestamp.infinity(-1, { withTimeZone: true }),
      PgInterval.parse('1 year -2 mons +3 days -04:05:06.5'),
    ];
    const back = decodeRow(encodeRow(classes));
    expect(back.map(String)).toEqual(classes.map(String));
    expect(back.map((v) => v?.constructor.name)).toEqual(classes.map((v) => v?.constructor.name));
  });

  it('keeps its persisted format (changing it needs a state migration)', () => {
    const row: Value[] = [
      null,
      true,
      1.5,
      -0,
      NaN,
      12n,
      'text',
      new Uint8Array([1, 2]),
      new JsonText('[]'),
      new PgArray([1], 1007),
      Numeric.parse('1.50'),
      PgDate.parse('2000-01-03'),
      PgTimestamp.fromMicros(5n, { withTimeZone: true }),
      new PgInterval(1, 2, 3n),
    ];
    expect(encodeRow(row)).toBe(
      '[null,true,1.5,["f","-0"],["f","NaN"],["i","12"],"text",["x","AQI="],["json","[]"],["array",[1007,[1]]],' +
        '["num","1.50"],["date",2],["tstz","5"],["iv",[1,2,"3"]]]',
    );
  });

  it('writes several rows exactly as the JSON of their encoded values', () => {
    fc.assert(
      fc.property(fc.array(fc.array(scalar, { maxLength: 4 }), { maxLength: 4 }), (rows) => {
        expect(encodeRows(rows)).toBe(JSON.stringify(rows.map((r) => r.map(encodeValue))));
        expect(decodeRows(encodeRows(rows))).toEqual(rows);
      }),
      { seed: 1804, numRuns: 300 },
    );
    const classes: Value[] = [Numeric.parse('1.50'), new PgInterval(1, 2, 3n), -0, NaN];
    expect(encodeRows([classes, []])).toBe(JSON.stringify([classes.map(encodeValue), []]));
  });

  it('refuses values it has no codec for', () => {
    class Unknown {}
    expect(() => encodeRow([new Unknown() as unknown as Value])).toThrow(/DATAFLOW_UNSUPPORTED_VALUE/);
  });
});

describe('sorted map', () => {
  it('iterates in order from any key, both ways, over random updates', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 3 }), fc.boolean())),
        fc.string({ maxLength: 3 }),
        (ops, from) => {
          const m = new SortedMap<number>();
          const model = new Map<string, number>();
          ops.forEach(([k, del], i) => {
            if (del) {
              m.delete(k);
              model.delete(k);
            } else {
              m.set(k, i);
              model.set(k, i);
            }
          });
          const sorted = [...model].sort(([a], [b]) => cmp(a, b));
          expect(m.size).toBe(model.size);
          expect([...m.entries(from)]).toEqual(sorted.filter(([k]) => k >= from));
          expect([...m.entries(from, { reverse: true })]).toEqual(
            sorted.filter(([k]) => k <= from).reverse(),
          );
        },
      ),
      { seed: 1804, numRuns: 300 },
    );
  });
});
