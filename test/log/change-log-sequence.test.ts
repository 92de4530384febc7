/**
 * The log's own sequence and what is built on it: finding a position (`seqAfter`), cleaning by
 * sequence number, `reset`, the latest table shapes, schema records, and positions that must grow.
 */
import { describe, expect, it, vi } from 'vitest';
import { readdirSync } from 'node:fs';
import { ChangeLogReader } from '../../src/log/change-log-reader.ts';
import { DATA_END, DATA_START } from '../../src/log/log-keys.ts';
import { segmentName } from '../../src/log/spill-segment.ts';
import type { SchemaChange } from '../../src/core/schema-change.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import {
  appendTxn,
  at,
  inserts,
  openLog,
  plain,
  table,
  take,
  tempLogDir,
  type Message,
} from './log-fixtures.ts';

const items = table('items', 1000);
const other = table('other', 1001);
const third = table('third', 1002);

const one = (pos: number, t = items) => inserts(1, () => `at ${pos}`, t);

describe('change log sequence', () => {
  it('seqAfter finds the first transaction after a position by binary search; positions before the coverage are null', () => {
    const log = openLog({ path: tempLogDir() });
    expect(log.seqAfter(at(5))).toBeNull(); // never started
    log.startAt(at(100));
    expect(log.seqAfter(at(99))).toBeNull();
    expect(log.seqAfter(at(100))).toBe(1n);
    expect(log.seqAfter(at(1_000_000))).toBe(1n); // none held yet: the next one
    // 300 transactions at seeded, uneven distances.
    const rnd = mulberry32(31);
    const positions: number[] = [];
    let p = 100;
    for (let i = 0; i < 300; i++) {
      p += 1 + Math.floor(rnd() * (i % 7 === 0 ? 500 : 5));
      positions.push(p);
      appendTxn(log, p, one(p));
    }
    const linear = (q: number): bigint | null => {
      if (q < 100) return null;
      const i = positions.findIndex((x) => x > q);
      return BigInt(i === -1 ? positions.length + 1 : i + 1);
    };
    const spy = vi.spyOn(log, 'positionOf');
    let most = 0;
    for (let q = 90; q <= p + 3; q++) {
      spy.mockClear();
      expect(log.seqAfter(at(q)), `after ${q}`).toBe(linear(q));
      most = Math.max(most, spy.mock.calls.length);
    }
    // ⌈log2 300⌉ = 9 probes at most, not one per transaction.
    expect(most).toBeLessThanOrEqual(9);
    spy.mockRestore();
    expect(log.positionOf(1n)).toEqual(at(positions[0]!));
    expect(log.positionOf(0n)).toEqual(at(100)); // the coverage start

    // Cleaned: what is before the new coverage is gone; the rest is found as before.
    log.clean(150n);
    const from = positions[149]!;
    expect(log.coveredFrom).toEqual({ seq: 150n, position: at(from) });
    expect(log.seqAfter(at(from - 1))).toBeNull();
    expect(log.seqAfter(at(from))).toBe(151n);
    for (let q = from; q <= p + 3; q += 7) expect(log.seqAfter(at(q)), `after ${q}`).toBe(linear(q));
    expect(() => log.positionOf(100n)).toThrow(/CHANGELOG_CORRUPT.*transaction 100 missing/);
  });

  it('a reader after a position ahead of the log skips the transactions committed at or before it', async () => {
    // A changefeed's snapshot position is ahead of the log while the hub still appends what
    // committed before it: those are in the snapshot already, and must not be read again.
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(0));
    appendTxn(log, 10, one(10));
    const reading = take(new ChangeLogReader(log).read(at(35)), 3 + 3);
    for (const pos of [20, 30, 35]) appendTxn(log, pos, one(pos));
    const after = [appendTxn(log, 40, one(40)), appendTxn(log, 50, one(50))].flat();
    expect((await reading).map(plain)).toEqual(after.map(plain));
    expect((await reading).filter((m) => m.tag === 'commit').map((m) => m.seq)).toEqual([5n, 6n]);
  });

  it('cleaning a transaction a reader has not finished ends that reader with CHANGELOG_BEHIND, never a gap', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(0));
    for (let p = 10; p <= 50; p += 10)
      appendTxn(
        log,
        p,
        inserts(200, (i) => `${p}/${i}`, items),
      );
    const reader = new ChangeLogReader(log, { memoryQuotaBytes: 1024 });
    const it = reader.read(at(0))[Symbol.asyncIterator]();
    const first = await it.next();
    expect((first.value as Message[])[0]).toEqual({ tag: 'begin', commitTimeMs: 10 });
    log.clean(3n);
    const seen: Message[] = [];
    const readOn = async () => {
      // Until the last transaction's commit: a reader that went on past the damage gets there.
      for (let n = await it.next(); !n.done; n = await it.next()) {
        seen.push(...n.value);
        if (seen.at(-1)?.tag === 'commit' && (seen.at(-1) as { seq: bigint }).seq === 5n) return;
      }
    };
    await expect(readOn()).rejects.toMatchObject({ code: 'CHANGELOG_BEHIND' });
    // Whatever it got before is whole transactions of 1 … 3 in order, then nothing.
    expect(seen.filter((m) => m.tag === 'commit').every((m) => m.seq <= 3n)).toBe(true);
  });

  it('reset drops every transaction and restarts the coverage; sequence numbers go on, table shapes stay', async () => {
    const path = tempLogDir();
    const log = openLog({ path, writeBatchBytes: 4096 });
    log.startAt(at(0));
    appendTxn(log, 10, one(10));
    appendTxn(
      log,
      20,
      inserts(2000, (i) => `spilled ${i}`, other),
    );
    appendTxn(log, 30, one(30));
    expect(readdirSync(log.spillDir)).toEqual([segmentName(2n)]);
    // A reader waiting at the end, and a transaction open.
    const waiting = take(new ChangeLogReader(log).read(at(30)), 1);
    log.begin(40);
    log.append(one(40)[0]!);
    log.reset(at(500));
    expect(log.inTransaction).toBe(false);
    expect(log.committed).toBeNull();
    expect(log.coveredFrom).toEqual({ seq: 3n, position: at(500) });
    expect(log.end).toEqual({ seq: 3n, position: at(500) });
    expect(log.readRange(DATA_START, false, DATA_END, 1e9)).toEqual([]);
    expect(readdirSync(log.spillDir)).toEqual([]);
    expect(log.latestTables()).toEqual([items, other]);
    // The waiting reader asked for everything after 0/1E: the log no longer has 0/1E … 0/1F4.
    const next = appendTxn(log, 600, one(600));
    expect(next.at(-1)).toMatchObject({ seq: 4n });
    await expect(waiting).rejects.toMatchObject({ code: 'CHANGELOG_BEHIND' });
    await expect(take(new ChangeLogReader(log).read(at(30)), 1)).rejects.toMatchObject({
      code: 'CHANGELOG_BEHIND',
    });
    expect(await take(new ChangeLogReader(log).read(at(500)), next.length)).toEqual(next);
    await log.close();
    const again = openLog({ path });
    expect(again.coveredFrom).toEqual({ seq: 3n, position: at(500) });
    expect(again.committed).toEqual({ seq: 4n, position: at(600) });
    expect(await take(new ChangeLogReader(again).read(at(500)), next.length)).toEqual(next);
  });

  it('keeps the latest shape of every table across a reopen: schema changes, drops, aborted transactions', async () => {
    const path = tempLogDir();
    const log = openLog({ path });
    log.startAt(at(0));
    appendTxn(log, 10, [...one(10, items), ...one(10, other)]);
    const wider: TableSchema = { ...items, columns: [...items.columns, { ...items.columns[1]!, name: 'w' }] };
    appendTxn(log, 20, [
      {
        tag: 'schema',
        change: {
          kind: 'table-altered',
          before: items,
          after: wider,
          columns: [{ op: 'added', column: 'w', fill: { kind: 'null' } }],
          recopy: null,
          ddl: 'ALTER TABLE items ADD COLUMN w text',
        },
      },
      { tag: 'insert', table: wider, row: ['5', 'v', 'w'] },
      {
        tag: 'schema',
        change: { kind: 'table-dropped', tableId: other.relationId, table: other, ddl: 'DROP TABLE other' },
      },
    ]);
    log.begin(30);
    log.append(one(30, third)[0]!);
    log.abort();
    const byId = (ts: TableSchema[]) => [...ts].sort((a, b) => a.relationId - b.relationId);
    expect(byId(log.latestTables())).toEqual([wider]);
    await log.close();
    const again = openLog({ path });
    expect(byId(again.latestTables())).toEqual([wider]);
    appendTxn(again, 30, one(30, third));
    expect(byId(again.latestTables())).toEqual([wider, third]);
    // A shape the reopened log interned again is the same schema id: no duplicate record.
    appendTxn(again, 40, [{ tag: 'insert', table: { ...wider }, row: ['6', null, null] }]);
    expect(byId(again.latestTables())).toEqual([wider, third]);
  });

  it('learns the shapes of tables captured before any change of theirs, never over a shape it knows', async () => {
    const path = tempLogDir();
    const log = openLog({ path });
    log.startAt(at(0));
    appendTxn(log, 10, one(10, items));
    const byId = (ts: TableSchema[]) => [...ts].sort((a, b) => a.relationId - b.relationId);
    const stale: TableSchema = { ...items, name: 'items as described later' };
    log.learnTables([stale, other]);
    expect(byId(log.latestTables())).toEqual([items, other]);
    // Learned inside an open transaction that then commits a change of the same table.
    log.begin(20);
    log.append(one(20, third)[0]!);
    log.learnTables([{ ...third, name: 'described' }]);
    log.commit(at(20), 20);
    expect(byId(log.latestTables())).toEqual([items, other, third]);
    await log.close();
    const again = openLog({ path });
    expect(byId(again.latestTables())).toEqual([items, other, third]);
    expect(await take(new ChangeLogReader(again).read(at(10)), 3)).toEqual([
      { tag: 'begin', commitTimeMs: 20 },
      one(20, third)[0],
      { tag: 'commit', position: at(20), commitTimeMs: 20, seq: 2n },
    ]);
  });

  it('round-trips every kind of schema record, in LMDB and spilled, before and after a reopen', async () => {
    const path = tempLogDir();
    const log = openLog({ path, writeBatchBytes: 4096 });
    log.startAt(at(0));
    const renamed: TableSchema = { ...items, schema: 'Ünïcødé', name: 'a.b "quoted"' };
    const changes: SchemaChange[] = [
      {
        kind: 'table-created',
        table: third,
        unreplicable: null,
        ddl: 'CREATE TABLE third (id int PRIMARY KEY, v text)',
      },
      { kind: 'table-created', table: other, unreplicable: 'no key and no full row image', ddl: null },
      {
        kind: 'table-altered',
        before: items,
        after: renamed,
        columns: [
          { op: 'added', column: 'a', fill: { kind: 'null' } },
          { op: 'added', column: 'b', fill: { kind: 'value', text: "it's 𝄞" } },
          { op: 'added', column: 'c', fill: { kind: 'per-row' } },
          { op: 'dropped', column: 'd' },
          { op: 'renamed', from: 'v', to: 'vé' },
          { op: 'retyped', column: 'id', fromType: 'integer', toType: 'bigint', reproducible: true },
        ],
        recopy: 'column c has a volatile default',
        ddl: 'ALTER TABLE items RENAME TO "a.b ""quoted"""',
      },
      { kind: 'table-dropped', tableId: third.relationId, table: third, ddl: null },
    ];
    const small = appendTxn(
      log,
      10,
      changes.map((change) => ({ tag: 'schema', change })),
    );
    const big = appendTxn(log, 20, [
      ...inserts(1000, (i) => `before ${i}`, items),
      ...changes.map((change) => ({ tag: 'schema' as const, change })),
      ...inserts(1000, (i) => `after ${i}`, renamed),
    ]);
    expect(log.transactionsSpilled).toBe(1);
    const all = [...small, ...big];
    expect(await take(new ChangeLogReader(log).read(at(0)), all.length)).toEqual(all);
    await log.close();
    const again = openLog({ path });
    expect(await take(new ChangeLogReader(again).read(at(0)), all.length)).toEqual(all);
    // Schema records are barriers: a reader of no table still gets them, in place.
    const none = await take(new ChangeLogReader(again, { includes: () => false }).read(at(0)), 2 * 6);
    expect(none.map((m) => m.tag)).toEqual([
      ...['begin', 'schema', 'schema', 'schema', 'schema', 'commit'],
      ...['begin', 'schema', 'schema', 'schema', 'schema', 'commit'],
    ]);
  });

  it('refuses commit positions that do not grow, and begin before the log was started', async () => {
    const path = tempLogDir();
    const log = openLog({ path });
    expect(() => log.begin(1)).toThrow(/INTERNAL.*before startAt/);
    log.startAt(at(100));
    log.begin(1);
    log.append(one(100)[0]!);
    expect(() => log.commit(at(100), 1)).toThrow(/INTERNAL.*commit at 0\/64 .*not after the log's end 0\/64/);
    expect(() => log.commit(at(50), 1)).toThrow(/INTERNAL/);
    // Still open: the caller aborts; nothing became visible, no sequence number was used.
    expect(log.inTransaction).toBe(true);
    log.abort();
    expect(log.committed).toBeNull();
    const t = appendTxn(log, 110, one(110));
    expect(t.at(-1)).toMatchObject({ seq: 1n });
    for (const p of [110, 105]) {
      log.begin(p);
      expect(() => log.commit(at(p), p)).toThrow(/INTERNAL.*not after the log's end 0\/6E/);
      log.abort();
    }
    expect(() => log.startAt(at(200))).toThrow(/INTERNAL.*holds transactions/);
    await log.close();
    const again = openLog({ path });
    again.begin(120);
    expect(() => again.commit(at(110), 120)).toThrow(/INTERNAL/);
    again.abort();
    expect(await take(new ChangeLogReader(again).read(at(100)), t.length)).toEqual(t);
  });
});
