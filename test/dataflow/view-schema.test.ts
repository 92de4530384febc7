/**
 * View state and schema changes of its input tables (issue 10, item 7). The state records the
 * schema it was built with; changes in a layout nobody announced are refused, never decoded
 * silently with a stale layout. Each case runs the real ViewStage over LMDB in a temp directory.
 * A schema change reaches the views as a barrier in the stream (the hub carries changes made while
 * Tidemark was down too): migrated, rebuilt in the epoch, or refused — tested end to end in
 * test/changefeed/view-schema-barriers.test.ts (the open-time comparison with the current catalog
 * these tests once covered is gone: state resumes in the layouts it recorded).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { ColumnSchema, TableSchema } from '../../src/core/table-schema.ts';
import { ViewStage } from '../../src/runtime/view-stage.ts';
import { LmdbStateStore } from '../../src/dataflow/lmdb-state-store.ts';
import { readSchemaRecord, writeSchemaRecord } from '../../src/dataflow/schema-record.ts';
import type { SnapshotRows, TableChanges } from '../../src/core/epoch.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const col = (name: string, typeName: string, typeOid: number, isKey = false): ColumnSchema => ({
  name,
  typeName,
  typeOid,
  typeMod: -1,
  isKey,
  nullable: !isKey,
});
const int = (name: string, isKey = false) => col(name, 'integer', 23, isKey);

function prices(columns: ColumnSchema[]): TableSchema {
  return {
    schema: 'public',
    name: 'prices',
    relationId: 4242,
    columns,
    keyColumns: columns.flatMap((c, i) => (c.isKey ? [i] : [])),
    keyless: false,
    enums: [],
  };
}
const V1 = prices([int('id', true), int('a'), int('b')]);
const DROPPED_A = prices([int('id', true), int('b')]);
const ADDED_C = prices([int('id', true), int('a'), int('b'), col('c', 'text', 25)]);

const upserts = (table: TableSchema, rows: Row[]): TableChanges => ({
  table,
  truncate: false,
  deletes: [],
  upserts: rows,
  partialUpdates: [],
  rowDeltas: [],
});

/** A view's rows as a sink would hold them after the snapshot and the given epochs. */
class Copy {
  readonly rows = new Map<string, Row>();
  constructor(private readonly key: readonly number[]) {}
  snapshot(c: SnapshotRows): void {
    for (const r of c.rows) this.rows.set(JSON.stringify(this.key.map((i) => r[i])), r);
  }
  apply(tc: TableChanges): void {
    for (const d of tc.deletes) this.rows.delete(JSON.stringify(this.key.map((i) => d[i])));
    for (const u of tc.upserts) this.rows.set(JSON.stringify(this.key.map((i) => u[i])), u);
  }
  sorted(): string[] {
    return [...this.rows.values()].map((r) => JSON.stringify(r)).sort();
  }
}

async function snapshotStage(
  stateDir: string,
  view: { name: string; sql: string },
  rows: Row[],
): Promise<Copy[]> {
  const stage = await ViewStage.open({ views: [view], catalog: [V1], stateDir, sinkEpoch: null });
  const copies = stage.viewTables.map((t) => new Copy(t.keyColumns));
  async function* chunks() {
    yield { table: V1, rows };
  }
  for await (const c of stage.snapshot(chunks(), new Set()))
    copies[stage.viewTables.findIndex((t) => t.name === c.table.name)]?.snapshot(c);
  await stage.close();
  return copies;
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tm-view-schema-'));
  dirs.push(d);
  return d;
}

const ROWS: Row[] = [
  ['1', '10', '100'],
  ['2', '20', '100'],
  ['3', '30', '200'],
];

describe('view state records the schema it was built with', () => {
  it("the view's SQL changed in the config: rebuilt, with the reason", async () => {
    const dir = tempDir();
    await snapshotStage(dir, { name: 'v', sql: 'SELECT b, count(*) AS n FROM prices GROUP BY b' }, ROWS);
    const stage = await ViewStage.open({
      views: [{ name: 'v', sql: 'SELECT a AS b, count(*) AS n FROM prices GROUP BY a' }],
      catalog: [V1],
      stateDir: dir,
      sinkEpoch: 0,
    });
    expect(stage.needsSnapshot).toBe(true);
    expect(stage.rebuildReason).toMatch(/view "v".*SQL changed/);
    await stage.close();
  });

  it('state built by a version that planned the views another way: rebuilt, with the reason', async () => {
    const dir = tempDir();
    const view = { name: 'v', sql: 'SELECT b, count(*) AS n FROM prices GROUP BY b' };
    await snapshotStage(dir, view, ROWS);
    // As an older version left it: its record names no plan digest.
    const store = LmdbStateStore.open({ path: dir });
    const { plans: _, ...older } = readSchemaRecord(store)!;
    store.beginEpoch(1);
    writeSchemaRecord(store, older);
    await store.commitEpoch(1);
    await store.close();
    const stage = await ViewStage.open({ views: [view], catalog: [V1], stateDir: dir, sinkEpoch: 1 });
    expect(stage.needsSnapshot).toBe(true);
    expect(stage.rebuildReason).toMatch(/plans the views another way/);
    await stage.close();
    // Rebuilt, the state records this version's digest and resumes without another rebuild.
    await snapshotStage(dir, view, ROWS);
    const again = await ViewStage.open({ views: [view], catalog: [V1], stateDir: dir, sinkEpoch: 0 });
    expect(again.needsSnapshot).toBe(false);
    await again.close();
  });

  it('at a barrier: a read column dropped is refused; SELECT * needs a rebuild', async () => {
    const dir = tempDir();
    const reads = { name: 'sum_a', sql: 'SELECT b, sum(a) AS sa FROM prices GROUP BY b' };
    await snapshotStage(dir, reads, ROWS);
    const stage = await ViewStage.open({ views: [reads], catalog: [V1], stateDir: dir, sinkEpoch: 0 });
    await expect(stage.schemaChanged(DROPPED_A)).rejects.toThrow(
      /VIEW_SCHEMA_INCOMPATIBLE.*sum_a.*public\.prices.*"a"/s,
    );
    await stage.close();

    const dir2 = tempDir();
    const star = { name: 'all_prices', sql: 'SELECT * FROM prices' };
    await snapshotStage(dir2, star, ROWS);
    const stage2 = await ViewStage.open({ views: [star], catalog: [V1], stateDir: dir2, sinkEpoch: 0 });
    expect(await stage2.schemaChanged(ADDED_C)).toEqual({
      kind: 'rebuild',
      reason: expect.stringMatching(/all_prices.*column "c".*added/),
    });
    await stage2.close();
  });

  it('changes in a layout nobody announced are refused, not decoded by position', async () => {
    const dir = tempDir();
    const view = { name: 'by_b', sql: 'SELECT b, count(*) AS n FROM prices GROUP BY b' };
    await snapshotStage(dir, view, ROWS);
    const stage = await ViewStage.open({ views: [view], catalog: [V1], stateDir: dir, sinkEpoch: 0 });
    await expect(stage.apply(1, [upserts(DROPPED_A, [['1', '300']])])).rejects.toThrow(
      /VIEW_SCHEMA_MISMATCH|schemaChanged/,
    );
    await stage.close();
  });
});
