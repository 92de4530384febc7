import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Value } from '../decode/value.ts';
import type { AggregateSpec } from './aggregate.ts';
import type { AggregateFunction } from './aggregate-function.ts';
import type { Row } from './change.ts';
import { avg, boolAnd, boolOr, count, max, min, stringAgg, sum } from './default-aggregates.ts';
import { GraphBuilder } from './graph.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import { decodeRows, encodeRows } from './value-codec.ts';
import type { StateStore } from './state-store.ts';
import { checkAgainstOracle, epochsArb } from './test-support/epochs.ts';
import { compareValues, refDistinct, refGroups } from './test-support/reference.ts';

const v = (r: Row): Value => r[1] ?? null;
const s = (r: Row): Value => r[2] ?? null;
const gt1 = (r: Row): Value => (r[1] === null ? null : (r[1] as number) > 1);

/** The aggregates under test, each with its from-scratch definition over a group's rows. */
const cases: { spec: AggregateSpec; ref: (rows: Row[]) => Value }[] = [
  { spec: { fn: count }, ref: (rows) => BigInt(rows.length) },
  { spec: { fn: count, arg: v }, ref: (rows) => BigInt(nonNull(rows, v).length) },
  {
    spec: { fn: count, arg: v, distinct: true },
    ref: (rows) => BigInt(refDistinct(nonNull(rows, v).map((x) => [x])).length),
  },
  {
    spec: { fn: sum, arg: v },
    ref: (rows) => (nonNull(rows, v).length === 0 ? null : total(nonNull(rows, v))),
  },
  {
    spec: { fn: sum, arg: v, distinct: true },
    ref: (rows) =>
      nonNull(rows, v).length === 0
        ? null
        : total(refDistinct(nonNull(rows, v).map((x) => [x])).map((r) => r[0] ?? null)),
  },
  {
    spec: { fn: avg, arg: v },
    ref: (rows) => (nonNull(rows, v).length === 0 ? null : total(nonNull(rows, v)) / nonNull(rows, v).length),
  },
  { spec: { fn: min, arg: v }, ref: (rows) => sorted(nonNull(rows, v))[0] ?? null },
  { spec: { fn: max, arg: s }, ref: (rows) => sorted(nonNull(rows, s)).at(-1) ?? null },
  {
    spec: { fn: boolAnd, arg: gt1 },
    ref: (rows) => (nonNull(rows, gt1).length === 0 ? null : nonNull(rows, gt1).every((x) => x === true)),
  },
  {
    spec: { fn: boolOr, arg: gt1 },
    ref: (rows) => (nonNull(rows, gt1).length === 0 ? null : nonNull(rows, gt1).some((x) => x === true)),
  },
  {
    spec: { fn: stringAgg(','), arg: s },
    ref: (rows) => (nonNull(rows, s).length === 0 ? null : sorted(nonNull(rows, s)).join(',')),
  },
  {
    spec: { fn: stringAgg('|'), arg: s, distinct: true },
    ref: (rows) => (nonNull(rows, s).length === 0 ? null : sorted([...new Set(nonNull(rows, s))]).join('|')),
  },
];

function nonNull(rows: Row[], f: (r: Row) => Value): Value[] {
  return rows.map(f).filter((x) => x !== null);
}
function total(values: Value[]): number {
  return values.reduce<number>((a, x) => a + (x as number), 0);
}
function sorted(values: Value[]): Value[] {
  return [...values].sort(compareValues);
}

/** Only invertible aggregates: a group's last output is derived from its accumulators. */
const invertible = cases.filter((c) => c.spec.fn.kind === 'invertible');

function buildAggregate(groupKey: ((r: Row) => Row) | undefined, of = cases) {
  return (store: StateStore) => {
    const b = new GraphBuilder();
    const specs = of.map((c) => c.spec);
    b.output(
      'out',
      b.aggregate(
        b.input('t'),
        groupKey === undefined ? { aggregates: specs } : { groupKey, aggregates: specs },
      ),
    );
    return b.build(store);
  };
}

