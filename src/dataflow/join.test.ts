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

  // Sides stored by join key (`leftUnique`/`rightUnique`): the random inputs hold up to ~8 rows
  // per key, so the by-key lines go through 0, 1 and many rows and must stay exact throughout.
  for (const [kind, seed] of kinds) {
    for (const [unique, name] of [
      [{ rightUnique: true }, 'the right side'],
      [{ leftUnique: true }, 'the left side'],
      [{ leftUnique: true, rightUnique: true }, 'both sides'],
    ] as const) {
      it(`${kind} join with ${name} stored by join key stays exact when a key holds several rows (LMDB, reopened)`, async () => {
        await fc.assert(
          fc.asyncProperty(epochsArb(['l', 'r']), async (epochs) => {
            const path = mkdtempSync(join(tmpdir(), 'tidemark-join-unique-'));
            dirs.push(path);
            const open = () => LmdbStateStore.open({ path, spillBytes: 600 });
            await checkAgainstOracle(
              {
                inputs: ['l', 'r'],
                build: (store) => {
                  const b = new GraphBuilder();
                  b.output('out', b.join(b.input('l'), b.input('r'), { kind, ...byK, ...unique }));
                  return b.build(store);
                },
                reference: ({ l = [], r = [] }) => refJoin(l, r, { kind, ...byK }),
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
          { seed: seed + 20, numRuns: 60 },
        );
      });
    }
  }

  it('a side stored by join key: an update under one key (retraction and insertion in one epoch) in either order', async () => {
    const b = new GraphBuilder();
    const l = b.input('l', { distinctRows: true });
    const r = b.input('r', { distinctRows: true });
    b.output('out', b.join(l, r, { kind: 'inner', ...byK, rightUnique: true }));
    const g = b.build(new MemoryStateStore());
    const step = async (ls: [Row, number][], rs: [Row, number][]) => {
      const out = g.step(
        new Map([
          ['l', ls.map(([row, weight]) => ({ row, weight }))],
          ['r', rs.map(([row, weight]) => ({ row, weight }))],
        ]),
      );
      await g.commit();
      return out.get('out');
    };
    expect(await step([[[1, 10, 'a'], 1]], [[[1, 20, 'b'], 1]])).toEqual([
      { row: [1, 10, 'a', 1, 20, 'b'], weight: 1 },
    ]);
    // The insertion before the retraction: the stored row must end up the new one.
    expect(
      await step(
        [],
        [
          [[1, 21, 'b'], 1],
          [[1, 20, 'b'], -1],
        ],
      ),
    ).toEqual(
      expect.arrayContaining([
        { row: [1, 10, 'a', 1, 21, 'b'], weight: 1 },
        { row: [1, 10, 'a', 1, 20, 'b'], weight: -1 },
      ]),
    );
    expect(await step([[[1, 11, 'a'], 1]], [])).toEqual([{ row: [1, 11, 'a', 1, 21, 'b'], weight: 1 }]);
  });

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
