/**
 * ViewMaintainer against PostgreSQL as the oracle: random inserts, updates (full, partial with an
 * UNCHANGED TOAST-like column, key-changing), deletes and truncates are applied to real tables;
 * the same epochs, collapsed per key the way the runtime collapses them, are stepped through the
 * maintainer, whose outputs are applied to an in-memory copy of each view and compared with the
 * view's SELECT after every epoch. The LMDB store is closed and reopened mid-run, and committed
 * epochs are rolled back and replayed as after a crash. Seeds are fixed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { LmdbStateStore } from '../../src/dataflow/lmdb-state-store.ts';
import { ViewMaintainer } from '../../src/dataflow/view-maintainer.ts';
import { UNCHANGED, type Cell, type Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import type { PartialUpdate, SnapshotRows, TableChanges } from '../../src/core/epoch.ts';
import { typeFromName, typeOid } from '../../src/sql/sql-type.ts';
import { freshDatabase } from '../support/db.ts';
import { mulberry32 as rng } from '../../src/cli/demo/workload.ts';

const SCHEMA = `
  CREATE TABLE customers (id int PRIMARY KEY, region text, name text NOT NULL);
  CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(12,2), status text NOT NULL, note text);
  CREATE TABLE tags (order_id int, tag text);`;

const COLUMNS: Record<string, [string, string, boolean][]> = {
  customers: [
    ['id', 'integer', true],
    ['region', 'text', false],
    ['name', 'text', false],
  ],
  orders: [
    ['id', 'integer', true],
    ['customer_id', 'integer', false],
    ['amount', 'numeric(12,2)', false],
    ['status', 'text', false],
    ['note', 'text', false],
  ],
  tags: [
    ['order_id', 'integer', false],
    ['tag', 'text', false],
  ],
};

const VIEWS = [
  {
    name: 'status_totals',
    sql: 'SELECT status, count(*) AS n, sum(amount) AS total FROM orders GROUP BY status',
  },
  {
    name: 'region_revenue',
    sql: 'SELECT c.region, count(*) AS n, sum(o.amount) AS revenue FROM orders o JOIN customers c ON o.customer_id = c.id GROUP BY c.region',
  },
  { name: 'order_notes', sql: 'SELECT id, status, note FROM orders WHERE amount > 0' },
  { name: 'tag_orders', sql: 'SELECT t.tag, o.status FROM tags t JOIN orders o ON t.order_id = o.id' },
  { name: 'big_orders', sql: 'SELECT id, amount FROM orders ORDER BY amount DESC NULLS LAST, id LIMIT 5' },
  { name: 'public.tag_counts', sql: 'SELECT tag, count(*) AS n FROM tags GROUP BY tag' },
];

const catalog: TableSchema[] = Object.entries(COLUMNS).map(([name, cols], i) => {
  const columns = cols.map(([n, t, key]) => ({
    name: n,
    typeName: t,
    typeOid: typeOid(typeFromName(t)),
    typeMod: -1,
    isKey: key,
    nullable: !key,
  }));
  const keyColumns = columns.flatMap((c, j) => (c.isKey ? [j] : []));
  return {
    schema: 'public',
    name,
    relationId: 2000 + i,
    columns,
    keyColumns,
    keyless: keyColumns.length === 0,
    enums: [],
  };
});
const schemaOf = (t: string) => catalog.find((s) => s.name === t)!;

const lit = (v: string | null) => (v === null ? 'NULL' : `'${v.replaceAll("'", "''")}'`);

/** The view as a sink would hold it: keyed by the view key, or a multiset of rows. */
class ViewCopy {
  readonly rows = new Map<string, { row: Row; n: number }>();
  constructor(private readonly table: TableSchema) {}
  private key(row: readonly (string | null)[]): string {
    return JSON.stringify(this.table.keyless ? row : this.table.keyColumns.map((i) => row[i]));
  }
  private add(row: Row, n: number): void {
    const k = this.key(row);
    const e = this.rows.get(k);
    const total = (e?.n ?? 0) + n;
    if (total === 0) this.rows.delete(k);
    else this.rows.set(k, { row, n: total });
  }
  snapshot(chunk: SnapshotRows): void {
    for (const r of chunk.rows) this.add(r, 1);
  }
  apply(tc: TableChanges): void {
    expect(tc.truncate).toBe(false);
    for (const d of tc.deletes) {
      expect(this.rows.has(this.key(d)), `delete of a missing key in ${tc.table.name}`).toBe(true);
      this.rows.delete(this.key(d));
    }
    for (const u of tc.upserts) this.rows.set(this.key(u), { row: u, n: 1 });
    for (const d of tc.rowDeltas) this.add(d.row, d.count);
  }
  sorted(): string[] {
    return [...this.rows.values()].flatMap((e) => Array<string>(e.n).fill(JSON.stringify(e.row))).sort();
  }
}

interface EpochBuild {
  stmts: string[];
  changes: TableChanges[];
}

