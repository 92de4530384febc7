import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Row } from './change.ts';
import { GraphBuilder } from './graph.ts';
import { orderKeyOf } from './order-key.ts';
import { checkAgainstOracle, epochsArb } from './test-support/epochs.ts';
import { compareValues, refTopN } from './test-support/reference.ts';

/** ORDER BY v ASC (NULLS LAST), s DESC (NULLS FIRST). */
const orderKey = orderKeyOf([{ column: 1 }, { column: 2, descending: true }]);
const compare = (a: Row, b: Row): number =>
  compareValues(a[1] ?? null, b[1] ?? null) || -compareValues(a[2] ?? null, b[2] ?? null);

describe('top-n against the oracle', () => {
  const variants: {
    name: string;
    seed: number;
    limit?: number;
    offset?: number;
    partition: boolean;
    rowNumber: boolean;
  }[] = [
    { name: 'ORDER BY … LIMIT 3', seed: 1501, limit: 3, partition: false, rowNumber: false },
    {
      name: 'ORDER BY … LIMIT 2 OFFSET 1',
      seed: 1502,
      limit: 2,
      offset: 1,
      partition: false,
      rowNumber: false,
    },
    { name: 'OFFSET 2 without LIMIT', seed: 1503, offset: 2, partition: false, rowNumber: false },
    {
      name: 'row_number() OVER (PARTITION BY k ORDER BY …) <= 2',
      seed: 1504,
      limit: 2,
      partition: true,
      rowNumber: true,
    },
  ];
  for (const variant of variants) {
    it(variant.name, async () => {
      const partitionKey = variant.partition ? (r: Row): Row => [r[0] ?? null] : undefined;
      const options = {
        ...(variant.limit === undefined ? {} : { limit: variant.limit }),
        ...(variant.offset === undefined ? {} : { offset: variant.offset }),
        ...(partitionKey === undefined ? {} : { partitionKey }),
        rowNumber: variant.rowNumber,
      };
      await fc.assert(
        fc.asyncProperty(epochsArb(['t']), (epochs) =>
          checkAgainstOracle(
            {
              inputs: ['t'],
              build: (store) => {
                const b = new GraphBuilder();
                b.output('out', b.topN(b.input('t'), { orderKey, ...options }));
                return b.build(store);
              },
              reference: ({ t = [] }) => refTopN(t, { compare, ...options }),
            },
            epochs,
            { rebuildAfter: 2 },
          ),
        ),
        { seed: variant.seed, numRuns: 150 },
      );
    });
  }
});
