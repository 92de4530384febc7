import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { packCells } from '../core/packed-cells.ts';
import { UNCHANGED } from '../core/row.ts';
import { HeldChanges, type RowEdit } from './held-changes.ts';
import { bag } from './tables.fixture.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function spillPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'tidemark-held-'));
  dirs.push(d);
  return join(d, 'spill', '7.held.rows');
}

const odd: RowEdit[] = [
  { tag: 'insert', table: bag, row: ['a\nb', null] },
  { tag: 'update', table: bag, row: [UNCHANGED, '\ud800 lone'], old: ['x', ''], oldIsFull: true },
  { tag: 'update', table: bag, row: ['0', null], old: null, oldIsFull: false },
  { tag: 'delete', table: bag, old: ['é 漢 😀', null] },
];

describe('HeldChanges', () => {
  it('beyond its memory budget holds changes on disk and gives back those kept, in order, exactly', () => {
    const path = spillPath();
    const held = new HeldChanges(bag, { spillPath: path, memoryBytes: 4096 });
    const many: RowEdit[] = Array.from({ length: 5_000 }, (_, i) => ({
      tag: 'insert',
      table: bag,
      row: [String(i), 'v'.repeat(i % 50)],
    }));
    odd.forEach((c, i) => held.push(c, i));
    expect(held.inMemory).toBe(true);
    many.forEach((c, i) => held.push(c, 100 + i));
    expect(held.inMemory).toBe(false);
    expect(existsSync(path)).toBe(true);
    expect(held.count).toBe(odd.length + many.length);
    // Transaction 1 is in the copy's rows: it is left out.
    const back = [...held.take((txn) => txn !== 1)];
    expect(back).toEqual([odd[0], odd[2], odd[3], ...many]);
    expect(existsSync(path)).toBe(false);
  });

  it('holds plain rows: no reference to a packed batch, UNCHANGED kept', () => {
    const held = new HeldChanges(bag, { spillPath: null, memoryBytes: 1 });
    const packedRow = packCells([UNCHANGED, 'n']);
    const change = {
      tag: 'update',
      table: bag,
      packedRow,
      row: [UNCHANGED, 'n'],
      old: ['o', 'p'],
      oldIsFull: true,
    } as RowEdit;
    held.push(change, 3);
    expect(held.inMemory).toBe(true);
    const [back] = [...held.take(() => true)];
    expect(back).toEqual({
      tag: 'update',
      table: bag,
      row: [UNCHANGED, 'n'],
      old: ['o', 'p'],
      oldIsFull: true,
    });
    expect(back).not.toHaveProperty('packedRow');
  });

  it('closed unread, deletes its spill', () => {
    const path = spillPath();
    const held = new HeldChanges(bag, { spillPath: path, memoryBytes: 1 });
    held.push(odd[0]!, 1);
    expect(existsSync(path)).toBe(true);
    held.close();
    expect(existsSync(path)).toBe(false);
  });
});
