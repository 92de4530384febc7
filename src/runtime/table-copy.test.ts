/**
 * The reconciliation of one chunk with the stream (`TableCopy`), driven by hand: a reader that
 * returns what the test says, and stream changes fed between its issue and its finish.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RowChange } from '../core/change.ts';
import type { Position } from '../core/position.ts';
import type { Row } from '../core/row.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { ChunkRead, ChunkReader } from '../source/connector.ts';
import { shadowName, TableCopy, type CopySpill } from './table-copy.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { bag } from './tables.fixture.ts';

class At implements Position {
  constructor(readonly n: number) {}
  compare(o: Position): number {
    return this.n - (o as At).n;
  }
  equals(o: Position): boolean {
    return this.compare(o) === 0;
  }
  sortKey(): string {
    return String(this.n).padStart(12, '0');
  }
  toString(): string {
    return String(this.n);
  }
}

/** A reader whose next chunk is `read`, resolved at once. */
function readerOf(read: ChunkRead): ChunkReader & { calls: number } {
  return {
    table: bag,
    calls: 0,
    estimateRows: () => Promise.resolve(null),
    read() {
      this.calls++;
      return Promise.resolve(read);
    },
    close: () => Promise.resolve(),
  };
}

const insert = (row: Row): RowChange => ({ tag: 'insert', table: bag, row });
const del = (old: Row): RowChange => ({ tag: 'delete', table: bag, old });

async function settled(copy: TableCopy): Promise<void> {
  await new Promise((r) => setTimeout(r, 0));
  expect(copy.ready(new At(100))).toBe(true);
}

/** A copy of `table` from its first key, with no row estimate, for changefeed `test`. */
function freshCopy(reader: ChunkReader, table: TableSchema, spillTo: CopySpill | null = null): TableCopy {
  return new TableCopy(
    reader,
    { table, lastKey: null, rows: 0, chunks: 0, phase: 'copying' },
    null,
    'test',
    spillTo,
  );
}