/** Random statements for one epoch and their collapsed TableChanges (as the runtime builds them). */
class Workload {
  private readonly tables: Record<string, Map<string, Row>> = { customers: new Map(), orders: new Map() };
  private tags: Row[] = [];
  private nextId = 1;
  constructor(private readonly r: () => number) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  private maybe(v: string): string | null {
    return this.r() < 0.15 ? null : v;
  }
  private newRow(table: string, id: number): Row {
    if (table === 'customers')
      return [String(id), this.maybe(this.pick(['north', 'south', 'east'])), this.pick(['ann', 'bob', 'cy'])];
    const cents = Math.floor(this.r() * 100000) - 10000;
    const amount = `${cents < 0 ? '-' : ''}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, '0')}`;
    return [
      String(id),
      this.maybe(String(1 + Math.floor(this.r() * 10))),
      this.maybe(amount),
      this.pick(['new', 'paid', 'shipped']),
      this.maybe(this.pick(['fragile', 'gift', 'x'.repeat(50)])),
    ];
  }

  initial(): { stmts: string[]; rows: Record<string, Row[]> } {
    const stmts: string[] = [];
    for (let i = 0; i < 12; i++) this.insert('customers', stmts);
    for (let i = 0; i < 40; i++) this.insert('orders', stmts);
    for (let i = 0; i < 30; i++) this.insertTag(stmts);
    return {
      stmts,
      rows: {
        customers: [...this.tables.customers!.values()],
        orders: [...this.tables.orders!.values()],
        tags: [...this.tags],
      },
    };
  }

  private insert(table: string, stmts: string[]): Row {
    const row = this.newRow(table, this.nextId++);
    this.tables[table]!.set(row[0]!, row);
    stmts.push(`INSERT INTO ${table} VALUES (${row.map(lit).join(', ')})`);
    return row;
  }
  private insertTag(stmts: string[]): Row {
    const row: Row = [this.maybe(String(1 + Math.floor(this.r() * 50))), this.pick(['a', 'b', 'c'])];
    this.tags.push(row);
    stmts.push(`INSERT INTO tags VALUES (${row.map(lit).join(', ')})`);
    return row;
  }

