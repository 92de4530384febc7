/**
 * The LMDB store's epoch log (epoch-log.ts): committed epochs held in memory and in a sequential
 * log, merged into the B-tree once they pass `memtableBytes`. Random operations against the memory
 * store, with merges forced at every commit or every few, spills, reopens, reopens without a
 * close (a crash), aborts and rollbacks at random points (fixed seeds); and a crash after each
 * transaction of a merge that spans several. Temp directories removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecords, writeUtf8 } from './epoch-log.ts';
import { LmdbStateStore, type LmdbStateStoreOptions } from './lmdb-state-store.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import type { ScanOptions, StateStore } from './state-store.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-elog-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const NS = ['n1.a', 'n2'] as const;

function dump(s: StateStore): [string, string][] {
  return NS.flatMap((ns) => s.scanPrefix(ns, '').map(([k, v]) => [`${ns}|${k}`, v] as [string, string]));
}

type Op =
  | { op: 'put' | 'insert'; ns: number; key: string; value: string }
  | { op: 'delete' | 'get'; ns: number; key: string }
  | { op: 'scan'; ns: number; prefix: string; reverse: boolean; limit: number; after: string | null }
  | { op: 'commit' | 'abort' | 'rollback' | 'reopen' | 'crash' };

const keyArb = fc.stringMatching(/^[ab]{0,3}$/);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constantFrom('put' as const, 'insert' as const),
      ns: fc.nat(1),
      key: keyArb,
      value: fc.string({ maxLength: 4 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom('delete' as const, 'get' as const),
      ns: fc.nat(1),
      key: keyArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('scan' as const),
      ns: fc.nat(1),
      prefix: fc.stringMatching(/^[ab]{0,1}$/),
      reverse: fc.boolean(),
      limit: fc.integer({ min: 1, max: 6 }),
      after: fc.option(keyArb, { nil: null }),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ op: 'commit' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constantFrom('abort' as const, 'rollback' as const, 'reopen' as const, 'crash' as const),
    }),
  },
);

describe('lmdb epoch log against the memory store', () => {
  it(
    'agrees on every read across merges, spills, reopens, crashes, aborts and rollbacks',
    { timeout: 300_000 },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(opArb, { minLength: 20, maxLength: 120 }),
          fc.constantFrom(1, 600, 2 ** 30),
          fc.constantFrom(undefined, 300, 2000),
          async (ops, memtableBytes, spillBytes) => {
            await breathe();
            const path = tempDir();
            const options: LmdbStateStoreOptions = {
              path,
              memtableBytes,
              ...(spillBytes === undefined ? {} : { spillBytes }),
            };
            let lmdb = LmdbStateStore.open(options);
            const memory = new MemoryStateStore();
            const both = (f: (s: StateStore) => void) => {
              f(lmdb);
              f(memory);
            };
            let epoch = 1;
            both((s) => s.beginEpoch(epoch));
            let open = true;
            const reopen = () => {
              epoch = (memory.lastCommittedEpoch() ?? 0) + 1;
              both((s) => s.beginEpoch(epoch));
              open = true;
            };
            for (const o of ops) {
              if (o.op === 'commit') {
                if (open) {
                  await lmdb.commitEpoch(epoch);
                  await memory.commitEpoch(epoch);
                }
                expect(dump(lmdb)).toEqual(dump(memory));
                epoch++;
                both((s) => s.beginEpoch(epoch));
                open = true;
              } else if (o.op === 'abort') {
                both((s) => s.abortEpoch());
                expect(dump(lmdb)).toEqual(dump(memory));
                reopen();
              } else if (o.op === 'rollback') {
                both((s) => s.abortEpoch());
                expect(lmdb.undoableEpoch()).toBe(memory.undoableEpoch());
                if (memory.undoableEpoch() !== null) {
                  await lmdb.rollbackLastEpoch();
                  await memory.rollbackLastEpoch();
                }
                expect(lmdb.lastCommittedEpoch()).toBe(memory.lastCommittedEpoch());
                expect(dump(lmdb)).toEqual(dump(memory));
                reopen();
              } else if (o.op === 'reopen' || o.op === 'crash') {
                memory.abortEpoch();
                if (o.op === 'reopen') await lmdb.close();
                else await crash(lmdb);
                lmdb = LmdbStateStore.open(options);
                expect(lmdb.lastCommittedEpoch()).toBe(memory.lastCommittedEpoch());
                expect(lmdb.undoableEpoch()).toBe(memory.undoableEpoch());
                expect(dump(lmdb)).toEqual(dump(memory));
                reopen();
              } else if ('ns' in o) {
                const ns = NS[o.ns] as string;
                if (o.op === 'get') expect(lmdb.get(ns, o.key)).toBe(memory.get(ns, o.key));
                else if (o.op === 'delete') both((s) => s.delete(ns, o.key));
                else if (o.op === 'scan') {
                  const opts: ScanOptions = {
                    reverse: o.reverse,
                    limit: o.limit,
                    ...(o.after === null ? {} : { after: o.after }),
                  };
                  expect(lmdb.scanPrefix(ns, o.prefix, opts)).toEqual(memory.scanPrefix(ns, o.prefix, opts));
                } else if (!('value' in o)) {
                  throw new Error(`unexpected ${o.op}`);
                } else if (o.op === 'insert' && memory.get(ns, o.key) === undefined) {
                  expect(lmdb.get(ns, o.key)).toBeUndefined();
                  both((s) => s.insert(ns, o.key, o.value));
                } else both((s) => s.put(ns, o.key, o.value));
              }
            }
            await lmdb.close();
          },
        ),
        { seed: 1313, numRuns: 150 },
      );
    },
  );
});

/** Epoch e puts `k<i>` = `<e>` for i in [e·step, e·step + width) and deletes `k<e·step − 1>`. */
function epochWrites(e: number): { puts: string[]; del: string } {
  const step = 20_000;
  const width = 60_000;
  return {
    puts: Array.from({ length: width }, (_, j) => `k${String(e * step + j).padStart(7, '0')}`),
    del: `k${String(e * step - 1).padStart(7, '0')}`,
  };
}

