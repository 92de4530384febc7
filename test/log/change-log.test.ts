import { describe, expect, it, onTestFinished } from 'vitest';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChangeLog, type ChangeLogOptions } from '../../src/log/change-log.ts';
import { ChangeLogReader } from '../../src/log/change-log-reader.ts';
import { dataKey } from '../../src/log/log-keys.ts';
import { segmentName } from '../../src/log/spill-segment.ts';
import { UNCHANGED } from '../../src/core/row.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import type { ChangeMessage } from '../../src/core/change.ts';
import { crashWriter, plain, table, take, tempLogDir } from './log-fixtures.ts';

const items = table('items', 1000);
const other = table('other', 1001);
/** Three transactions of two rows appended after the readers start: 4 messages each. */
const appendedLater = 3 * 4;
const at = (n: number) => Lsn.fromBigInt(BigInt(n));

function openLog(options: Partial<ChangeLogOptions> & { path: string }): ChangeLog {
  const log = ChangeLog.open(options);
  onTestFinished(() => log.close());
  return log;
}

/** Appends transaction `pos` with `rows` inserts into `t`; returns the messages a reader should see. */
function appendTxn(log: ChangeLog, pos: number, rows: number, t = items): ChangeMessage[] {
  const msgs: ChangeMessage[] = [{ tag: 'begin', commitTimeMs: pos }];
  log.begin(at(pos), pos);
  for (let i = 0; i < rows; i++) {
    const m = { tag: 'insert' as const, table: t, row: [String(i), `row ${pos}/${i}`] };
    log.append(m);
    msgs.push(m);
  }
  log.commit(pos);
  msgs.push({ tag: 'commit', position: at(pos), commitTimeMs: pos });
  return msgs;
}

