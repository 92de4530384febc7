import { describe, expect, it } from 'vitest';
import { snapshotContains } from './snapshot-visibility.ts';

describe('snapshotContains', () => {
  it('sees xids before xmax that are not in progress', () => {
    const sees = snapshotContains('100:110:102,105');
    expect([99, 100, 101, 103, 104, 109].map(sees)).toEqual([true, true, true, true, true, true]);
    expect([102, 105, 110, 111, 5000].map(sees)).toEqual([false, false, false, false, false]);
  });

  it('compares the low 32 bits circularly across an epoch boundary', () => {
    // Epoch 3, xmax just past the wrap: 2^32 * 3 + 5.
    const base = 3n * 2n ** 32n;
    const sees = snapshotContains(`${base - 10n}:${base + 5n}:${base - 2n}`);
    expect(sees(2 ** 32 - 20)).toBe(true); // before the wrap
    expect(sees(2 ** 32 - 2)).toBe(false); // in progress
    expect(sees(3)).toBe(true); // after the wrap, before xmax
    expect(sees(5)).toBe(false);
    expect(sees(6)).toBe(false);
  });

  it('refuses a text that is not a snapshot', () => {
    expect(() => snapshotContains('nope')).toThrow(/unexpected snapshot text/);
  });
});