/** The state after epochs 1 … upTo of epochWrites, as a map. */
function expectedState(upTo: number | null): Map<string, string> {
  const m = new Map<string, string>();
  for (let e = 1; e <= (upTo ?? 0); e++) {
    const { puts, del } = epochWrites(e);
    for (const k of puts) m.set(k, String(e));
    m.delete(del);
  }
  return m;
}

/**
 * The store's promises resolve at once, so a test of many large epochs would hold the event loop
 * for tens of seconds (vitest's worker then misses its RPC deadline): let it run between epochs.
 */
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

async function writeEpoch(s: LmdbStateStore, e: number): Promise<void> {
  await breathe();
  s.beginEpoch(e);
  const { puts, del } = epochWrites(e);
  for (const k of puts) s.put('n1', k, String(e));
  s.delete('n1', del);
  await s.commitEpoch(e);
}

function expectState(s: LmdbStateStore, epoch: number | null): void {
  expect(s.lastCommittedEpoch()).toBe(epoch);
  const got = s.scanPrefix('n1', '');
  expect(got.length).toBe(expectedState(epoch).size);
  expect(new Map(got)).toEqual(expectedState(epoch));
}

interface Root {
  transactionSync: <T>(f: () => T) => T;
  close: () => Promise<void>;
}
const rootOf = (s: LmdbStateStore) => (s as unknown as { lmdb: { root: Root } }).lmdb.root;

/**
 * A crash: the LMDB environment is closed under the store, which neither aborts its open epoch
 * nor writes anything more. (A second open of a path still open in the process, without this,
 * can crash lmdb-js itself once both are closed.)
 */
async function crash(s: LmdbStateStore): Promise<void> {
  await rootOf(s).close();
}

/**
 * Makes the store "crash" right after its `n`-th LMDB write transaction committed: that one
 * throws, and every later one throws without writing (the process is gone; a merge failure the
 * store absorbs after a commit must not let it write on).
 */
