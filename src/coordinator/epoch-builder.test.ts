import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EpochBuilder } from './epoch-builder.ts';
import { UNCHANGED, type Cell, type Row } from '../core/row.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { Epoch, TableChanges } from '../core/epoch.ts';
import { Lsn } from '../source/postgres/lsn.ts';
import { packCells, PackedDelete, PackedInsert, PackedUpdate } from '../core/packed-cells.ts';

const col = (name: string, isKey: boolean) => ({
  name,
  typeOid: 25,
  typeMod: -1,
  typeName: 'text',
  isKey,
  nullable: !isKey,
});
const keyed: TableSchema = {
  schema: 'public',
  name: 't',
  relationId: 1,
  keyless: false,
  enums: [],
  columns: [col('id', true), col('a', false), col('big', false)],
  keyColumns: [0],
};
const keyless: TableSchema = {
  schema: 'public',
  name: 'k',
  relationId: 2,
  keyless: true,
  enums: [],
  columns: [col('x', false), col('y', false)],
  keyColumns: [],
};

/** How often each interesting path was exercised: a property that never reaches a path proves nothing. */
interface Seen {
  partial: number;
  fromKey: number;
  truncate: number;
  deltaDelete: number;
}
const seen: Seen = { partial: 0, fromKey: 0, truncate: 0, deltaDelete: 0 };
/** The same, for changes that went downstream as chunks (takeChunk) rather than cut epochs. */
const seenChunks: Seen & { chunks: number; outsideTxn: number } = {
  partial: 0,
  fromKey: 0,
  truncate: 0,
  deltaDelete: 0,
  chunks: 0,
  outsideTxn: 0,
};

/** Applies an epoch to an in-memory "downstream" exactly as the sink contract orders it. */
function applyEpoch(down: Map<string, Row>, bag: Row[], e: Epoch): Row[] {
  return applyTables(down, bag, e.tables, seen);
}

/** Applies TableChanges (an epoch's or one chunk's) to the in-memory downstream, in contract order. */
function applyTables(
  down: Map<string, Row>,
  bag: Row[],
  tables: readonly TableChanges[],
  count: Seen,
): Row[] {
  for (const tc of tables) {
    if (tc.table.keyless) {
      if (tc.truncate) bag = [];
      for (const d of tc.rowDeltas) {
        if (d.count > 0) for (let i = 0; i < d.count; i++) bag.push(d.row);
        else
          for (let i = 0, _ = count.deltaDelete++; i < -d.count; i++, void _) {
            const at = bag.findIndex((r) => JSON.stringify(r) === JSON.stringify(d.row));
            expect(at, 'delete of a row that is not there').toBeGreaterThanOrEqual(0);
            bag.splice(at, 1);
          }
      }
      continue;
    }
    if (tc.truncate) down.clear();
    if (tc.truncate) count.truncate++;
    count.partial += tc.partialUpdates.length;
    count.fromKey += tc.partialUpdates.filter((p) => p.fromKey).length;
    const before = new Map(down);
    for (const p of tc.partialUpdates.filter((p) => p.fromKey)) {
      const src = before.get(p.fromKey![0]!);
      expect(src, 'fromKey row exists downstream').toBeDefined();
      down.set(p.row[0] as string, p.row.map((c, i) => (c === UNCHANGED ? src![i]! : c)) as Row);
    }
    for (const d of tc.deletes) down.delete(d[0]!);
    for (const u of tc.upserts) down.set(u[0]!, u);
    for (const p of tc.partialUpdates.filter((p) => !p.fromKey)) {
      const cur = down.get(p.row[0] as string);
      expect(cur, 'partial update of an existing row').toBeDefined();
      down.set(p.row[0] as string, p.row.map((c, i) => (c === UNCHANGED ? cur![i]! : c)) as Row);
    }
  }
  return bag;
}

