import { describe, expect, it } from 'vitest';
import {
  checkPackedCells,
  packCells,
  packedCellsAt,
  packedHasUnchanged,
  packedIntAt,
  textIntKey,
  unpackCells,
} from './packed-cells.ts';
import { UNCHANGED, type Cell } from './row.ts';

describe('packed cells', () => {
  it('unpack to exactly the cells packed: NULL, UNCHANGED, empty, odd text, a long cell', () => {
    const cells: Cell[] = [
      null,
      UNCHANGED,
      '',
      'tab\tnew\nline\\',
      'ünï 𝄞',
      'x'.repeat(300),
      '{1,NULL,"a b"}',
    ];
    const p = packCells(cells);
    expect(unpackCells(p)).toEqual(cells);
    expect(p.count).toBe(cells.length);
    expect(checkPackedCells(p.bytes, p.start, p.end)).toBe(p.end);
    expect(() => checkPackedCells(p.bytes, p.start, p.end - 1)).toThrow(/past the record|end early/);
    expect(packedHasUnchanged(p)).toBe(true);
    expect(packedHasUnchanged(packCells(['a', null]))).toBe(false);
    expect(packedCellsAt(p, [0, 3, 5, 9])).toEqual([null, cells[3], cells[5], UNCHANGED]);
  });

  it('read a key as a number only in canonical integer form, from bytes and from text alike', () => {
    const texts = [
      '0',
      '7',
      '-7',
      '123456789012345',
      '1234567890123456',
      '-0',
      '007',
      '+1',
      '1e3',
      ' 1',
      '1.0',
      '',
      '-',
    ];
    const numbers = [0, 7, -7, 123456789012345, null, null, null, null, null, null, null, null, null];
    expect(texts.map((t) => textIntKey(t))).toEqual(numbers);
    expect(texts.map((t) => packedIntAt(packCells(['x', t]), 1))).toEqual(numbers);
    expect(packedIntAt(packCells(['x', null]), 1)).toBeNull();
  });
});