class Crash extends Error {}
function crashAfterTransactions(s: LmdbStateStore, n: number): () => boolean {
  const root = rootOf(s);
  const original = root.transactionSync.bind(root);
  let count = 0;
  root.transactionSync = <T>(f: () => T): T => {
    if (count >= n) throw new Crash(`after transaction ${n}`);
    const r = original(f);
    if (++count === n) throw new Crash(`after transaction ${n}`);
    return r;
  };
  return () => count >= n;
}

describe('lmdb epoch log: layers, merges and crashes', () => {
  it('a reopened store replays unmerged epochs; the last one still rolls back, after a merge too', async () => {
    const path = tempDir();
    let s = LmdbStateStore.open({ path });
    for (let e = 1; e <= 3; e++) await writeEpoch(s, e);
    expect(s.merges).toBe(0);
    await s.close();
    s = LmdbStateStore.open({ path });
    expectState(s, 3);
    await s.rollbackLastEpoch();
    expectState(s, 2);
    await writeEpoch(s, 3);
    await s.close();
    // A budget of one byte: every commit merges the epochs before it.
    s = LmdbStateStore.open({ path, memtableBytes: 1 });
    await writeEpoch(s, 4);
    expect(s.merges).toBe(1);
    expectState(s, 4);
    await s.rollbackLastEpoch();
    expectState(s, 3);
    await s.close();
    s = LmdbStateStore.open({ path });
    expectState(s, 3);
    await s.close();
  });

  it('stores of formats 3 and 4 open and are marked 5 (older code then refuses them); an unknown format is refused', async () => {
    const path = tempDir();
    let s = LmdbStateStore.open({ path });
    for (let e = 1; e <= 2; e++) await writeEpoch(s, e);
    await s.close();
    const setFormat = async (value: string | null): Promise<string | undefined> => {
      const root = open<string, string>({ path, encoding: 'string', maxDbs: 8, remapChunks: false });
      const meta = root.openDB<string, string>({ name: 'meta', encoding: 'string' });
      const before = meta.get('format');
      if (value !== null) root.transactionSync(() => meta.putSync('format', value));
      await root.close();
      return before;
    };
    for (const older of ['3', '4']) {
      expect(await setFormat(older)).toBe('5');
      s = LmdbStateStore.open({ path });
      expectState(s, 2);
      await s.close();
    }
    expect(await setFormat('6')).toBe('5');
    expect(() => LmdbStateStore.open({ path })).toThrow(/DATAFLOW_STATE_CORRUPT.*unknown format 6/);
  });

  it('a merge that fails after its commit (a full disk) leaves that epoch committed; the next commit merges first', async () => {
    const path = tempDir();
    const s = LmdbStateStore.open({ path, memtableBytes: 1 });
    await writeEpoch(s, 1);
    // The transaction after epoch 2's commit (its merge) fails without writing anything.
    const root = rootOf(s);
    const original = root.transactionSync.bind(root);
    let count = 0;
    root.transactionSync = <T>(f: () => T): T => {
      if (++count === 2) throw new Error('MDB_MAP_FULL (injected)');
      return original(f);
    };
    await writeEpoch(s, 2);
    expect(s.merges).toBe(0);
    expectState(s, 2);
    root.transactionSync = original;
    await writeEpoch(s, 3);
    expect(s.merges).toBe(2);
    expectState(s, 3);
    await s.rollbackLastEpoch();
    expectState(s, 2);
    await s.close();
    const reopened = LmdbStateStore.open({ path });
    expectState(reopened, 2);
    await reopened.close();
  });

  it('an epoch that spills merges the layers first; its commit and rollback stay exact', async () => {
    const path = tempDir();
    let s = LmdbStateStore.open({ path, spillBytes: 2 ** 30 });
    for (let e = 1; e <= 2; e++) await writeEpoch(s, e);
    await s.close();
    s = LmdbStateStore.open({ path, spillBytes: 64 * 1024 });
    s.beginEpoch(3);
    s.put('n1', 'k0000000', 'early');
    for (const k of epochWrites(3).puts) s.put('n1', k, '3');
    s.delete('n1', epochWrites(3).del);
    // Spilled: epochs 1 and 2 merged, 2 with its undo log, so it can still be rolled back.
    expect(s.spills).toBeGreaterThan(0);
    expect(s.merges).toBe(1);
    s.abortEpoch();
    expectState(s, 2);
    expect(s.undoableEpoch()).toBe(2);
    await s.close();
    s = LmdbStateStore.open({ path, spillBytes: 64 * 1024 });
    await s.rollbackLastEpoch();
    expectState(s, 1);
    await writeEpoch(s, 2);
    await writeEpoch(s, 3);
    expect(s.spills).toBeGreaterThan(0);
    expect(s.get('n1', 'k0000000')).toBeUndefined();
    expectState(s, 3);
    await s.close();
    s = LmdbStateStore.open({ path });
    expectState(s, 3);
    await s.rollbackLastEpoch();
    expectState(s, 2);
    await s.close();
  });

  it(
    'a crash after any transaction of a merge over several leaves the last committed state',
    { timeout: 300_000 },
    async () => {
      // Epoch 2's commit: its log record (transaction 1), then epoch 1's 60k keys merged in two
      // transactions of 50k (2, 3). Epoch 3's: 4, then epoch 2's 60k keys in 5 and 6.
      for (let n = 1; n <= 6; n++) {
        const path = tempDir();
        const s = LmdbStateStore.open({ path, memtableBytes: 1 });
        await writeEpoch(s, 1);
        const crashed = crashAfterTransactions(s, n);
        try {
          await writeEpoch(s, 2);
          await writeEpoch(s, 3);
        } catch (err) {
          if (!(err instanceof Crash)) throw err;
        }
        // Thrown to the caller, or absorbed as a failed merge after its commit: reached either way.
        expect(crashed()).toBe(true);
        await crash(s);
        const again = LmdbStateStore.open({ path, memtableBytes: 1 });
        const epoch = again.lastCommittedEpoch() as number;
        expectState(again, epoch);
        await again.rollbackLastEpoch();
        expectState(again, epoch - 1);
        await writeEpoch(again, epoch);
        await writeEpoch(again, epoch + 1);
        expectState(again, epoch + 1);
        await again.close();
      }
    },
  );
});