type Op =
  | { t: 'ins'; id: number; a: number }
  | { t: 'upd'; id: number; a: number; toast: boolean }
  | { t: 'mov'; id: number; to: number; toast: boolean }
  | { t: 'del'; id: number }
  | { t: 'trunc' }
  | { t: 'kins'; x: number }
  | { t: 'kdel'; x: number }
  | { t: 'kupd'; x: number; y: number }
  | { t: 'commit'; cut: boolean; chunkAfter: boolean }
  | { t: 'chunk' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('ins' as const), id: fc.nat(6), a: fc.nat(50) }), weight: 5 },
  {
    arbitrary: fc.record({
      t: fc.constant('upd' as const),
      id: fc.nat(6),
      a: fc.nat(50),
      toast: fc.boolean(),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      t: fc.constant('mov' as const),
      id: fc.nat(6),
      to: fc.nat(6),
      toast: fc.boolean(),
    }),
    weight: 5,
  },
  { arbitrary: fc.record({ t: fc.constant('del' as const), id: fc.nat(6) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('kins' as const), x: fc.nat(3) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('kdel' as const), x: fc.nat(3) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('kupd' as const), x: fc.nat(3), y: fc.nat(3) }), weight: 3 },
  { arbitrary: fc.constant({ t: 'trunc' as const }), weight: 1 },
  {
    arbitrary: fc.record({ t: fc.constant('commit' as const), cut: fc.boolean(), chunkAfter: fc.boolean() }),
    weight: 3,
  },
  { arbitrary: fc.constant({ t: 'chunk' as const }), weight: 2 },
);

