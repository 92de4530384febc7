import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChangeLog } from '../../src/log/change-log.ts';
import { ChangeLogReader } from '../../src/log/change-log-reader.ts';
import { DATA_START, dataKey } from '../../src/log/log-keys.ts';
import { segmentName } from '../../src/log/spill-segment.ts';
import { UNCHANGED } from '../../src/core/row.ts';
import { Lsn, LSN_CODEC } from '../../src/source/postgres/lsn.ts';
import type { SchemaChange } from '../../src/core/schema-change.ts';
import {
  appendTxn,
  at,
  crashWriter,
  inserts,
  openLog,
  plain,
  table,
  take,
  tempLogDir,
  type Change,
  type Message,
} from './log-fixtures.ts';

const items = table('items', 1000);
const other = table('other', 1001);
/** Three transactions of two rows appended after the readers start: 4 messages each. */
const appendedLater = 3 * 4;

const rows = (n: number, pos: number, t = items) => inserts(n, (i) => `row ${pos}/${i}`, t);

describe('change log', () => {
  it('reads back every message kind in commit order, from any position', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(1));
    const t1 = appendTxn(log, 10, rows(2, 10));
    const widened: SchemaChange = {
      kind: 'table-altered',
      before: items,
      after: { ...items, columns: [...items.columns, { ...items.columns[1]!, name: 'w' }] },
      columns: [{ op: 'added', column: 'w', fill: { kind: 'value', text: 'dflt' } }],
      recopy: null,
      ddl: 'ALTER TABLE items ADD COLUMN w text DEFAULT $$dflt$$',
    };
    const kinds: Change[] = [
      { tag: 'update', table: items, row: ['1', UNCHANGED], old: ['0', null], oldIsFull: false },
      { tag: 'update', table: items, row: ['1', 'b'], old: null, oldIsFull: false },
      { tag: 'schema', change: widened },
      { tag: 'delete', table: widened.after, old: ['1', null, null] },
      { tag: 'truncate', tables: [widened.after, other] },
    ];
    const t2 = appendTxn(log, 20, kinds);
    const t3 = appendTxn(log, 30, rows(1, 30));
    const all = [...t1, ...t2, ...t3];
    const read = await take(new ChangeLogReader(log).read(at(1)), all.length);
    expect(read).toEqual(all);
    expect(read.filter((m) => m.tag === 'commit').map((m) => m.seq)).toEqual([1n, 2n, 3n]);
    const fromMid = [...t2, ...t3];
    expect(await take(new ChangeLogReader(log).read(at(10)), fromMid.length)).toEqual(fromMid);
    expect(log.committed).toEqual({ seq: 3n, position: at(30) });
  });

  it.each([
    ['in LMDB', Infinity],
    ['in its spill segment', 1024],
  ])(
    'shows a transaction only at its commit, though its rows are already on disk %s',
    async (_, spillBytes) => {
      const log = openLog({ path: tempLogDir(), writeBatchBytes: 1024, spillBytes });
      log.startAt(at(1));
      appendTxn(log, 10, rows(1, 10));
      const reader = new ChangeLogReader(log);
      const it = reader.read(at(10))[Symbol.asyncIterator]();
      const first = it.next();
      log.begin(20);
      for (let i = 0; i < 1000; i++)
        log.append({ tag: 'insert', table: items, row: [String(i), 'x'.repeat(40)] });
      const packs = log.readRange(dataKey(2n, 0), false, dataKey(3n, 0), 1e9).length;
      const segment = join(log.spillDir, segmentName(2n));
      if (spillBytes === Infinity) {
        expect(packs).toBeGreaterThan(10);
        expect(existsSync(segment)).toBe(false);
      } else {
        expect(packs).toBe(0);
        expect(statSync(segment).size).toBeGreaterThan(32 * 1024);
      }
      let seen = false;
      void first.then(() => (seen = true));
      await new Promise((r) => setImmediate(r));
      expect(seen).toBe(false);
      log.commit(at(20), 20);
      const batch = (await first).value as Message[];
      expect(batch[0]).toEqual({ tag: 'begin', commitTimeMs: 20 });
      await it.return?.(undefined);
    },
  );

  it('writes held commits together: readable once published, before an unheld commit, gone if never written', async () => {
    const path = tempLogDir();
    const log = openLog({ path });
    log.startAt(at(1));
    const held = (pos: number, t = items) => {
      log.begin(pos);
      for (const c of rows(1, pos, t)) log.append(c);
      log.commit(at(pos), pos, true);
      return rows(1, pos, t).map(plain);
    };
    const reader = new ChangeLogReader(log).read(at(1))[Symbol.asyncIterator]();
    const first = reader.next();
    let seen = false;
    void first.then(() => (seen = true));
    const t10 = held(10);
    const t20 = held(20, other);
    await new Promise((r) => setImmediate(r));
    expect(seen).toBe(false);
    expect(log.committed).toBeNull();
    expect(log.end).toEqual({ seq: 2n, position: at(20) });
    log.publish();
    expect(log.committed).toEqual({ seq: 2n, position: at(20) });
    expect(((await first).value as Message[]).map(plain)).toEqual([
      { tag: 'begin' },
      ...t10,
      { tag: 'commit', position: '0/A' },
      { tag: 'begin' },
      ...t20,
      { tag: 'commit', position: '0/14' },
    ]);
    await reader.return?.(undefined);
    expect(log.latestTables().map((t) => t.name)).toEqual(['items', 'other']);

    // An unheld commit writes the held ones first, in the same LMDB write.
    held(30);
    appendTxn(log, 40, rows(1, 40));
    expect(log.committed).toEqual({ seq: 4n, position: at(40) });
    const after20 = await take(new ChangeLogReader(log).read(at(20)), 2 * 3);
    expect(after20.filter((m) => m.tag === 'commit').map((m) => [m.seq, m.position.toString()])).toEqual([
      [3n, '0/1E'],
      [4n, '0/28'],
    ]);

    // Never published: not in the log after a reopen (the source delivers it again).
    held(50);
    await log.close();
    const reopened = openLog({ path });
    expect(reopened.committed).toEqual({ seq: 4n, position: at(40) });
    expect(reopened.end).toEqual({ seq: 4n, position: at(40) });
  });

  it('a held commit whose write fails keeps its new table shape pending: the resent transaction is readable after a reopen', async () => {
    const path = tempLogDir();
    const log = openLog({ path });
    log.startAt(at(1));
    appendTxn(log, 5, rows(1, 5));
    // A full disk at the batch's write (the limit below what the log uses already).
    const limits = log as unknown as { options: { maxDiskBytes?: number } };
    limits.options.maxDiskBytes = 1;
    log.begin(10);
    for (const c of rows(2, 10, other)) log.append(c);
    log.commit(at(10), 10, true);
    expect(() => log.publish()).toThrow(/CHANGELOG_DISK_FULL/);
    expect(log.end).toEqual({ seq: 1n, position: at(5) });
    // Space again; the source sends the transaction again.
    delete limits.options.maxDiskBytes;
    log.begin(10);
    for (const c of rows(2, 10, other)) log.append(c);
    log.commit(at(10), 10, true);
    log.publish();
    await log.close();
    const reopened = openLog({ path });
    expect(reopened.latestTables().map((t) => t.name)).toEqual(['items', 'other']);
    const read = await take(new ChangeLogReader(reopened).read(at(5)), 4);
    expect(read.map(plain)).toEqual([
      { tag: 'begin' },
      ...rows(2, 10, other).map(plain),
      { tag: 'commit', position: '0/A' },
    ]);
  });

  it('recovers after a SIGKILL mid-transaction: the last complete transaction stays, the tail goes', async () => {
    const path = tempLogDir();
    expect(crashWriter(path, 'lmdb')).toContain('spilled 0');
    const log = openLog({ path });
    expect(log.committed).toEqual({ seq: 1n, position: Lsn.parse('0/100') });
    expect(log.readRange(dataKey(2n, 0), false, dataKey(3n, 0), 1e9)).toEqual([]);
    const msgs = await take(new ChangeLogReader(log).read(Lsn.parse('0/10')), 5);
    expect(msgs.map(plain)).toEqual([
      { tag: 'begin' },
      ...[0, 1, 2].map((i) => ({ tag: 'insert', table: 'items', row: [String(i), 'committed'] })),
      { tag: 'commit', position: '0/100' },
    ]);
    // The writer goes on where the log ends, with the interrupted transaction again, under the
    // sequence number the lost tail had.
    expect(log.end?.position.toString()).toBe('0/100');
    appendTxn(log, 0x200, rows(2, 0x200));
    expect(log.committed).toEqual({ seq: 2n, position: Lsn.parse('0/200') });
  });

  it.each([
    ['clean', { seq: 2n, position: Lsn.parse('0/180') }, { seq: 3n, position: Lsn.parse('0/200') }],
    ['reset', { seq: 3n, position: Lsn.parse('0/500') }, null],
  ] as const)(
    'recovers after a SIGKILL inside %s: every transaction it claims reads whole, nothing before its coverage stays',
    async (mode, coveredFrom, committed) => {
      const path = tempLogDir();
      expect(crashWriter(path, mode)).not.toContain('not killed');
      const log = openLog({ path });
      // The kill came after the first deletions: the log must already say what they mean.
      expect(log.coveredFrom).toEqual(coveredFrom);
      expect(log.committed).toEqual(committed);
      const held = Number((log.committed?.seq ?? coveredFrom.seq) - coveredFrom.seq);
      const msgs =
        held === 0 ? [] : await take(new ChangeLogReader(log).read(coveredFrom.position), held * 5);
      expect(msgs.map(plain)).toEqual(
        held === 0
          ? []
          : [
              { tag: 'begin' },
              ...[0, 1, 2].map((i) => ({ tag: 'insert', table: 'items', row: [String(i), 'last'] })),
              { tag: 'commit', position: '0/200' },
            ],
      );
      await expect(take(new ChangeLogReader(log).read(Lsn.parse('0/100')), 1)).rejects.toMatchObject({
        code: 'CHANGELOG_BEHIND',
      });
      // What the interrupted deletion left is gone at open.
      expect(log.readRange(DATA_START, false, dataKey(coveredFrom.seq + 1n, 0), 1e9)).toEqual([]);
      expect(readdirSync(log.spillDir)).toEqual([]);
      const next = appendTxn(log, 0x600, rows(1, 0x600));
      expect(next.at(-1)).toMatchObject({ seq: (committed?.seq ?? coveredFrom.seq) + 1n });
    },
  );

  it('serves many readers at different positions while the writer appends', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(0));
    const expected: Message[][] = [];
    for (let p = 1; p <= 10; p++) expected.push(appendTxn(log, p * 10, rows(p, p * 10)));
    const starts = [0, 10, 30, 50, 90, 100];
    const reads = starts.map((s) => {
      const want = expected.slice(s / 10).flat().length + appendedLater;
      return take(new ChangeLogReader(log, { memoryQuotaBytes: 64 }).read(at(s)), want);
    });
    for (let p = 11; p <= 13; p++) expected.push(appendTxn(log, p * 10, rows(2, p * 10)));
    const results = await Promise.all(reads);
    starts.forEach((s, i) => expect(results[i]).toEqual(expected.slice(s / 10).flat()));
  });

  it('holds at most memoryQuotaBytes of records per reader', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(0));
    const n = 20_000;
    appendTxn(log, 10, rows(n, 10));
    const quota = 64 * 1024;
    const reader = new ChangeLogReader(log, { memoryQuotaBytes: quota });
    const msgs = await take(reader.read(at(0)), n + 2);
    expect(msgs.length).toBe(n + 2);
    const { maxBufferedBytes, records } = reader.stats();
    expect(records).toBe(n + 2);
    expect(maxBufferedBytes).toBeGreaterThan(quota / 2);
    expect(maxBufferedBytes).toBeLessThan(quota + 200); // one record may straddle the quota
  });

  it('filters by table; transactions without changes for the reader still advance it', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(0));
    appendTxn(log, 10, rows(2, 10, items));
    appendTxn(log, 20, rows(2, 20, other));
    appendTxn(log, 30, [{ tag: 'truncate', tables: [items, other] }]);
    const reader = new ChangeLogReader(log, { includes: (t) => t.name === 'other' });
    const msgs = await take(reader.read(at(0)), 2 + 4 + 3);
    expect(msgs.map(plain)).toEqual([
      { tag: 'begin' },
      { tag: 'commit', position: at(10).toString() },
      { tag: 'begin' },
      { tag: 'insert', table: 'other', row: ['0', 'row 20/0'] },
      { tag: 'insert', table: 'other', row: ['1', 'row 20/1'] },
      { tag: 'commit', position: at(20).toString() },
      { tag: 'begin' },
      { tag: 'truncate', tables: ['other'] },
      { tag: 'commit', position: at(30).toString() },
    ]);
  });

  it('cleans up to a sequence number, keeps it across a reopen, and refuses readers behind the log', async () => {
    const path = tempLogDir();
    const log = openLog({ path });
    log.startAt(at(0));
    for (let p = 1; p <= 5; p++) appendTxn(log, p * 10, rows(3, p * 10));
    log.clean(2n);
    expect(log.coveredFrom).toEqual({ seq: 2n, position: at(20) });
    expect(log.readRange(dataKey(0n, 0), false, dataKey(3n, 0), 1e9)).toEqual([]);
    await expect(take(new ChangeLogReader(log).read(at(10)), 1)).rejects.toMatchObject({
      code: 'CHANGELOG_BEHIND',
    });
    const rest = await take(new ChangeLogReader(log).read(at(20)), 15);
    expect(rest.at(-1)).toMatchObject({ tag: 'commit', position: at(50), seq: 5n });
    // Nothing that old, or past the end: a no-op, and at most everything.
    log.clean(1n);
    expect(log.coveredFrom?.seq).toBe(2n);
    log.clean(99n);
    expect(log.coveredFrom).toEqual({ seq: 5n, position: at(50) });
    expect(log.committed).toEqual({ seq: 5n, position: at(50) });
    await log.close();
    const again = openLog({ path });
    expect(again.coveredFrom).toEqual({ seq: 5n, position: at(50) });
    expect(again.end).toEqual({ seq: 5n, position: at(50) });
    expect(again.readRange(dataKey(0n, 0), false, dataKey(99n, 0), 1e9)).toEqual([]);
    const next = appendTxn(again, 60, rows(1, 60));
    expect(next.at(-1)).toMatchObject({ seq: 6n });
    expect(await take(new ChangeLogReader(again).read(at(50)), next.length)).toEqual(next);
  });

  it('answers a corrupt or missing log with a clear error', () => {
    const dir = tempLogDir();
    expect(() => ChangeLog.open({ path: dir, codec: LSN_CODEC, ifMissing: 'error' })).toThrow(
      /CHANGELOG_MISSING/,
    );
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'data.mdb'), Buffer.alloc(64 * 1024, 0x5a));
    let err: unknown;
    try {
      ChangeLog.open({ path: dir, codec: LSN_CODEC });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'CHANGELOG_CORRUPT' });
    expect((err as Error).message).toContain(dir);
  });

  it.each([
    ['in LMDB', Infinity],
    ['in a spill segment', undefined],
  ])(
    'stops appending with CHANGELOG_DISK_FULL at its size limit %s, keeping what was committed',
    async (_, spillBytes) => {
      const path = tempLogDir();
      const maxDiskBytes = 2 * 1024 * 1024;
      const log = openLog({
        path,
        maxDiskBytes,
        writeBatchBytes: 64 * 1024,
        ...(spillBytes ? { spillBytes } : {}),
      });
      log.startAt(at(0));
      appendTxn(log, 10, rows(10, 10));
      log.begin(20);
      expect(() => {
        for (let i = 0; i < 100_000; i++)
          log.append({ tag: 'insert', table: items, row: [String(i), 'y'.repeat(100)] });
      }).toThrow(/CHANGELOG_DISK_FULL/);
      // The segment is counted with LMDB: it stopped within one write of the limit.
      if (spillBytes === undefined)
        expect(statSync(join(log.spillDir, segmentName(2n))).size).toBeLessThan(maxDiskBytes);
      log.abort();
      expect(readdirSync(log.spillDir, { withFileTypes: true }).length).toBe(0);
      expect(log.committed).toEqual({ seq: 1n, position: at(10) });
      expect((await take(new ChangeLogReader(log).read(at(0)), 12)).at(-1)).toMatchObject({ tag: 'commit' });
    },
  );
});
