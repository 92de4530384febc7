import fc from 'fast-check';
import { describe, it } from 'vitest';
import { GraphBuilder } from './graph.ts';
import type { Row } from './change.ts';
import { checkAgainstOracle, epochsArb } from './test-support/epochs.ts';

const gt1 = (r: Row): boolean | null => (r[1] === null ? null : (r[1] as number) > 1);

describe('filter, map, union all against the oracle', () => {
  it('filter passes only rows whose predicate is true (NULL is dropped)', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['t']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['t'],
            build: (store) => {
              const b = new GraphBuilder();
              b.output('out', b.filter(b.input('t'), { predicate: gt1 }));
              return b.build(store);
            },
            reference: ({ t = [] }) => t.filter((r) => gt1(r) === true),
          },
          epochs,
        ),
      ),
      { seed: 1101, numRuns: 100 },
    );
  });

  it('map projects, and projections that collide consolidate', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['t']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['t'],
            build: (store) => {
              const b = new GraphBuilder();
              b.output('out', b.map(b.input('t'), { project: (r) => [r[0] ?? null] }));
              return b.build(store);
            },
            reference: ({ t = [] }) => t.map((r) => [r[0] ?? null]),
          },
          epochs,
        ),
      ),
      { seed: 1102, numRuns: 100 },
    );
  });

  it('union all concatenates with multiplicities', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['a', 'b']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['a', 'b'],
            build: (store) => {
              const b = new GraphBuilder();
              b.output(
                'out',
                b.unionAll([b.input('a'), b.input('b'), b.filter(b.input('b2'), { predicate: () => true })]),
              );
              return b.build(store);
            },
            reference: ({ a = [], b = [] }) => [...a, ...b],
          },
          epochs,
        ),
      ),
      { seed: 1103, numRuns: 100 },
    );
  });
});