  epoch(): EpochBuild {
    const stmts: string[] = [];
    const changes: TableChanges[] = [];
    for (const table of ['customers', 'orders']) {
      const rows = this.tables[table]!;
      const truncate = this.r() < 0.06;
      if (truncate) {
        stmts.push(`TRUNCATE ${table}`);
        rows.clear();
      }
      const start = new Set(rows.keys());
      type Final = { kind: 'upsert'; row: Row } | { kind: 'delete' } | { kind: 'partial'; p: PartialUpdate };
      const final = new Map<string, Final>();
      const cols = COLUMNS[table]!.map((c) => c[0]);
      for (let i = 0; i < 12; i++) {
        const ids = [...rows.keys()];
        const roll = this.r();
        if (ids.length < 4 || roll < 0.35) {
          const row = this.insert(table, stmts);
          final.set(row[0]!, { kind: 'upsert', row });
          continue;
        }
        const id = this.pick(ids);
        const old = rows.get(id)!;
        const untouched = !final.has(id);
        if (roll < 0.5) {
          rows.delete(id);
          stmts.push(`DELETE FROM ${table} WHERE id = ${id}`);
          if (start.has(id)) final.set(id, { kind: 'delete' });
          else final.delete(id);
        } else if (table === 'orders' && untouched && roll < 0.7) {
          // An update that leaves the TOASTed note out: a partial update.
          const row = this.newRow(table, Number(id));
          row[4] = old[4]!;
          rows.set(id, row);
          stmts.push(
            `UPDATE orders SET customer_id = ${lit(row[1]!)}, amount = ${lit(row[2]!)}, status = ${lit(row[3]!)} WHERE id = ${id}`,
          );
          const cells: Cell[] = [...row.slice(0, 4), UNCHANGED];
          final.set(id, { kind: 'partial', p: { row: cells, fromKey: null } });
        } else if (table === 'orders' && untouched && roll < 0.8) {
          // A key-changing update with the note unchanged: delete + partial update from the old key.
          const newId = String(this.nextId++);
          const row: Row = [newId, ...old.slice(1)];
          rows.delete(id);
          rows.set(newId, row);
          stmts.push(`UPDATE orders SET id = ${newId} WHERE id = ${id}`);
          final.set(id, { kind: 'delete' });
          final.set(newId, {
            kind: 'partial',
            p: { row: [newId, ...old.slice(1, 4), UNCHANGED], fromKey: [id, null, null, null, null] },
          });
        } else {
          const row = this.newRow(table, Number(id));
          rows.set(id, row);
          stmts.push(
            `UPDATE ${table} SET ${row.map((v, j) => `${cols[j]} = ${lit(v)}`).join(', ')} WHERE id = ${id}`,
          );
          final.set(id, { kind: 'upsert', row });
        }
      }
      const keyRow = (id: string): Row => [id, ...Array<null>(cols.length - 1).fill(null)];
      changes.push({
        table: schemaOf(table),
        truncate,
        deletes: [...final].flatMap(([id, f]) => (f.kind === 'delete' ? [keyRow(id)] : [])),
        upserts: [...final.values()].flatMap((f) => (f.kind === 'upsert' ? [f.row] : [])),
        partialUpdates: [...final.values()].flatMap((f) => (f.kind === 'partial' ? [f.p] : [])),
        rowDeltas: [],
      });
    }
    const truncate = this.r() < 0.06;
    if (truncate) {
      stmts.push('TRUNCATE tags');
      this.tags = [];
    }
    const deltas = new Map<string, { row: Row; count: number }>();
    const add = (row: Row, n: number) => {
      const k = JSON.stringify(row);
      const e = deltas.get(k) ?? { row, count: 0 };
      e.count += n;
      deltas.set(k, e);
    };
    for (let i = 0; i < 8; i++) {
      if (this.tags.length < 4 || this.r() < 0.5) {
        add(this.insertTag(stmts), 1);
        continue;
      }
      const idx = Math.floor(this.r() * this.tags.length);
      const old = this.tags[idx]!;
      const where = `order_id IS NOT DISTINCT FROM ${lit(old[0]!)} AND tag IS NOT DISTINCT FROM ${lit(old[1]!)}`;
      this.tags.splice(idx, 1);
      stmts.push(`DELETE FROM tags WHERE ctid = (SELECT ctid FROM tags WHERE ${where} LIMIT 1)`);
      add(old, -1);
    }
    changes.push({
      table: schemaOf('tags'),
      truncate,
      deletes: [],
      upserts: [],
      partialUpdates: [],
      rowDeltas: [...deltas.values()].filter((d) => d.count !== 0),
    });
    return { stmts, changes };
  }
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('ViewMaintainer equals PostgreSQL after every epoch', () => {
  test.each([[11], [12]])('seed %i: snapshot, 14 epochs, reopen and rollbacks', async (seed) => {
    const db = await freshDatabase('maintainer');
    await db.query(SCHEMA);
    const client = await db.connect();
    const path = mkdtempSync(join(tmpdir(), 'tidemark-maintainer-'));
    dirs.push(path);
    const open = () => ViewMaintainer.open({ views: VIEWS, catalog, store: LmdbStateStore.open({ path }) });
    let vm = await open();
    expect(vm.inputTables.map((t) => t.name)).toEqual(['orders', 'customers', 'tags']);
    expect(vm.viewTables.map((t) => `${t.schema}.${t.name}:${t.keyColumns.join(',')}:${t.keyless}`)).toEqual([
      'public.status_totals:0:false',
      'public.region_revenue:0:false',
      'public.order_notes:0:false',
      'public.tag_orders::true',
      'public.big_orders:0:false',
      'public.tag_counts:0:false',
    ]);
    expect(vm.viewTables.every((t) => t.relationId < 0)).toBe(true);

    const copies = new Map(vm.viewTables.map((t, i) => [VIEWS[i]!.name, new ViewCopy(t)]));
    const check = async (label: string) => {
      for (const v of VIEWS) {
        const res = await client.query({
          text: v.sql,
          rowMode: 'array',
          types: { getTypeParser: () => (x: string) => x },
        });
        const expected = (res.rows as Row[]).map((r) => JSON.stringify(r)).sort();
        expect(copies.get(v.name)!.sorted(), `${v.name} ${label} (seed ${seed})`).toEqual(expected);
      }
    };
    const nameOf = (t: TableSchema) => (t.name === 'tag_counts' ? 'public.tag_counts' : t.name);

    const w = new Workload(rng(seed));
    const init = w.initial();
    await client.query(`BEGIN; ${init.stmts.join(';\n')}; COMMIT`);
    // Chunks of every table interleaved, plus a table no view reads.
    for (let i = 0; i < 40; i += 7) {
      for (const t of ['orders', 'customers', 'tags'])
        await vm.loadSnapshot({ table: schemaOf(t), rows: init.rows[t]!.slice(i, i + 7) });
    }
    await vm.loadSnapshot({ table: { ...schemaOf('tags'), name: 'unread' }, rows: [['1', 'z']] });
    for await (const chunk of vm.finishSnapshot()) copies.get(nameOf(chunk.table))!.snapshot(chunk);
    await vm.commit(0);
    await check('after the snapshot');

    for (let epoch = 1; epoch <= 14; epoch++) {
      const { stmts, changes } = w.epoch();
      await client.query(`BEGIN; ${stmts.join(';\n')}; COMMIT`);
      let out = await vm.step(epoch, changes);
      if (epoch % 5 === 0) {
        // The sink failed: the epoch is stepped again from the same state.
        vm.abort();
        out = await vm.step(epoch, changes);
      }
      await vm.commit(epoch);
      if (epoch % 4 === 3) {
        // Crash after the state commit, before the sink's: reopen, roll back, replay.
        await vm.close();
        vm = await open();
        expect(vm.lastCommittedEpoch()).toBe(epoch);
        await vm.rollbackLastEpoch();
        expect(vm.lastCommittedEpoch()).toBe(epoch - 1);
        out = await vm.step(epoch, changes);
        await vm.commit(epoch);
      }
      for (const tc of out) copies.get(nameOf(tc.table))!.apply(tc);
      await check(`after epoch ${epoch}`);
    }
    await vm.close();
  });
});
