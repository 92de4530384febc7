import { describe, expect, it } from 'vitest';
import { defineChangefeed, replicationNameFor } from './changefeed-config.ts';
import { matchTable } from '../core/selection.ts';

describe('matchTable', () => {
  it('matches exact names, public by default, and globs', () => {
    expect(matchTable('public.orders', 'public', 'orders')).toBe(true);
    expect(matchTable('orders', 'public', 'orders')).toBe(true);
    expect(matchTable('orders', 'sales', 'orders')).toBe(false);
    expect(matchTable('sales.*', 'sales', 'anything')).toBe(true);
    expect(matchTable('sales.*', 'public', 'anything')).toBe(false);
    expect(matchTable('public.order_*', 'public', 'order_items')).toBe(true);
    expect(matchTable('public.order_*', 'public', 'orders')).toBe(false);
    expect(matchTable('public.t?', 'public', 't1')).toBe(true);
    expect(matchTable('public.t?', 'public', 't12')).toBe(false);
    expect(matchTable('*.*', 'x', 'y')).toBe(true);
  });

  it('treats regex characters literally and is case-sensitive', () => {
    expect(matchTable('public.a+b', 'public', 'a+b')).toBe(true);
    expect(matchTable('public.a+b', 'public', 'aab')).toBe(false);
    expect(matchTable('public.Orders', 'public', 'orders')).toBe(false);
  });
});

describe('defineChangefeed', () => {
  it('fills defaults, keeping partial overrides', () => {
    const c = defineChangefeed({ id: 'x', source: 's', sink: 'k', tables: ['t'], epoch: { intervalMs: 10 } });
    expect(c.epoch).toEqual({ intervalMs: 10, maxRows: 100_000, maxBytes: 64 * 1024 * 1024 });
    expect(c.snapshot).toEqual({ parallelism: 4, chunkRows: 50_000, startTimeoutMs: 30_000 });
    expect(c.schemaChanges).toEqual({ dropTable: 'drop', renameTable: 'follow', recopy: 'copy' });
    expect(c.views).toEqual([]);
  });

  it('names the slot from the id', () => {
    expect(replicationNameFor('my-feed_1')).toBe('tidemark_my_feed_1');
  });
});

describe('splitTablePattern', () => {
  it('reads quoted identifiers with dots and quotes in them', async () => {
    const { splitTablePattern } = await import('../core/selection.ts');
    expect(splitTablePattern('"my.schema"."t ""x"""')).toEqual({ schema: 'my.schema', name: 't "x"' });
    expect(splitTablePattern('public.Weird Name')).toEqual({ schema: 'public', name: 'Weird Name' });
    expect(splitTablePattern('orders')).toEqual({ schema: 'public', name: 'orders' });
  });
});
