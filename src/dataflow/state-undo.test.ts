/**
 * One level of undo: after `commitEpoch(n)`, `rollbackLastEpoch()` restores exactly the state
 * after n−1 — in memory, and in LMDB across a close and reopen between the commit and the
 * rollback. Random puts and deletes against a model (fixed seeds); temp directories removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { LmdbStateStore } from './lmdb-state-store.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import type { StateStore } from './state-store.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dump(s: StateStore): [string, string][] {
  return [
    ...s.scanPrefix('n1.a', ''),
    ...s.scanPrefix('n2.b', '').map(([k, v]) => [`b${k}`, v] as [string, string]),
  ];
}

/**
 * A write, made blind, after a read of the key (a read that finds nothing tells the store the
 * write's prior), or as an `insert` when the key holds nothing.
 */
type Op = [ns: 'n1.a' | 'n2.b', key: string, value: string | null, how: 'blind' | 'read' | 'insert'];
const epochArb = fc.array(
  fc.tuple(
    fc.constantFrom('n1.a' as const, 'n2.b' as const),
    fc.string({ maxLength: 2 }),
    fc.option(fc.string({ maxLength: 3 }), { nil: null }),
    fc.constantFrom('blind' as const, 'read' as const, 'insert' as const),
  ),
  { maxLength: 12 },
);

async function apply(s: StateStore, epoch: number, ops: readonly Op[]): Promise<void> {
  s.beginEpoch(epoch);
  for (const [ns, k, v, how] of ops) {
    const current = how === 'blind' ? null : s.get(ns, k);
    if (v === null) s.delete(ns, k);
    else if (how === 'insert' && current === undefined) s.insert(ns, k, v);
    else s.put(ns, k, v);
  }
  await s.commitEpoch(epoch);
}

describe.each([
  ['memory', false, undefined],
  ['lmdb', true, undefined],
  // Every write spills into LMDB at once: undo comes from the on-disk log.
  ['lmdb spilling every write', true, 1],
  // Spills every few writes: a key read absent, then spilled, then written again in the epoch.
  ['lmdb spilling every few writes', true, 400],
])('%s store: rollback of the last epoch', (_name, durable, spillBytes) => {
  it(
    'restores the previous epoch exactly (random epochs, rollback at random points)',
    { timeout: 120_000 },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(epochArb, fc.boolean()), { minLength: 1, maxLength: 8 }),
          async (epochs) => {
            const path = durable ? mkdtempSync(join(tmpdir(), 'tidemark-undo-')) : '';
            if (durable) dirs.push(path);
            const open = (): StateStore =>
              durable
                ? LmdbStateStore.open({ path, ...(spillBytes === undefined ? {} : { spillBytes }) })
                : new MemoryStateStore();
            let s = open();
            let before = dump(s);
            let prevEpoch: number | null = null;
            let epoch = 0;
            for (const [ops, rollback] of epochs) {
              await apply(s, epoch, ops);
              expect(s.undoableEpoch()).toBe(epoch);
              if (rollback) {
                if (durable) {
                  await s.close();
                  s = open();
                }
                await s.rollbackLastEpoch();
                expect(dump(s)).toEqual(before);
                expect(s.lastCommittedEpoch()).toBe(prevEpoch);
                expect(s.undoableEpoch()).toBeNull();
                await expect(s.rollbackLastEpoch()).rejects.toThrow(/DATAFLOW_EPOCH_ORDER/);
                // The same epoch number is committed again, as the runtime replays it.
                await apply(s, epoch, ops);
              }
              before = dump(s);
              prevEpoch = epoch;
              epoch++;
            }
            await s.close();
          },
        ),
        { seed: 2024, numRuns: spillBytes !== undefined ? 25 : durable ? 40 : 100 },
      );
    },
  );

  it('refuses to roll back with an open epoch or on a fresh store', async () => {
    const s = durable
      ? LmdbStateStore.open({
          path: mkdtempSync(join(tmpdir(), 'tidemark-undo-')),
          ...(spillBytes === undefined ? {} : { spillBytes }),
        })
      : new MemoryStateStore();
    await expect(s.rollbackLastEpoch()).rejects.toThrow(/DATAFLOW_EPOCH_ORDER/);
    await apply(s, 0, [['n1.a', 'k', 'v', 'blind']]);
    s.beginEpoch(1);
    await expect(s.rollbackLastEpoch()).rejects.toThrow(/DATAFLOW_EPOCH_ORDER/);
    s.abortEpoch();
    await s.rollbackLastEpoch();
    expect(s.lastCommittedEpoch()).toBeNull();
    expect(s.get('n1.a', 'k')).toBeUndefined();
    await s.close();
  });
});

