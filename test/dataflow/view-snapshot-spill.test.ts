/**
 * The spill path of a snapshot, at a size CI affords (issue 13: a view over 20M input rows under
 * 512 MB; the full size is in views-memory.test.ts behind TIDEMARK_LONG_TESTS=1). With a small
 * memory quota the LMDB store spills the snapshot epoch's writes — the input arrangement, the
 * groups, and the views' initial output accumulated in the store — many times before the epoch
 * commits; the initial output and the next epoch's changes must still be exact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { LmdbStateStore } from '../../src/dataflow/lmdb-state-store.ts';
import { ViewMaintainer } from '../../src/dataflow/view-maintainer.ts';
import { stateStoreLimits } from '../../src/runtime/view-stage.ts';

const ROWS = 100_000;
const GROUPS = 1000;

const col = (name: string, isKey = false) => ({
  name,
  typeName: 'integer',
  typeOid: 23,
  typeMod: -1,
  isKey,
  nullable: !isKey,
});
const BIG: TableSchema = {
  schema: 'public',
  name: 'big',
  relationId: 1,
  columns: [col('id', true), col('grp'), col('v')],
  keyColumns: [0],
  keyless: false,
  enums: [],
};

const VIEWS = [
  { name: 'by_group', sql: 'SELECT grp, count(*) AS n, sum(v) AS total FROM big GROUP BY grp' },
  { name: 'even', sql: 'SELECT id, v FROM big WHERE id % 2 = 0' },
];

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a snapshot larger than the memory quota', () => {
  it('spills the snapshot epoch (arrangement, groups, initial output) and stays exact', async () => {
    const path = mkdtempSync(join(tmpdir(), 'tidemark-snapshot-spill-'));
    dirs.push(path);
    // A 1 MiB quota: 64 KiB of an epoch's writes in memory, the smallest map budget.
    const store = LmdbStateStore.open({ path, ...stateStoreLimits(1024 * 1024) });
    const vm = await ViewMaintainer.open({ views: VIEWS, catalog: [BIG], store });
    const rows: Row[] = Array.from({ length: ROWS }, (_, i) => [
      String(i),
      String(i % GROUPS),
      String(i % 97),
    ]);
    for (let i = 0; i < ROWS; i += 10_000)
      await vm.loadSnapshot({ table: BIG, rows: rows.slice(i, i + 10_000) });
    const out = new Map<string, Row[]>();
    for await (const chunk of vm.finishSnapshot()) {
      const list = out.get(chunk.table.name) ?? [];
      for (const r of chunk.rows) list.push(r);
      out.set(chunk.table.name, list);
    }
    // The snapshot epoch passed the quota many times over before it committed.
    const spilled = store.spills;
    expect(spilled).toBeGreaterThan(20);
    await vm.commit(0);

    const even = out.get('even') ?? [];
    expect(even.length).toBe(ROWS / 2);
    expect(even.reduce((s, r) => s + Number(r[0]), 0)).toBe(
      rows.reduce((s, r) => s + (Number(r[0]) % 2 === 0 ? Number(r[0]) : 0), 0),
    );
    expect(new Set(even.map((r) => r[0])).size).toBe(ROWS / 2);
    const groups = out.get('by_group') ?? [];
    expect(groups.length).toBe(GROUPS);
    expect(groups.reduce((s, r) => s + Number(r[1]), 0)).toBe(ROWS);
    expect(groups.reduce((s, r) => s + Number(r[2]), 0)).toBe(rows.reduce((s, r) => s + Number(r[2]), 0));

    // The committed state serves the next epoch: an update of one row per group.
    const upserts: Row[] = Array.from({ length: GROUPS }, (_, g) => [String(g), String(g), '1000']);
    const result = await vm.step(1, [
      { table: BIG, truncate: false, deletes: [], upserts, partialUpdates: [], rowDeltas: [] },
    ]);
    await vm.commit(1);
    const byGroup = result.find((t) => t.table.name === 'by_group');
    expect(byGroup?.upserts.length).toBe(GROUPS);
    const g7 = byGroup?.upserts.find((r) => r[0] === '7');
    const total7 = rows.filter((r) => r[1] === '7').reduce((s, r) => s + Number(r[2]), 0) - 7 + 1000;
    expect(g7).toEqual(['7', String(ROWS / GROUPS), String(total7)]);
    await vm.close();
  }, 300_000);
});
