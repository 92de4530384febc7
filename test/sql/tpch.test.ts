/**
 * TPC-H: the 22 queries, in their standard text, as incremental views. Generated data (SF 0.01)
 * is loaded into PostgreSQL and snapshotted into one ViewMaintainer holding all 22 views; then
 * refresh batches — RF1 (new orders and lines), RF2 (old orders deleted) and updates of every
 * table — are applied to both, and after the snapshot and every batch each view must equal
 * PostgreSQL re-running its query, row for row (text forms compared). The state lives in LMDB,
 * closed and reopened part-way. Seeds are fixed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, test } from 'vitest';
import { from as copyFrom } from 'pg-copy-streams';
import type pg from 'pg';
import { LmdbStateStore } from '../../src/dataflow/lmdb-state-store.ts';
import { ViewMaintainer } from '../../src/dataflow/view-maintainer.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import type { SnapshotRows, TableChanges } from '../../src/core/epoch.ts';
import { planView } from '../../src/sql/planner.ts';
import { freshDatabase } from '../support/db.ts';
import { TPCH_QUERIES } from '../support/tpch-queries.ts';
import {
  batchChanges,
  batchStatements,
  copyLines,
  generateTpch,
  refreshBatch,
  tpchSchemaSql,
  tpchTableSchemas,
  TPCH_TABLES,
  type Batch,
  type TextRow,
} from '../support/tpch.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const catalog = tpchTableSchemas();
const schemaOf = (t: string) => catalog.find((s) => s.name === t)!;

/** A view as a sink holds it: by key, or a multiset of rows. */
class ViewCopy {
  readonly rows = new Map<string, { row: TextRow; n: number }>();
  constructor(private readonly table: TableSchema) {}
  private key(row: readonly (string | null)[]): string {
    return JSON.stringify(this.table.keyless ? row : this.table.keyColumns.map((i) => row[i]));
  }
  private add(row: TextRow, n: number): void {
    const k = this.key(row);
    const total = (this.rows.get(k)?.n ?? 0) + n;
    if (total === 0) this.rows.delete(k);
    else this.rows.set(k, { row, n: total });
  }
  snapshot(chunk: SnapshotRows): void {
    for (const r of chunk.rows) this.add(r as TextRow, 1);
  }
  apply(tc: TableChanges): void {
    for (const d of tc.deletes) this.rows.delete(this.key(d));
    for (const u of tc.upserts) this.rows.set(this.key(u), { row: u as TextRow, n: 1 });
    for (const d of tc.rowDeltas) this.add(d.row as TextRow, d.count);
  }
  sorted(): string[] {
    return [...this.rows.values()].flatMap((e) => Array<string>(e.n).fill(JSON.stringify(e.row))).sort();
  }
}

async function copyInto(client: pg.Client, table: string, rows: Iterable<TextRow>): Promise<void> {
  await pipeline(Readable.from(copyLines(rows)), client.query(copyFrom(`COPY ${table} FROM STDIN`)));
}

/** The batch applied to PostgreSQL (deletes, then upserts) and as the runtime's TableChanges. */
async function applyBatch(client: pg.Client, batch: Batch): Promise<TableChanges[]> {
  await client.query(`BEGIN; ${batchStatements(batch).join(';\n')}; COMMIT`);
  return batchChanges(batch, catalog);
}

describe('TPC-H: the 22 queries as incremental views', () => {
  test('all 22 queries are accepted in their standard text', async () => {
    const accepted: string[] = [];
    for (const q of TPCH_QUERIES) {
      await planView({ name: q.name, sql: q.sql, catalog: (_s, n) => catalog.find((t) => t.name === n) });
      accepted.push(q.name);
    }
    expect(accepted).toHaveLength(22);
  });

  test(
    'every view equals PostgreSQL re-running the query after the snapshot and every refresh batch',
    { timeout: 600_000 },
    async () => {
      const db = await freshDatabase('tpch');
      await db.query(tpchSchemaSql());
      const client = await db.connect();
      await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'`);
      const state = generateTpch(0.01, 7);
      for (const t of TPCH_TABLES) await copyInto(client, t, state.rows[t]!.values());
      await client.query('ANALYZE');
      const path = mkdtempSync(join(tmpdir(), 'tidemark-tpch-'));
      dirs.push(path);
      const open = () =>
        ViewMaintainer.open({ views: TPCH_QUERIES, catalog, store: LmdbStateStore.open({ path }) });
      let vm = await open();
      const copies = new Map(vm.viewTables.map((t, i) => [TPCH_QUERIES[i]!.name, new ViewCopy(t)]));
      const check = async (label: string) => {
        const bad: string[] = [];
        for (const q of TPCH_QUERIES) {
          const res = await client.query({
            text: q.sql,
            rowMode: 'array',
            types: { getTypeParser: () => (x: string) => x },
          });
          const expected = (res.rows as TextRow[]).map((r) => JSON.stringify(r)).sort();
          const got = copies.get(q.name)!.sorted();
          if (process.env.TPCH_DEBUG) console.log(label, q.name, got.length, expected.length);
          if (JSON.stringify(got) !== JSON.stringify(expected)) {
            const missing = expected.filter((e) => !got.includes(e)).slice(0, 3);
            const extra = got.filter((g) => !expected.includes(g)).slice(0, 3);
            bad.push(
              `${q.name} ${label}: ${got.length} rows vs ${expected.length}; missing ${missing.join(' ')}; extra ${extra.join(' ')}`,
            );
          }
        }
        expect(bad).toEqual([]);
      };
      const t0 = performance.now();
      for (const t of TPCH_TABLES) {
        const rows = [...state.rows[t]!.values()];
        for (let i = 0; i < rows.length; i += 5000)
          await vm.loadSnapshot({ table: schemaOf(t), rows: rows.slice(i, i + 5000) });
      }
      for await (const chunk of vm.finishSnapshot()) copies.get(chunk.table.name)!.snapshot(chunk);
      await vm.commit(0);
      if (process.env.TPCH_DEBUG) console.log('snapshot ms', performance.now() - t0);
      await check('after the snapshot');
      for (let epoch = 1; epoch <= 6; epoch++) {
        const changes = await applyBatch(client, refreshBatch(state, { orders: 15, updates: 6 }));
        const t1 = performance.now();
        const out = await vm.step(epoch, changes);
        await vm.commit(epoch);
        if (process.env.TPCH_DEBUG) console.log('epoch ms', performance.now() - t1);
        for (const tc of out) copies.get(tc.table.name)!.apply(tc);
        if (epoch === 3) {
          await vm.close();
          vm = await open();
        }
        await check(`after batch ${epoch}`);
      }
      await vm.close();
    },
  );
});
