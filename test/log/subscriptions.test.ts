import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { SubscriptionStore } from '../../src/log/subscriptions.ts';
import { LSN_CODEC } from '../../src/source/postgres/lsn.ts';
import { at } from './log-fixtures.ts';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-subs-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const tables = [{ id: 16384, schema: 'public', name: 'Ünïcødé "t"' }];

describe('subscription store', () => {
  it('holds the smallest position of what is recorded and of what was last written', () => {
    const dir = tempDir();
    const store = SubscriptionStore.open(dir, LSN_CODEC);
    expect(store.minPosition()).toBeNull();
    store.register('a', at(100), tables, 1);
    store.register('b', at(200), [], 1);
    // Not durable yet, but already held: a registration never waits for the next flush.
    expect(store.minPosition()).toEqual(at(100));
    expect(store.flush()).toBe(true);
    expect(store.flush()).toBe(false); // nothing changed
    store.acknowledge('a', at(300), 2);
    store.acknowledge('b', at(150), 2); // never moves back
    expect(store.get('b')?.position).toEqual(at(200));
    // a's acknowledgement is not durable: the durable 100 still holds.
    expect(store.minPosition()).toEqual(at(100));
    store.flush();
    expect(store.minPosition()).toEqual(at(200));
    // A removal not yet durable still holds too (a crash now would bring b back).
    store.remove('b');
    expect(store.minPosition()).toEqual(at(200));
    store.flush();
    expect(store.minPosition()).toEqual(at(300));
    const again = SubscriptionStore.open(dir, LSN_CODEC);
    expect(again.all()).toEqual([
      { id: 'a', position: at(300), registeredAtMs: 1, acknowledgedAtMs: 2, tables: [...tables] },
    ]);
    expect(readdirSync(dir)).toEqual(['subscriptions.json']);
  });

  it('writes the file whole (replaced atomically), and answers a damaged one with an error retrying cannot heal', () => {
    const dir = tempDir();
    const store = SubscriptionStore.open(dir, LSN_CODEC);
    store.register('a', at(0x10), tables, 1);
    store.flush();
    const text = readFileSync(join(dir, 'subscriptions.json'), 'utf8');
    expect(JSON.parse(text)).toMatchObject({
      version: 1,
      subscriptions: [{ id: 'a', position: '0/10', tables }],
    });
    for (const damaged of [
      text.slice(0, text.length / 2),
      '{"version": 99, "subscriptions": []}',
      text.replace('0/10', 'zz'),
    ]) {
      writeFileSync(join(dir, 'subscriptions.json'), damaged);
      let err: unknown;
      try {
        SubscriptionStore.open(dir, LSN_CODEC);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'CHANGELOG_CORRUPT', retriable: false });
      expect((err as Error).message).toContain(join(dir, 'subscriptions.json'));
      expect((err as { hint: string }).hint).toMatch(/Restore it, or delete it/);
    }
  });
});
