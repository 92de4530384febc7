import { describe, expect, it } from 'vitest';
import { flatTableName } from './flat-table-name.ts';

describe('flatTableName', () => {
  it('keeps plain names and is one-to-one for names with dots and percent signs', () => {
    expect(flatTableName({ schema: 'public', name: 'User' })).toBe('User');
    expect(flatTableName({ schema: 'sales', name: 'order' })).toBe('sales.order');
    const names = [
      { schema: 'a.b', name: 'c' },
      { schema: 'a', name: 'b.c' },
      { schema: 'public', name: 'a.b.c' },
      { schema: 'public', name: 'a%2Eb.c' },
      { schema: 'a%2Eb', name: 'c' },
      { schema: 'public', name: 'a' },
    ];
    const flat = names.map(flatTableName);
    expect(new Set(flat).size).toBe(names.length);
    expect(flat.slice(0, 2)).toEqual(['a%2Eb.c', 'a.b%2Ec']);
  });
});