describe('aggregate against the oracle', () => {
  it('GROUP BY k (NULL is a group) with every aggregate function', async () => {
    const key = (r: Row): Row => [r[0] ?? null];
    await fc.assert(
      fc.asyncProperty(epochsArb(['t']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['t'],
            build: buildAggregate(key),
            reference: ({ t = [] }) =>
              refGroups(t, key).map((g) => [...g.key, ...cases.map((c) => c.ref(g.rows))]),
          },
          epochs,
          { rebuildAfter: 3 },
        ),
      ),
      { seed: 1401, numRuns: 150 },
    );
  });

  it('GROUP BY k with invertible aggregates only (the last output derived, not stored)', async () => {
    const key = (r: Row): Row => [r[0] ?? null];
    await fc.assert(
      fc.asyncProperty(epochsArb(['t']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['t'],
            build: buildAggregate(key, invertible),
            reference: ({ t = [] }) =>
              refGroups(t, key).map((g) => [...g.key, ...invertible.map((c) => c.ref(g.rows))]),
          },
          epochs,
          { rebuildAfter: 2 },
        ),
      ),
      { seed: 1404, numRuns: 150 },
    );
  });

  it('without GROUP BY, invertible aggregates only', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['t']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['t'],
            build: buildAggregate(undefined, invertible),
            reference: ({ t = [] }) => [invertible.map((c) => c.ref(t))],
          },
          epochs,
          { rebuildAfter: 2 },
        ),
      ),
      { seed: 1405, numRuns: 100 },
    );
  });

  it('reads groups stored with their last output (state written before it was derived)', async () => {
    const store = new MemoryStateStore();
    const build = () => {
      const b = new GraphBuilder();
      const specs = [{ fn: count }, { fn: sum, arg: v }];
      b.output('out', b.aggregate(b.input('t'), { groupKey: (r) => [r[0] ?? null], aggregates: specs }));
      return b.build(store);
    };
    const g1 = build();
    const first = g1.step(
      new Map([
        [
          't',
          [
            { row: ['a', 2], weight: 1 },
            { row: ['a', 3], weight: 1 },
          ],
        ],
      ]),
      { epoch: 1 },
    );
    await g1.commit();
    expect(first.get('out')).toEqual([{ row: ['a', 2n, 5], weight: 1 }]);
    // Rewrite the group in the earlier form: [[rows, true], key, lastOutput, ...accs].
    const [[gk, text]] = store.scanPrefix('n1.g', '') as [[string, string]];
    const [head, key, ...accs] = decodeRows(text);
    expect(head).toEqual([2]);
    store.beginEpoch(2);
    store.put('n1.g', gk, encodeRows([[2, true], key!, ['a', 2n, 5], ...accs]));
    await store.commitEpoch(2);
    const g2 = build();
    const next = g2.step(new Map([['t', [{ row: ['a', 2], weight: -1 }]]]), { epoch: 3 });
    expect(next.get('out')).toEqual([
      { row: ['a', 2n, 5], weight: -1 },
      { row: ['a', 1n, 3], weight: 1 },
    ]);
  });

  it('without GROUP BY there is always exactly one row', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['t']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['t'],
            build: buildAggregate(undefined),
            reference: ({ t = [] }) => [cases.map((c) => c.ref(t))],
          },
          epochs,
        ),
      ),
      { seed: 1402, numRuns: 150 },
    );
  });

  it('global aggregate over nothing is count 0 and sum NULL, from the first epoch', () => {
    const b = new GraphBuilder();
    b.output('out', b.aggregate(b.input('t'), { aggregates: [{ fn: count }, { fn: sum, arg: v }] }));
    const g = b.build(new MemoryStateStore());
    expect(g.step(new Map()).get('out')).toEqual([{ row: [0n, null], weight: 1 }]);
  });

  it('a fold stopped by an error, or an aborted epoch, leaves no folded group behind', async () => {
    // Folds in place, as count and sum do, and fails on 'boom' after it has added.
    const fragile: AggregateFunction = {
      kind: 'invertible',
      init: () => [0],
      add: (acc, value, weight) => {
        (acc as Value[])[0] = (acc[0] as number) + (value === 'boom' ? 100 : (value as number)) * weight;
        if (value === 'boom') throw new Error('boom');
        return acc;
      },
      result: (acc) => acc[0] ?? null,
    };
    const b = new GraphBuilder();
    const specs = [{ fn: count }, { fn: fragile, arg: v }];
    b.output('out', b.aggregate(b.input('t'), { groupKey: (r) => [r[0] ?? null], aggregates: specs }));
    const g = b.build(new MemoryStateStore());
    g.step(new Map([['t', [{ row: ['a', 2], weight: 1 }]]]), { epoch: 1 });
    await g.commit();
    expect(() =>
      g.step(
        new Map([
          [
            't',
            [
              { row: ['a', 3], weight: 1 },
              { row: ['a', 'boom'], weight: 1 },
            ],
          ],
        ]),
        { epoch: 2 },
      ),
    ).toThrow('boom');
    let next = g.step(new Map([['t', [{ row: ['a', 7], weight: 1 }]]]), { epoch: 2 });
    expect(next.get('out')).toEqual([
      { row: ['a', 1n, 2], weight: -1 },
      { row: ['a', 2n, 9], weight: 1 },
    ]);
    g.abort();
    g.step(new Map([['t', [{ row: ['a', 5], weight: 1 }]]]), { epoch: 2 });
    g.abort();
    next = g.step(new Map([['t', [{ row: ['a', 7], weight: 1 }]]]), { epoch: 2 });
    expect(next.get('out')).toEqual([
      { row: ['a', 1n, 2], weight: -1 },
      { row: ['a', 2n, 9], weight: 1 },
    ]);
  });

  it('sums bigints exactly', async () => {
    const b = new GraphBuilder();
    b.output('out', b.aggregate(b.input('t'), { aggregates: [{ fn: sum, arg: (r) => r[0] ?? null }] }));
    const g = b.build(new MemoryStateStore());
    g.step(new Map());
    await g.commit();
    const big = 2n ** 62n;
    const out = g
      .step(
        new Map([
          [
            't',
            [
              { row: [big], weight: 1 },
              { row: [big + 1n], weight: 3 },
            ],
          ],
        ]),
      )
      .get('out');
    expect(out).toContainEqual({ row: [big * 4n + 3n], weight: 1 });
  });
});
