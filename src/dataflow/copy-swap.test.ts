/**
 * A table's copy replacing its rows in the views (ViewMaintainer.copySwapped): whatever the views
 * held (rows A) and whatever the copy collected (rows B, in chunks and changes, partial updates
 * of rows it lacks skipped), the views' changes at the swap take them from A to exactly B, and
 * change only what differs. Keyed and keyless tables; random cases, fixed seeds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Cell, Row } from '../core/row.ts';
import { UNCHANGED } from '../core/row.ts';
import type { TableChanges } from '../core/epoch.ts';
import type { ColumnSchema, TableSchema } from '../core/table-schema.ts';
import { MemoryStateStore } from './memory-state-store.ts';
import { ViewMaintainer } from './view-maintainer.ts';

const col = (name: string, typeOid: number, isKey: boolean): ColumnSchema => ({
  name,
  typeName: typeOid === 23 ? 'integer' : 'text',
  typeOid,
  typeMod: -1,
  isKey,
  nullable: !isKey,
});

function table(keyless: boolean): TableSchema {
  return {
    schema: 'public',
    name: 't',
    relationId: 7,
    columns: [col('k', 23, !keyless), col('v', 25, false)],
    keyColumns: keyless ? [] : [0],
    keyless,
    enums: [],
  };
}

const shadowOf = (t: TableSchema): TableSchema => ({ ...t, name: '_copy_7', relationId: -7 });

const changes = (t: TableSchema, rows: Row[], partial: Cell[][] = []): TableChanges =>
  t.keyless
    ? {
        table: t,
        truncate: false,
        deletes: [],
        upserts: [],
        partialUpdates: [],
        rowDeltas: rows.map((row) => ({ row, count: 1 })),
      }
    : {
        table: t,
        truncate: false,
        deletes: [],
        upserts: rows,
        partialUpdates: partial.map((row) => ({ row, fromKey: null })),
        rowDeltas: [],
      };

/** The view's rows as a sorted multiset of `k|v`, after applying `out` to `start`. */
function applyView(start: Map<string, number>, out: readonly TableChanges[]): Map<string, number> {
  const m = new Map(start);
  const bump = (r: readonly (string | null)[], n: number) => {
    const key = `${r[0]}|${r[1]}`;
    const c = (m.get(key) ?? 0) + n;
    if (c === 0) m.delete(key);
    else m.set(key, c);
  };
  for (const tc of out) {
    for (const d of tc.rowDeltas) bump(d.row as (string | null)[], d.count);
    for (const del of tc.deletes)
      for (const key of [...m.keys()]) if (key.startsWith(`${del[0]}|`)) m.delete(key);
    for (const up of tc.upserts) {
      for (const key of [...m.keys()]) if (key.startsWith(`${up[0]}|`)) m.delete(key);
      bump(up as (string | null)[], 1);
    }
  }
  return m;
}

const multiset = (rows: readonly Row[]) => applyView(new Map(), [changes(table(true), [...rows])]);

const rowsArb = (keyless: boolean) =>
  fc
    .array(
      fc.tuple(fc.integer({ min: 1, max: 12 }), fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null })),
      {
        maxLength: 14,
      },
    )
    .map((rs) => {
      const rows = rs.map(([k, v]): Row => [String(k), v]);
      if (keyless) return rows;
      return [...new Map(rows.map((r) => [r[0], r])).values()];
    });

describe('copySwapped', () => {
  for (const keyless of [false, true]) {
    it(`takes the views from the table's last rows to the copy's, changing only what differs (${keyless ? 'keyless' : 'keyed'})`, async () => {
      await fc.assert(
        fc.asyncProperty(
          rowsArb(keyless),
          rowsArb(keyless),
          fc.integer({ min: 1, max: 5 }),
          async (a, b, page) => {
            const t = table(keyless);
            const shadow = shadowOf(t);
            const vm = await ViewMaintainer.open({
              views: [{ name: 'vt', sql: 'SELECT k, v FROM t' }],
              catalog: [t],
              store: new MemoryStateStore(),
            });
            await vm.loadSnapshot({ table: t, rows: a });
            const initial: Row[] = [];
            for await (const c of vm.finishSnapshot()) initial.push(...c.rows);
            await vm.commit(0);
            expect(multiset(initial)).toEqual(multiset(a));

            // Epoch 1: the copy starts; a partial update of a row it lacks is skipped, as the
            // sink's shadow skips it; the copy's rows arrive in two chunks.
            await vm.step(1, [], {});
            vm.copyStarted(t, shadow, true);
            const half = Math.floor(b.length / 2);
            const lacking: Cell[][] = keyless ? [] : [['99', UNCHANGED]];
            await vm.step(1, [changes(shadow, b.slice(0, half), lacking)], { continuing: true });
            await vm.commit(1);
            await vm.step(2, [changes(shadow, b.slice(half))]);
            const out: TableChanges[] = [];
            for (const p of vm.copySwapped(t, page)) out.push(...p);
            await vm.commit(2);

            expect(applyView(multiset(a), out)).toEqual(multiset(b));
            if (!keyless) {
              const before = new Map(a.map((r) => [r[0], r[1]]));
              const after = new Map(b.map((r) => [r[0], r[1]]));
              const differ = new Set([...before.keys(), ...after.keys()]);
              for (const k of differ)
                if (before.has(k) && after.has(k) && before.get(k) === after.get(k)) differ.delete(k);
              const touched = out.reduce((n, tc) => n + tc.upserts.length + tc.deletes.length, 0);
              expect(touched).toBe(differ.size);
            }
            // Afterwards the table's changes reach the views again, from the copy's rows.
            const next = await vm.step(3, [changes(t, [['50', 'z']])]);
            expect(next.flatMap((tc) => [...tc.upserts, ...tc.rowDeltas.map((d) => d.row)])).toEqual([
              ['50', 'z'],
            ]);
            await vm.close();
          },
        ),
        { seed: 1205, numRuns: 60 },
      );
    });
  }
});
