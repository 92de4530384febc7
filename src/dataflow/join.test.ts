import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Row } from './change.ts';
import { GraphBuilder } from './graph.ts';
import type { JoinKind } from './join.ts';
import { LmdbStateStore } from './lmdb-state-store.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import { checkAgainstOracle, epochsArb, type Op } from './test-support/epochs.ts';
import { refJoin } from './test-support/reference.ts';

const byK = {
  leftKey: (r: Row) => [r[0] ?? null],
  rightKey: (r: Row) => [r[0] ?? null],
  leftWidth: 3,
  rightWidth: 3,
};
const byKS = {
  leftKey: (r: Row) => [r[0] ?? null, r[2] ?? null],
  rightKey: (r: Row) => [r[0] ?? null, r[2] ?? null],
  leftWidth: 3,
  rightWidth: 3,
};

/** Every inserted row gets a unique id as its last column: inputs that never hold a row twice. */
function withIds(epochs: Record<string, Op[]>[]): Record<string, Op[]>[] {
  let id = 0;
  const tag = (op: Op): Op => (op.tag === 'delete' ? op : { ...op, row: [...op.row, id++] });
  return epochs.map((e) => Object.fromEntries(Object.entries(e).map(([name, ops]) => [name, ops.map(tag)])));
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('join against the oracle', () => {
  const kinds: [JoinKind, number][] = [
    ['inner', 1301],
    ['left', 1302],
    ['right', 1303],
    ['full', 1304],
  ];
  for (const [kind, seed] of kinds) {
    for (const [keys, name] of [
      [byK, 'one key column'],
      [byKS, 'two key columns'],
    ] as const) {
      it(`${kind} join on ${name} (NULL keys never match)`, async () => {
        await fc.assert(
          fc.asyncProperty(epochsArb(['l', 'r']), (epochs) =>
            checkAgainstOracle(
              {
                inputs: ['l', 'r'],
                build: (store) => {
                  const b = new GraphBuilder();
                  b.output('out', b.join(b.input('l'), b.input('r'), { kind, ...keys }));
                  return b.build(store);
                },
                reference: ({ l = [], r = [] }) => refJoin(l, r, { kind, ...keys }),
              },
              epochs,
              { rebuildAfter: 4 },
            ),
          ),
          { seed: seed + (keys === byK ? 0 : 10), numRuns: 150 },
        );
      });
    }
  }

  for (const kind of ['inner', 'left', 'full'] as const) {
    it(`${kind} join of inputs without duplicate rows (stored without count reads), on LMDB spilling`, async () => {
      const keys = { ...byK, leftWidth: 4, rightWidth: 4 };
      await fc.assert(
        fc.asyncProperty(epochsArb(['l', 'r']).map(withIds), async (epochs) => {
          const path = mkdtempSync(join(tmpdir(), 'tidemark-join-'));
          dirs.push(path);
          const open = () => LmdbStateStore.open({ path, spillBytes: 600 });
          await checkAgainstOracle(
            {
              inputs: ['l', 'r'],
              build: (store) => {
                const b = new GraphBuilder();
                const l = b.input('l', { distinctRows: true });
                const r = b.input('r', { distinctRows: true });
                // A second join over the first one's output: without duplicates too when inner.
                const lr = b.join(l, r, { kind, ...keys });
                b.output('out', b.join(lr, r, { kind: 'inner', ...keys, leftWidth: 8 }));
                return b.build(store);
              },
              reference: ({ l = [], r = [] }) =>
                refJoin(refJoin(l, r, { kind, ...keys }), r, { kind: 'inner', ...keys, leftWidth: 8 }),
            },
            epochs,
            {
              store: open(),
              rebuildAfter: 3,
              reopen: async (old) => {
                await old.close();
                return open();
              },
            },
          );
        }),
        { seed: 1310, numRuns: 60 },
      );
    });
  }

  it('a left join retracts the padded row when the first match arrives and restores it when the last leaves', async () => {
    const b = new GraphBuilder();
    b.output('out', b.join(b.input('l'), b.input('r'), { kind: 'left', ...byK }));
    const g = b.build(new MemoryStateStore());
    const step = async (l: [Row, number][], r: [Row, number][]) => {
      const out = g.step(
        new Map([
          ['l', l.map(([row, weight]) => ({ row, weight }))],
          ['r', r.map(([row, weight]) => ({ row, weight }))],
        ]),
      );
      await g.commit();
      return out.get('out');
    };
    expect(await step([[[1, 10, 'a'], 1]], [])).toEqual([{ row: [1, 10, 'a', null, null, null], weight: 1 }]);
    expect(await step([], [[[1, 20, 'b'], 1]])).toEqual(
      expect.arrayContaining([
        { row: [1, 10, 'a', 1, 20, 'b'], weight: 1 },
        { row: [1, 10, 'a', null, null, null], weight: -1 },
      ]),
    );
    expect(await step([], [[[1, 20, 'b'], -1]])).toEqual(
      expect.arrayContaining([
        { row: [1, 10, 'a', 1, 20, 'b'], weight: -1 },
        { row: [1, 10, 'a', null, null, null], weight: 1 },
      ]),
    );
  });
});
