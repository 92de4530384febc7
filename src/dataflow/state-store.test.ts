/**
 * The StateStore contract, run against every store, plus LMDB's durability: a store closed and
 * reopened shows exactly the last committed epoch, and a graph rebuilt over it continues
 * correctly. (LMDB tests use a temporary directory, removed afterwards.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Row } from './change.ts';
import { count, min, stringAgg } from './default-aggregates.ts';
import { GraphBuilder } from './graph.ts';
import { LmdbStateStore } from './lmdb-state-store.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import type { StateStore } from './state-store.ts';
import { checkAgainstOracle, epochsArb } from './test-support/epochs.ts';
import { compareValues, refGroups, refJoin } from './test-support/reference.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-state-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const stores: [string, () => StateStore][] = [
  ['memory', () => new MemoryStateStore()],
  ['lmdb', () => LmdbStateStore.open({ path: tempDir() })],
];

describe.each(stores)('%s state store contract', (_name, make) => {
  it('reads its epoch’s writes, merges them into ordered scans, and commits them at once', async () => {
    const s = make();
    expect(s.lastCommittedEpoch()).toBeNull();
    s.beginEpoch(1);
    for (const k of ['b', 'd', 'f']) s.put('n1.x', k, k.toUpperCase());
    s.put('n1.y', 'a', 'other namespace');
    await s.commitEpoch(1);
    s.beginEpoch(2);
    s.put('n1.x', 'c', 'C');
    s.delete('n1.x', 'd');
    s.put('n1.x', 'f', 'F2');
    expect(s.get('n1.x', 'd')).toBeUndefined();
    expect(s.scanPrefix('n1.x', '')).toEqual([
      ['b', 'B'],
      ['c', 'C'],
      ['f', 'F2'],
    ]);
    expect(s.scanPrefix('n1.x', '', { reverse: true, limit: 2 })).toEqual([
      ['f', 'F2'],
      ['c', 'C'],
    ]);
    s.abortEpoch();
    expect(s.scanPrefix('n1.x', '').map(([k]) => k)).toEqual(['b', 'd', 'f']);
    expect(s.lastCommittedEpoch()).toBe(1);
    await s.close();
  });

  it('refuses writes outside an epoch and epochs out of order', async () => {
    const s = make();
    expect(() => s.put('n1.x', 'a', '1')).toThrow(/DATAFLOW_EPOCH_ORDER/);
    s.beginEpoch(3);
    expect(() => s.beginEpoch(4)).toThrow(/DATAFLOW_EPOCH_ORDER/);
    await s.commitEpoch(3);
    expect(() => s.beginEpoch(3)).toThrow(/DATAFLOW_EPOCH_ORDER/);
    await s.close();
  });

  it('scans agree with a sorted model over random puts and deletes', async () => {
    const s = make();
    const model = new Map<string, string>();
    const ops = fc.sample(
      fc.array(fc.tuple(fc.constantFrom('p1', 'p2', 'q'), fc.nat(30), fc.boolean()), { maxLength: 200 }),
      {
        seed: 1701,
        numRuns: 1,
      },
    )[0] as [string, number, boolean][];
    let epoch = 0;
    for (const [i, [prefix, n, del]] of ops.entries()) {
      if (i % 20 === 0) {
        if (epoch > 0) await s.commitEpoch(epoch);
        s.beginEpoch(++epoch);
      }
      const key = `${prefix}${String(n).padStart(2, '0')}`;
      if (del) {
        s.delete('n0.t', key);
        model.delete(key);
      } else {
        s.put('n0.t', key, `v${i}`);
        model.set(key, `v${i}`);
      }
      const expected = [...model].filter(([k]) => k.startsWith('p1')).sort(([a], [b]) => (a < b ? -1 : 1));
      expect(s.scanPrefix('n0.t', 'p1')).toEqual(expected);
      expect(s.scanPrefix('n0.t', 'p1', { reverse: true, limit: 3 })).toEqual(expected.reverse().slice(0, 3));
    }
    await s.close();
  });
});

describe.each(stores)('%s store: abort and rollback over repeated writes of a key', (_name, make) => {
  it('restores the committed state after any mix of reads, writes and deletes in an epoch', async () => {
    const s = make();
    const ops = fc.sample(
      fc.array(
        fc.tuple(fc.nat(3), fc.constantFrom('get', 'put', 'delete', 'put', 'delete', 'get', 'put', 'end')),
        { minLength: 400, maxLength: 400 },
      ),
      { seed: 1702, numRuns: 1 },
    )[0] as [number, string][];
    const read = (): [string, string][] => s.scanPrefix('n0.u', '');
    let committed: [string, string][] = [];
    let beforeLast: [string, string][] | null = null;
    let epoch = 1;
    s.beginEpoch(epoch);
    for (const [i, [n, op]] of ops.entries()) {
      const key = `k${n}`;
      if (op === 'get') s.get('n0.u', key);
      else if (op === 'put') s.put('n0.u', key, `v${i}`);
      else if (op === 'delete') s.delete('n0.u', key);
      else if (i % 3 === 0) {
        s.abortEpoch();
        expect(read()).toEqual(committed);
        s.beginEpoch(epoch);
      } else if (i % 3 === 1 && beforeLast !== null) {
        s.abortEpoch();
        await s.rollbackLastEpoch();
        expect(read()).toEqual(beforeLast);
        committed = beforeLast;
        beforeLast = null;
        epoch = (s.lastCommittedEpoch() ?? 0) + 1;
        s.beginEpoch(epoch);
      } else {
        const now = read();
        await s.commitEpoch(epoch);
        beforeLast = committed;
        committed = now;
        s.beginEpoch(++epoch);
      }
    }
    await s.close();
  });
});

describe('lmdb state survives close and reopen', () => {
  it('reopened store shows the last committed epoch only', async () => {
    const path = tempDir();
    const s = LmdbStateStore.open({ path });
    s.beginEpoch(1);
    s.put('n0.c', 'k', '1');
    await s.commitEpoch(1);
    s.beginEpoch(2);
    s.put('n0.c', 'k', '2');
    await s.close();
    const reopened = LmdbStateStore.open({ path });
    expect(reopened.lastCommittedEpoch()).toBe(1);
    expect(reopened.get('n0.c', 'k')).toBe('1');
    await reopened.close();
  });

  const keys = {
    leftKey: (r: Row) => [r[0] ?? null],
    rightKey: (r: Row) => [r[0] ?? null],
    leftWidth: 3,
    rightWidth: 3,
  };
  it('a full join → aggregate graph rebuilt over the reopened store matches the oracle', async () => {
    await fc.assert(
      fc.asyncProperty(epochsArb(['l', 'r']), async (epochs) => {
        const path = tempDir();
        await checkAgainstOracle(
          {
            inputs: ['l', 'r'],
            build: (store) => {
              const b = new GraphBuilder();
              const j = b.join(b.input('l'), b.input('r'), { kind: 'full', ...keys });
              b.output(
                'out',
                b.aggregate(j, {
                  groupKey: (r) => [r[2] ?? null],
                  aggregates: [
                    { fn: count },
                    { fn: min, arg: (r) => r[4] ?? null },
                    { fn: stringAgg(','), arg: (r) => r[5] ?? null },
                  ],
                }),
              );
              return b.build(store);
            },
            reference: ({ l = [], r = [] }) =>
              refGroups(refJoin(l, r, { kind: 'full', ...keys }), (x) => [x[2] ?? null]).map((g) => {
                const vs = g.rows
                  .map((x) => x[4] ?? null)
                  .filter((x) => x !== null)
                  .sort(compareValues);
                const ss = g.rows
                  .map((x) => x[5] ?? null)
                  .filter((x) => x !== null)
                  .sort(compareValues);
                return [
                  ...g.key,
                  BigInt(g.rows.length),
                  vs[0] ?? null,
                  ss.length === 0 ? null : ss.join(','),
                ];
              }),
          },
          epochs,
          {
            store: LmdbStateStore.open({ path }),
            rebuildAfter: 2,
            reopen: async (old) => {
              await old.close();
              return LmdbStateStore.open({ path });
            },
          },
        );
      }),
      { seed: 1702, numRuns: 40 },
    );
  });
});

describe('lmdb store over its RSS limit', () => {
  it('collects the heap’s garbage before dropping the map, and reads stay exact across both', async () => {
    // Limit 1 byte: always over it, so every look at the map (every 256 reads past 32 MiB of
    // map) first asks for a collection (when the heap grew by 32 MiB since the last) and then
    // re-maps. Values are 1 KiB, 48k of them: ~50 MiB of map read back.
    const s = LmdbStateStore.open({ path: tempDir(), rssLimitBytes: 1, mapBudgetBytes: 2 ** 40 });
    const value = (i: number) => `${i}:`.padEnd(1024, String.fromCharCode(97 + (i % 26)));
    s.beginEpoch(1);
    for (let i = 0; i < 48_000; i++) s.put('n1', String(i).padStart(6, '0'), value(i));
    await s.commitEpoch(1);
    let garbage: string[][] = [];
    let mismatches = 0;
    for (let i = 0; i < 48_000; i++) {
      // ~64 MiB of short-lived strings over the run: heap growth for the store to collect.
      if (i % 1000 === 0) garbage = [];
      garbage.push(Array.from({ length: 40 }, (_, j) => `${i}-${j}`.repeat(2)));
      if (s.get('n1', String(i).padStart(6, '0')) !== value(i)) mismatches++;
    }
    expect(garbage.length).toBeGreaterThan(0);
    expect(mismatches).toBe(0);
    expect(s.remaps).toBeGreaterThan(0);
    expect(s.collections).toBeGreaterThan(0);
    await s.close();
  });
});

describe('lmdb store reads', () => {
  it('a key read again (and nothing else read between) is read from the B-tree once', async () => {
    const s = LmdbStateStore.open({ path: tempDir(), spillBytes: 100 });
    s.beginEpoch(1);
    for (let i = 0; i < 50; i++) s.put('n', `k${i}`, 'v'.repeat(20));
    // Spilled as it was written: in the B-tree, not held in memory.
    await s.commitEpoch(1);
    const backend = (s as unknown as { backend: { get(ns: string, key: string): string | undefined } })
      .backend;
    const get = backend.get.bind(backend);
    let reads = 0;
    backend.get = (ns, key) => {
      reads++;
      return get(ns, key);
    };
    s.beginEpoch(2);
    for (let i = 0; i < 3; i++) expect(s.get('n', 'k1')).toBe('v'.repeat(20));
    expect(reads).toBe(1);
    s.put('n', 'k1', 'w');
    expect(s.get('n', 'k1')).toBe('w');
    s.abortEpoch();
    expect(s.get('n', 'k1')).toBe('v'.repeat(20));
    await s.close();
  });
});
