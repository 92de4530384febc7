import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from './graph.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import { checkAgainstOracle, epochsArb } from './test-support/epochs.ts';
import { refDistinct } from './test-support/reference.ts';

describe('distinct', () => {
  it('matches the oracle over random epochs', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['t']), (epochs) =>
        checkAgainstOracle(
          {
            inputs: ['t'],
            build: (store) => {
              const b = new GraphBuilder();
              b.output(
                'out',
                b.distinct(b.map(b.input('t'), { project: (r) => [r[0] ?? null, r[2] ?? null] })),
              );
              return b.build(store);
            },
            reference: ({ t = [] }) => refDistinct(t.map((r) => [r[0] ?? null, r[2] ?? null])),
          },
          epochs,
          { rebuildAfter: 3 },
        ),
      ),
      { seed: 1201, numRuns: 150 },
    );
  });

  it('emits a row once however many copies arrive, and retracts it with the last copy', async () => {
    const b = new GraphBuilder();
    b.output('out', b.distinct(b.input('t')));
    const g = b.build(new MemoryStateStore());
    expect(g.step(new Map([['t', [{ row: ['x'], weight: 3 }]]])).get('out')).toEqual([
      { row: ['x'], weight: 1 },
    ]);
    await g.commit();
    expect(g.step(new Map([['t', [{ row: ['x'], weight: -2 }]]])).get('out')).toEqual([]);
    await g.commit();
    expect(g.step(new Map([['t', [{ row: ['x'], weight: -1 }]]])).get('out')).toEqual([
      { row: ['x'], weight: -1 },
    ]);
  });
});