describe('change log', () => {
  it('reads back every message kind in commit order, from any position', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(1));
    const t1 = appendTxn(log, 10, 2);
    log.begin(at(20), 20);
    const kinds: ChangeMessage[] = [
      { tag: 'relation', table: items },
      { tag: 'update', table: items, row: ['1', UNCHANGED], old: ['0', null], oldIsFull: false },
      { tag: 'update', table: items, row: ['1', 'b'], old: null, oldIsFull: false },
      { tag: 'delete', table: items, old: ['1', null] },
      { tag: 'truncate', tables: [items, other] },
    ];
    for (const k of kinds) log.append(k as Exclude<ChangeMessage, { tag: 'begin' | 'commit' }>);
    log.commit(20);
    const t2 = [
      { tag: 'begin', commitTimeMs: 20 },
      ...kinds,
      { tag: 'commit', position: at(20), commitTimeMs: 20 },
    ];
    const t3 = appendTxn(log, 30, 1);
    const all = [...t1, ...t2, ...t3] as ChangeMessage[];
    expect((await take(new ChangeLogReader(log).read(at(1)), all.length)).map(plain)).toEqual(all.map(plain));
    const fromMid = [...t2, ...t3] as ChangeMessage[];
    expect((await take(new ChangeLogReader(log).read(at(10)), fromMid.length)).map(plain)).toEqual(
      fromMid.map(plain),
    );
    expect(log.committed?.toString()).toBe(at(30).toString());
  });

  it.each([
    ['in LMDB', Infinity],
    ['in its spill segment', 1024],
  ])(
    'shows a transaction only at its commit, though its rows are already on disk %s',
    async (_, spillBytes) => {
      const log = openLog({ path: tempLogDir(), writeBatchBytes: 1024, spillBytes });
      appendTxn(log, 10, 1);
      const reader = new ChangeLogReader(log);
      const it = reader.read(at(10))[Symbol.asyncIterator]();
      const first = it.next();
      log.begin(at(20), 20);
      for (let i = 0; i < 1000; i++)
        log.append({ tag: 'insert', table: items, row: [String(i), 'x'.repeat(40)] });
      const packs = log.readRange(dataKey(20n, 0), false, dataKey(21n, 0), 1e9).length;
      const segment = join(log.spillDir, segmentName(20n));
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
      log.commit(20);
      const batch = (await first).value as ChangeMessage[];
      expect(batch[0]).toEqual({ tag: 'begin', commitTimeMs: 20 });
      await it.return?.(undefined);
    },
  );

  it('recovers after a SIGKILL mid-transaction: the last complete transaction stays, the tail goes', async () => {
    const path = tempLogDir();
    expect(crashWriter(path, 'lmdb')).toContain('spilled 0');
    const log = openLog({ path });
    expect(log.committed?.toString()).toBe('0/100');
    expect(log.readRange(dataKey(0x200n, 0), false, dataKey(0x201n, 0), 1e9)).toEqual([]);
    const msgs = await take(new ChangeLogReader(log).read(Lsn.parse('0/10')), 5);
    expect(msgs.map(plain)).toEqual([
      { tag: 'begin' },
      ...[0, 1, 2].map((i) => ({ tag: 'insert', table: 'items', row: [String(i), 'committed'] })),
      { tag: 'commit', position: '0/100' },
    ]);
    // The writer goes on where the log ends, with the interrupted transaction again.
    expect(log.resumePosition()?.toString()).toBe('0/100');
    appendTxn(log, 0x200, 2);
    expect(log.committed?.toString()).toBe('0/200');
  });

  it('serves many readers at different positions while the writer appends', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(0));
    const expected: ChangeMessage[][] = [];
    for (let p = 1; p <= 10; p++) expected.push(appendTxn(log, p * 10, p));
    const starts = [0, 10, 30, 50, 90, 100];
    const reads = starts.map((s) => {
      const want = expected.slice(s / 10).flat().length + appendedLater;
      return take(new ChangeLogReader(log, { memoryQuotaBytes: 64 }).read(at(s)), want);
    });
    for (let p = 11; p <= 13; p++) expected.push(appendTxn(log, p * 10, 2));
    const results = await Promise.all(reads);
    starts.forEach((s, i) =>
      expect(results[i]!.map(plain)).toEqual(
        expected
          .slice(s / 10)
          .flat()
          .map(plain),
      ),
    );
  });

  it('holds at most memoryQuotaBytes of records per reader', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(0));
    const rows = 20_000;
    appendTxn(log, 10, rows);
    const quota = 64 * 1024;
    const reader = new ChangeLogReader(log, { memoryQuotaBytes: quota });
    const msgs = await take(reader.read(at(0)), rows + 2);
    expect(msgs.length).toBe(rows + 2);
    const { maxBufferedBytes, records } = reader.stats();
    expect(records).toBe(rows + 2);
    expect(maxBufferedBytes).toBeGreaterThan(quota / 2);
    expect(maxBufferedBytes).toBeLessThan(quota + 200); // one record may straddle the quota
  });

  it('filters by table; transactions without changes for the reader still advance it', async () => {
    const log = openLog({ path: tempLogDir() });
    log.startAt(at(0));
    appendTxn(log, 10, 2, items);
    appendTxn(log, 20, 2, other);
    log.begin(at(30), 30);
    log.append({ tag: 'truncate', tables: [items, other] });
    log.commit(30);
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

  it('cleans only what every reader acknowledged, and refuses readers behind the log', async () => {
    const path = tempLogDir();
    const log = openLog({ path });
    log.startAt(at(0));
    for (let p = 1; p <= 5; p++) appendTxn(log, p * 10, 3);
    log.registerReader('a', at(20));
    log.registerReader('b', at(40));
    expect(log.clean(at(50))?.toString()).toBe(at(20).toString());
    expect(log.coveredFrom?.toString()).toBe(at(20).toString());
    expect(log.readRange(dataKey(0n, 0), false, dataKey(21n, 0), 1e9)).toEqual([]);
    await expect(take(new ChangeLogReader(log).read(at(10)), 1)).rejects.toMatchObject({
      code: 'CHANGELOG_BEHIND',
    });
    const rest = await take(new ChangeLogReader(log).read(at(20)), 15);
    expect(rest.at(-1)).toMatchObject({ tag: 'commit', position: at(50) });
    log.acknowledge('a', at(50));
    log.removeReader('b');
    expect(log.clean(at(50))?.toString()).toBe(at(50).toString());
    await log.close();
    const again = openLog({ path });
    expect(again.coveredFrom?.toString()).toBe(at(50).toString());
    expect([...again.readers().keys()]).toEqual(['a']);
  });

  it('answers a corrupt or missing log with a clear error', () => {
    const dir = tempLogDir();
    expect(() => ChangeLog.open({ path: dir, ifMissing: 'error' })).toThrow(/CHANGELOG_MISSING/);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'data.mdb'), Buffer.alloc(64 * 1024, 0x5a));
    let err: unknown;
    try {
      ChangeLog.open({ path: dir });
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
      appendTxn(log, 10, 10);
      log.begin(at(20), 20);
      expect(() => {
        for (let i = 0; i < 100_000; i++)
          log.append({ tag: 'insert', table: items, row: [String(i), 'y'.repeat(100)] });
      }).toThrow(/CHANGELOG_DISK_FULL/);
      // The segment is counted with LMDB: it stopped within one write of the limit.
      if (spillBytes === undefined)
        expect(statSync(join(log.spillDir, segmentName(20n))).size).toBeLessThan(maxDiskBytes);
      log.abort();
      expect(readdirSync(log.spillDir, { withFileTypes: true }).length).toBe(0);
      expect(log.committed?.toString()).toBe(at(10).toString());
      expect((await take(new ChangeLogReader(log).read(at(0)), 12)).at(-1)).toMatchObject({ tag: 'commit' });
    },
  );
});
