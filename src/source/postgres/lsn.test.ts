import { describe, expect, it } from 'vitest';
import { Lsn } from './lsn.ts';

describe('Lsn', () => {
  it('round-trips the PostgreSQL text form', () => {
    for (const text of ['0/0', '16/B374D848', 'FFFFFFFF/FFFFFFFF', '0/1']) {
      expect(Lsn.parse(text).toString()).toBe(text);
    }
  });
  it('orders numerically, and sortKey orders the same way lexically', () => {
    const a = Lsn.parse('0/FFFFFFFF');
    const b = Lsn.parse('1/0');
    expect(a.compare(b)).toBeLessThan(0);
    expect(a.sortKey() < b.sortKey()).toBe(true);
    expect(b.minus(a)).toBe(1n);
  });
  it('refuses garbage with a clear error', () => {
    expect(() => Lsn.parse('nope')).toThrow(/not a PostgreSQL LSN/);
  });
});