describe('EpochBuilder', () => {
  it('collapsed epochs, and the same epochs taken in chunks, applied in order equal applying every change (random sequences)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 150 }), (ops) => {
        const truth = new Map<string, Row>();
        let truthBag: Row[] = [];
        // `b` is cut into whole epochs; `c` gets the same changes, packed as the change log's
        // reader gives them (core/packed-cells.ts), and also gives chunks (takeChunk) at random
        // points, inside and between transactions.
        const down = new Map<string, Row>();
        let bag: Row[] = [];
        const downC = new Map<string, Row>();
        let bagC: Row[] = [];
        const b = new EpochBuilder();
        const c = new EpochBuilder();
        const each = (fn: (x: EpochBuilder) => void) => {
          fn(b);
          fn(c);
        };
        const insert = (t: TableSchema, row: Row) => {
          b.insert(t, row);
          c.add(new PackedInsert(t, packCells(row)));
        };
        const update = (t: TableSchema, row: Cell[], old: Row | null, full: boolean) => {
          b.update(t, row, old, full);
          c.add(new PackedUpdate(t, packCells(row), old && packCells(old), full));
        };
        const del = (t: TableSchema, old: Row) => {
          b.delete(t, old);
          c.add(new PackedDelete(t, packCells(old)));
        };
        const expectTruth = (d: Map<string, Row>, k: Row[]) => {
          expect(new Map([...d].sort())).toEqual(new Map([...truth].sort()));
          expect([...k].map((r) => r.join()).sort()).toEqual([...truthBag].map((r) => r.join()).sort());
        };
        const chunk = () => {
          const committed = c.hasCommitted;
          const oldest = c.oldestCommitMs;
          if (!c.isInTransaction) seenChunks.outsideTxn++;
          seenChunks.chunks++;
          bagC = applyTables(downC, bagC, c.takeChunk(), seenChunks);
          expect([c.changes, c.bytes]).toEqual([0, 0]);
          expect([c.hasCommitted, c.oldestCommitMs]).toEqual([committed, oldest]);
          // A chunk holds every change so far, even of the open transaction.
          expectTruth(downC, bagC);
        };
        let lsn = 1n;
        let epoch = 0;
        let big = 0;
        each((x) => x.beginTransaction());
        for (const op of [...ops, { t: 'commit', cut: true, chunkAfter: false } as Op]) {
          const id = 'id' in op ? String(op.id) : '';
          switch (op.t) {
            case 'ins':
              if (truth.has(id)) break;
              truth.set(id, [id, String(op.a), `big${big++}`]);
              insert(keyed, truth.get(id)!);
              break;
            case 'upd': {
              const cur = truth.get(id);
              if (!cur) break;
              const next: Row = [id, String(op.a), op.toast ? cur[2]! : `big${big++}`];
              truth.set(id, next);
              update(keyed, op.toast ? [id, next[1]!, UNCHANGED] : next, null, false);
              break;
            }
            case 'mov': {
              const cur = truth.get(id);
              const to = String(op.to);
              if (!cur || truth.has(to)) break;
              const next: Row = [to, cur[1]!, op.toast ? cur[2]! : `big${big++}`];
              truth.delete(id);
              truth.set(to, next);
              const cells: Cell[] = op.toast ? [to, next[1]!, UNCHANGED] : next;
              update(keyed, cells, [id, null, null], false);
              break;
            }
            case 'del':
              if (!truth.has(id)) break;
              truth.delete(id);
              del(keyed, [id, null, null]);
              break;
            case 'trunc':
              truth.clear();
              truthBag = [];
              each((x) => x.truncate([keyed, keyless]));
              break;
            case 'kins':
              truthBag.push([String(op.x), 'v']);
              insert(keyless, [String(op.x), 'v']);
              break;
            case 'kdel': {
              const at = truthBag.findIndex((r) => r[0] === String(op.x));
              if (at < 0) break;
              del(keyless, truthBag[at]!);
              truthBag.splice(at, 1);
              break;
            }
            case 'kupd': {
              const at = truthBag.findIndex((r) => r[0] === String(op.x));
              if (at < 0) break;
              const old = truthBag[at]!;
              truthBag[at] = [String(op.y), 'w'];
              update(keyless, truthBag[at]!, old, true);
              break;
            }
            case 'chunk':
              chunk();
              break;
            case 'commit': {
              const at = Lsn.fromBigInt(lsn++);
              const ms = Number(lsn);
              each((x) => x.commitTransaction(at, ms));
              if (op.cut) {
                const e = b.cut(++epoch);
                const ec = c.cut(epoch);
                if (e) bag = applyEpoch(down, bag, e);
                if (ec) bagC = applyTables(downC, bagC, ec.tables, seenChunks);
                expect(ec && { ...ec, tables: [] }).toEqual(e && { ...e, tables: [] });
                expectTruth(down, bag);
                expectTruth(downC, bagC);
              }
              if (op.chunkAfter) chunk();
              each((x) => x.beginTransaction());
              break;
            }
          }
        }
      }),
      { seed: 20261121, numRuns: 2000 },
    );
    expect(seen.partial).toBeGreaterThan(50);
    expect(seen.fromKey).toBeGreaterThan(20);
    expect(seen.truncate).toBeGreaterThan(20);
    expect(seen.deltaDelete).toBeGreaterThan(20);
    // Chunks must reach the same paths: partial updates and key moves read from what earlier
    // chunks wrote, truncates and keyless deletes mid-epoch, chunks between transactions.
    expect(seenChunks.chunks).toBeGreaterThan(1000);
    expect(seenChunks.partial).toBeGreaterThan(50);
    expect(seenChunks.fromKey).toBeGreaterThan(20);
    expect(seenChunks.truncate).toBeGreaterThan(20);
    expect(seenChunks.deltaDelete).toBeGreaterThan(20);
    expect(seenChunks.outsideTxn).toBeGreaterThan(50);
  });

  it('keeps what names the epoch across chunks: checkpoint, commit time, every change counted', () => {
    const b = new EpochBuilder();
    b.beginTransaction();
    b.insert(keyed, ['1', 'a', 'x']);
    b.commitTransaction(Lsn.parse('0/10'), 5);
    b.beginTransaction();
    b.update(keyed, ['1', 'b', UNCHANGED], null, false);
    b.update(keyed, ['2', 'c', UNCHANGED], ['1', null, null], false);
    const first = b.takeChunk();
    expect(first[0]!.upserts).toEqual([['2', 'c', 'x']]);
    expect(first[0]!.deletes).toEqual([['1', null, null]]);
    expect(b.takeChunk()).toEqual([]);
    b.update(keyed, ['3', 'd', UNCHANGED], ['2', null, null], false);
    b.commitTransaction(Lsn.parse('0/20'), 9);
    expect(b.oldestCommitMs).toBe(5);
    const e = b.cut(4)!;
    expect(e).toMatchObject({
      checkpoint: { position: '0/20', epoch: 4 },
      commitTimeMs: 9,
      sourceChanges: 4,
    });
    // The move after the chunk reads row 2 as the first chunk wrote it downstream.
    expect(e.tables[0]!.partialUpdates).toEqual([{ row: ['3', 'd', UNCHANGED], fromKey: ['2', null, null] }]);
    expect(b.hasCommitted).toBe(false);
  });

  it('refuses to cut inside a transaction and returns null when nothing committed', () => {
    const b = new EpochBuilder();
    expect(b.cut(1)).toBeNull();
    b.beginTransaction();
    b.insert(keyed, ['1', 'a', 'b']);
    expect(() => b.cut(1)).toThrow(/inside a transaction/);
  });

  it('collapses 1000 updates of one key into one upsert', () => {
    const b = new EpochBuilder();
    b.beginTransaction();
    for (let i = 0; i < 1000; i++) b.update(keyed, ['1', String(i), 'x'], null, false);
    b.commitTransaction(Lsn.parse('0/10'), 0);
    const e = b.cut(7)!;
    expect(e.sourceChanges).toBe(1000);
    expect(e.checkpoint).toEqual({ position: '0/10', epoch: 7 });
    expect(e.tables[0]!.upserts).toEqual([['1', '999', 'x']]);
  });
});