describe('epoch log records', () => {
  // Any UTF-16 units, lone surrogates included (they become U+FFFD, as with Buffer.from).
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 80 }),
    fc.string({ maxLength: 300 }),
  );

  it('writeUtf8 writes the bytes Buffer.from writes', () => {
    fc.assert(
      fc.property(text, (s) => {
        const buf = Buffer.alloc(3 * s.length + 1);
        const end = writeUtf8(buf, 1, s);
        expect(buf.subarray(1, end)).toEqual(Buffer.from(s, 'utf8'));
      }),
      { seed: 5, numRuns: 3000 },
    );
  });

  it('records round-trip: lengths, then the strings concatenated; chunked past 4M characters', () => {
    const write = fc.tuple(text, text, fc.option(text, { nil: undefined }));
    fc.assert(
      fc.property(fc.array(write, { maxLength: 50 }), (writes) => {
        const records = encodeRecords((visit) => {
          for (const [ns, key, value] of writes) visit(ns, key, value);
        });
        expect(records).toHaveLength(1);
        const wellFormed = (s: string | undefined) => (s === undefined ? s : Buffer.from(s).toString());
        const read = [...decodeRecord(records[0]!.toString())];
        expect(read).toEqual(writes.map(([n, k, v]) => [wellFormed(n), wellFormed(k), wellFormed(v)]));
      }),
      { seed: 6, numRuns: 500 },
    );
    const big = 'x'.repeat(1024 * 1024);
    const records = encodeRecords((visit) => {
      for (let i = 0; i < 9; i++) visit('n1', `k${i}`, i === 4 ? undefined : big);
    });
    expect(records.length).toBeGreaterThan(1);
    const read = records.flatMap((r) => [...decodeRecord(r.toString())]);
    expect(read.map(([, k, v]) => [k, v?.length])).toEqual(
      Array.from({ length: 9 }, (_, i) => [`k${i}`, i === 4 ? undefined : big.length]),
    );
    expect(encodeRecords(() => {}).map((r) => r.toString())).toEqual(['[]\n']);
  });
});
