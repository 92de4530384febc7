import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Row } from './change.ts';
import { count, max, sum } from './default-aggregates.ts';
import { GraphBuilder } from './graph.ts';
import { orderKeyOf } from './order-key.ts';
import type { StateStore } from './state-store.ts';
import { checkAgainstOracle, epochsArb } from './test-support/epochs.ts';
import { compareValues, refDistinct, refGroups, refJoin, refTopN } from './test-support/reference.ts';

const joinKeys = {
  leftKey: (r: Row) => [r[0] ?? null],
  rightKey: (r: Row) => [r[0] ?? null],
  leftWidth: 3,
  rightWidth: 3,
};

/** SELECT l.k, count(*), sum(r.v), max(l.s) FROM l LEFT JOIN r USING (k) GROUP BY l.k */
function joinAggregate(store: StateStore) {
  const b = new GraphBuilder();
  const j = b.join(b.input('l'), b.input('r'), { kind: 'left', ...joinKeys });
  b.output(
    'out',
    b.aggregate(j, {
      groupKey: (r) => [r[0] ?? null],
      aggregates: [
        { fn: count },
        { fn: sum, arg: (r) => r[4] ?? null },
        { fn: max, arg: (r) => r[2] ?? null },
      ],
    }),
  );
  return b.build(store);
}

function refJoinAggregate({ l = [], r = [] }: Record<string, Row[]>): Row[] {
  return refGroups(refJoin(l, r, { kind: 'left', ...joinKeys }), (x) => [x[0] ?? null]).map((g) => {
    const vs = g.rows.map((x) => x[4] ?? null).filter((x) => x !== null);
    const ss = g.rows.map((x) => x[2] ?? null).filter((x) => x !== null);
    return [
      ...g.key,
      BigInt(g.rows.length),
      vs.length === 0 ? null : vs.reduce<number>((a, x) => a + (x as number), 0),
      ss.length === 0 ? null : ([...ss].sort(compareValues).at(-1) ?? null),
    ];
  });
}

/** Top 2 groups by count(*) DESC: SELECT s, count(*) FROM t GROUP BY s ORDER BY 2 DESC LIMIT 2 */
function aggregateTopN(store: StateStore) {
  const b = new GraphBuilder();
  const a = b.aggregate(b.input('t'), { groupKey: (r) => [r[2] ?? null], aggregates: [{ fn: count }] });
  b.output('out', b.topN(a, { orderKey: orderKeyOf([{ column: 1, descending: true }]), limit: 2 }));
  return b.build(store);
}

function refAggregateTopN({ t = [] }: Record<string, Row[]>): Row[] {
  const groups = refGroups(t, (r) => [r[2] ?? null]).map((g) => [...g.key, BigInt(g.rows.length)]);
  return refTopN(groups, { compare: (a, b) => -compareValues(a[1] ?? null, b[1] ?? null), limit: 2 });
}

/** SELECT k FROM a UNION SELECT k FROM b */
function unionDistinct(store: StateStore) {
  const b = new GraphBuilder();
  const project = { project: (r: Row): Row => [r[0] ?? null] };
  b.output('out', b.distinct(b.unionAll([b.map(b.input('a'), project), b.map(b.input('b'), project)])));
  return b.build(store);
}

describe('composed graphs against the oracle, rebuilt over the same store part-way', () => {
  it('left join → aggregate', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['l', 'r']), (epochs) =>
        checkAgainstOracle(
          { inputs: ['l', 'r'], build: joinAggregate, reference: refJoinAggregate },
          epochs,
          { rebuildAfter: 3 },
        ),
      ),
      { seed: 1601, numRuns: 150 },
    );
  });

  it('aggregate → top-n', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['t']), (epochs) =>
        checkAgainstOracle({ inputs: ['t'], build: aggregateTopN, reference: refAggregateTopN }, epochs, {
          rebuildAfter: 3,
        }),
      ),
      { seed: 1602, numRuns: 150 },
    );
  });

  it('union all → distinct (UNION)', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['a', 'b']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['a', 'b'],
            build: unionDistinct,
            reference: ({ a = [], b = [] }) => refDistinct([...a, ...b].map((r) => [r[0] ?? null])),
          },
          epochs,
          { rebuildAfter: 3 },
        ),
      ),
      { seed: 1603, numRuns: 150 },
    );
  });
});
