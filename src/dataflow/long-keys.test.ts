/**
 * Keys past LMDB's limit (a row with a TOASTed value as a state key): the LMDB store takes them
 * and gives them back as written — get, scans by short and by long prefix, paging with `after` —
 * across spills, commits and a rollback, against a Map. Random keys around the 400-character
 * cut, many sharing it (fixed seed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { LmdbStateStore } from './lmdb-state-store.ts';
import { LONG_KEY_CHARS } from './long-keys.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const base = 'k'.repeat(LONG_KEY_CHARS - 2);
/** Short, at the cut, and long keys (up to 4000 characters) that share the cut's first part. */
const keyArb = fc.oneof(
  fc.string({ maxLength: 3 }),
  fc.tuple(fc.string({ maxLength: 6 }), fc.nat(4000)).map(([s, n]) => base + s + 'x'.repeat(n % 3600)),
);

type Op = [key: string, value: string | null];

function scanAll(s: LmdbStateStore, prefix: string, page: number): [string, string][] {
  const out: [string, string][] = [];
  let after: string | undefined;
  for (;;) {
    const got = s.scanPrefix('n', prefix, { limit: page, ...(after === undefined ? {} : { after }) });
    out.push(...got);
    if (got.length < page) return out;
    after = got[got.length - 1]![0];
  }
}

const sorted = (m: Map<string, string>, prefix: string) =>
  [...m].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

describe('long state keys in LMDB', () => {
  it('are stored and read back as written: get, scans, paging, spills, rollback', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(fc.tuple(keyArb, fc.option(fc.string({ maxLength: 5 }), { nil: null })), {
            maxLength: 30,
          }),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        fc.integer({ min: 1, max: 7 }),
        async (epochs: Op[][], page) => {
          const dir = mkdtempSync(join(tmpdir(), 'tm-longkeys-'));
          dirs.push(dir);
          const s = LmdbStateStore.open({ path: dir, spillBytes: 4096 });
          const model = new Map<string, string>();
          let before = new Map<string, string>();
          for (const [e, ops] of epochs.entries()) {
            before = new Map(model);
            s.beginEpoch(e + 1);
            for (const [k, v] of ops) {
              if (v === null) {
                s.delete('n', k);
                model.delete(k);
              } else if (!model.has(k) && v.length % 2 === 0) {
                // Known absent: written without a read (StateStore.insert).
                s.insert('n', k, v);
                model.set(k, v);
              } else {
                s.put('n', k, v);
                model.set(k, v);
              }
            }
            await s.commitEpoch(e + 1);
          }
          const check = (m: Map<string, string>) => {
            for (const k of new Set([...m.keys(), base + 'zz'])) expect(s.get('n', k)).toBe(m.get(k));
            for (const prefix of ['', base, base.slice(0, 10), `${base}a`]) {
              const got = scanAll(s, prefix, page);
              // Long keys sharing the cut come back in the hash's order: compared as sets.
              expect(new Map(got)).toEqual(new Map(sorted(m, prefix)));
              expect(got.length).toBe(sorted(m, prefix).length);
            }
          };
          check(model);
          await s.rollbackLastEpoch();
          check(before);
          await s.close();
        },
      ),
      { seed: 1205, numRuns: 40 },
    );
  });
});