describe('TableCopy of a table without a key', () => {
  it('applies, after the chunk, exactly the held changes of transactions its snapshot did not see', async () => {
    const chunk: ChunkRead = {
      rows: [
        ['1', 'x'],
        ['2', 'y'],
      ],
      low: new At(10),
      high: new At(20),
      lastKey: null,
      done: true,
      // Transaction 5 is in the rows; 6 and 7 are not.
      contains: (txn) => txn === 5,
    };
    const reader = readerOf(chunk);
    const copy = freshCopy(reader, bag);
    copy.issue(100);
    expect(copy.observe(insert(['2', 'y']), 5)).toBeNull();
    expect(copy.observe(del(['1', 'x']), 6)).toBeNull();
    expect(copy.observe(insert(['3', 'z']), 7)).toBeNull();
    await settled(copy);
    const f = copy.finish();
    expect(f.reread).toBeNull();
    expect(f.complete).toBe(true);
    expect(f.rows).toEqual([
      ['1', 'x'],
      ['2', 'y'],
    ]);
    expect([...f.changes]).toEqual([
      { tag: 'delete', table: copy.shadow, old: ['1', 'x'] },
      { tag: 'insert', table: copy.shadow, row: ['3', 'z'] },
    ]);
    expect(reader.calls).toBe(1);
  });

  it('with a spill path, takes the read’s rows as they come onto disk and gives them back once; a re-read drops them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-copy-'));
    try {
      const spillPath = join(dir, 'bag.rows');
      const heldPath = join(dir, 'bag.held.rows');
      // Every held change beyond the first byte goes to disk too.
      const spillTo = { rowsPath: spillPath, heldPath, heldMemoryBytes: 1 };
      let batches = 0;
      const reader: ChunkReader = {
        table: bag,
        estimateRows: () => Promise.resolve(null),
        read(_after, _limit, each) {
          // The whole table in batches; the chunk itself carries no rows.
          for (let b = 0; b < 3; b++) {
            each!([
              [`${b}`, 'x'],
              [`${b}`, 'y'],
            ]);
            batches++;
          }
          return Promise.resolve({
            rows: [],
            low: new At(10),
            high: new At(20),
            lastKey: null,
            done: true,
            contains: (txn: number) => txn === 5,
          });
        },
        close: () => Promise.resolve(),
      };
      const copy = freshCopy(reader, bag, spillTo);
      copy.issue(100);
      expect(copy.observe(insert(['9', 'z']), 6)).toBeNull();
      expect(copy.observe(insert(['2', 'y']), 5)).toBeNull();
      await settled(copy);
      expect(existsSync(spillPath)).toBe(true);
      expect(existsSync(heldPath)).toBe(true);
      const f = copy.finish();
      expect(batches).toBe(3);
      expect(f.rowCount).toBe(6);
      expect([...f.rows]).toEqual([
        ['0', 'x'],
        ['0', 'y'],
        ['1', 'x'],
        ['1', 'y'],
        ['2', 'x'],
        ['2', 'y'],
      ]);
      expect([...f.changes]).toEqual([{ tag: 'insert', table: copy.shadow, row: ['9', 'z'] }]);
      expect(copy.progress.rows).toBe(6);
      expect(existsSync(spillPath)).toBe(false);
      expect(existsSync(heldPath)).toBe(false);

      expect(f.held).toEqual({ count: 2, onDisk: true });
      f.release();

      // Applying failed before the rows or the held changes were read: release deletes both.
      const failed = freshCopy(reader, bag, spillTo);
      failed.issue(100);
      failed.observe(insert(['7', 'z']), 6);
      await settled(failed);
      const g = failed.finish();
      expect(existsSync(spillPath)).toBe(true);
      expect(existsSync(heldPath)).toBe(true);
      g.release();
      expect(existsSync(spillPath)).toBe(false);
      expect(existsSync(heldPath)).toBe(false);

      // A change the source cannot place (no txn): the read is thrown away, and its spill with it.
      const again = freshCopy(reader, bag, spillTo);
      again.issue(100);
      again.observe(insert(['8', 'z']), 6);
      again.observe(insert(['9', 'z']), undefined);
      await settled(again);
      expect(again.finish().reread).toMatch(/changed while it was read/);
      expect(existsSync(spillPath)).toBe(false);
      expect(existsSync(heldPath)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads again when the source cannot tell which transactions the chunk holds', async () => {
    const reader = readerOf({
      rows: [['1', 'x']],
      low: new At(10),
      high: new At(20),
      lastKey: null,
      done: true,
    });
    const copy = freshCopy(reader, bag);
    copy.issue(100);
    copy.observe(insert(['3', 'z']), undefined);
    await settled(copy);
    expect(copy.finish().reread).toMatch(/changed while it was read/);
  });

  it('sends what follows a TRUNCATE to the shadow: the stream then holds the whole table', async () => {
    const reader = readerOf({
      rows: [['1', 'x']],
      low: new At(10),
      high: new At(20),
      lastKey: null,
      done: true,
    });
    const copy = freshCopy(reader, bag);
    copy.issue(100);
    expect(copy.observe({ tag: 'truncate', tables: [bag] }, 8)).toEqual({
      tag: 'truncate',
      tables: [copy.shadow],
    });
    // Before the fix the insert after the TRUNCATE was held back and then dropped.
    expect(copy.observe(insert(['9', 'w']), 8)).toEqual({
      tag: 'insert',
      table: copy.shadow,
      row: ['9', 'w'],
    });
    expect(copy.ready(new At(100))).toBe(true);
    const f = copy.finish();
    expect({ rows: f.rows, rowCount: f.rowCount, changes: f.changes, complete: f.complete }).toEqual({
      rows: [],
      rowCount: 0,
      changes: [],
      complete: true,
    });
    expect(f.reread).toBeNull();
  });

  it('a read that finds the table moved waits for the stream to pass the change, then reads again (once)', async () => {
    const moved = () =>
      Promise.reject(
        new TidemarkError('SOURCE_SNAPSHOT_SCHEMA_MOVED', { detail: 'column "a" does not exist' }),
      );
    let calls = 0;
    const reader: ChunkReader = {
      table: bag,
      estimateRows: () => Promise.resolve(null),
      read: () => (calls++, moved()),
      close: () => Promise.resolve(),
    };
    const copy = freshCopy(reader, bag);
    copy.issue(100);
    await settled(copy);
    expect(() => copy.finish()).toThrow(/SOURCE_SNAPSHOT_SCHEMA_MOVED/);
    expect(copy.waitForChange(new At(50))).toBe(true);
    // Nothing is read until the stream passed the source's end at the failure.
    expect(copy.ready(new At(49))).toBe(false);
    expect(copy.ready(new At(50))).toBe(true);
    expect(copy.finish()).toMatchObject({ complete: false, reread: 'the table changed while it was read' });
    copy.issue(100);
    await settled(copy);
    expect(() => copy.finish()).toThrow(/SOURCE_SNAPSHOT_SCHEMA_MOVED/);
    // The same failure right after the wait: not waited for again (the changefeed fails, naming it).
    expect(copy.waitForChange(new At(60))).toBe(false);
    expect(calls).toBe(2);
  });
});

describe('shadowName', () => {
  it('is the changefeed’s own: two changefeeds copying tables with one id never share a shadow', () => {
    // Two source databases number their tables alike; their changefeeds may share a sink schema.
    expect(shadowName(16384, 'orders_eu')).not.toBe(shadowName(16384, 'orders_us'));
    expect(shadowName(16384, 'orders_eu')).toBe(shadowName(16384, 'orders_eu'));
    expect(shadowName(4294967295, 'a'.repeat(200)).length).toBeLessThanOrEqual(63);
  });
});