describe('lmdb store spilling an epoch', () => {
  it('reads, scans and aborts an epoch whose writes spilled, and a reopened store undoes an epoch left open', async () => {
    const path = mkdtempSync(join(tmpdir(), 'tidemark-undo-'));
    dirs.push(path);
    const s = LmdbStateStore.open({ path, spillBytes: 200 });
    await apply(s, 1, [
      ['n1.a', 'k1', 'one', 'blind'],
      ['n1.a', 'k2', 'two', 'blind'],
    ]);
    s.beginEpoch(2);
    for (let i = 0; i < 50; i++) s.put('n1.a', `m${String(i).padStart(2, '0')}`, `v${i}`);
    s.put('n1.a', 'k1', 'changed');
    s.delete('n1.a', 'k2');
    expect(s.get('n1.a', 'm00')).toBe('v0');
    expect(s.get('n1.a', 'k1')).toBe('changed');
    expect(s.get('n1.a', 'k2')).toBeUndefined();
    expect(s.scanPrefix('n1.a', 'm').length).toBe(50);
    expect(s.scanPrefix('n1.a', 'm', { after: 'm47' }).map(([k]) => k)).toEqual(['m48', 'm49']);
    s.abortEpoch();
    expect(dump(s)).toEqual([
      ['k1', 'one'],
      ['k2', 'two'],
    ]);
    // Spilled, then the process is gone without commit or abort: the next open undoes it.
    s.beginEpoch(2);
    for (let i = 0; i < 50; i++) s.put('n1.a', `x${i}`, 'y');
    s.delete('n1.a', 'k1');
    const again = LmdbStateStore.open({ path, spillBytes: 200 });
    expect(again.lastCommittedEpoch()).toBe(1);
    expect(dump(again)).toEqual([
      ['k1', 'one'],
      ['k2', 'two'],
    ]);
    await again.close();
  });
});

describe('insert of a key known to hold a value', () => {
  it('is refused (DATAFLOW_STATE_CORRUPT) rather than logged as absent, which would lose the value on rollback', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-insert-'));
    dirs.push(dir);
    const s = LmdbStateStore.open({ path: dir });
    s.beginEpoch(1);
    s.put('n1.a', 'k', 'v1');
    expect(() => s.insert('n1.a', 'k', 'v2')).toThrow(/already holds a value/);
    await s.commitEpoch(1);
    s.beginEpoch(2);
    expect(s.get('n1.a', 'k')).toBe('v1');
    expect(() => s.insert('n1.a', 'k', 'v3')).toThrow(/already holds a value/);
    s.insert('n1.a', 'new', 'v4');
    s.abortEpoch();
    // A key the epoch log holds (written in a recent epoch), not the last key read.
    s.beginEpoch(2);
    expect(s.get('n1.a', 'k')).toBe('v1');
    s.put('n1.a', 'k', 'v2');
    await s.commitEpoch(2);
    s.beginEpoch(3);
    expect(s.get('n1.a', 'other')).toBeUndefined();
    expect(() => s.insert('n1.a', 'k', 'v3')).toThrow(/already holds a value/);
    s.abortEpoch();
    await s.close();
  });
});
