/**
 * Oracle test for incremental views: each view is planned from SQL, built into a dataflow graph
 * and fed the same random inserts/updates/deletes that are applied to a real PostgreSQL; after
 * every batch the accumulated graph output must equal PostgreSQL's own result of the SQL, compared
 * as multisets of text rows. Seeds are fixed.
 */
import { describe, expect, test } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { planView } from '../../src/sql/planner.ts';
import { buildViewGraph } from '../../src/sql/build-graph.ts';
import { GraphBuilder } from '../../src/dataflow/graph.ts';
import { MemoryStateStore } from '../../src/dataflow/memory-state-store.ts';
import type { Change } from '../../src/dataflow/change.ts';
import { decodeCell, encodeText } from '../../src/decode/pg-values.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { typeFromName, typeOid } from '../../src/sql/sql-type.ts';
import { VIEWS } from './views-oracle-cases.ts';
import { mulberry32 as rng } from '../../src/cli/demo/workload.ts';

type TextRow = (string | null)[];

const SCHEMA = `
  CREATE TABLE customers (id int PRIMARY KEY, region text, name text NOT NULL, vip boolean, code character(4));
  CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(12,2), status text NOT NULL,
                       qty smallint, big bigint, ts timestamp, d date, tz timestamptz, dur interval);
  CREATE TABLE tags (order_id int, tag text);`;

const COLUMNS: Record<string, [string, string, boolean][]> = {
  customers: [
    ['id', 'integer', true],
    ['region', 'text', false],
    ['name', 'text', false],
    ['vip', 'boolean', false],
    ['code', 'character(4)', false],
  ],
  orders: [
    ['id', 'integer', true],
    ['customer_id', 'integer', false],
    ['amount', 'numeric(12,2)', false],
    ['status', 'text', false],
    ['qty', 'smallint', false],
    ['big', 'bigint', false],
    ['ts', 'timestamp without time zone', false],
    ['d', 'date', false],
    ['tz', 'timestamp with time zone', false],
    ['dur', 'interval', false],
  ],
  tags: [
    ['order_id', 'integer', false],
    ['tag', 'text', false],
  ],
};

function tableSchemas(): TableSchema[] {
  return Object.entries(COLUMNS).map(([name, cols], i) => {
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
      relationId: 1000 + i,
      columns,
      keyColumns,
      keyless: keyColumns.length === 0,
      enums: [],
    };
  });
}

function randomRow(table: string, id: number, r: () => number): TextRow {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const maybe = (v: string) => (r() < 0.15 ? null : v);
  if (table === 'customers')
    return [
      String(id),
      maybe(pick(['north', 'south', 'east', 'West'])),
      pick(['ann', 'Bob', 'cy', 'dee', 'ann ']),
      maybe(pick(['t', 'f'])),
      maybe(pick(['ab  ', 'abc ', 'x   ', 'B   '])),
    ];
  if (table === 'orders') {
    const cents = Math.floor(r() * 200000) - 20000;
    const amount = `${cents < 0 ? '-' : ''}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, '0')}`;
    const day = 1 + Math.floor(r() * 28);
    return [
      String(id),
      maybe(String(1 + Math.floor(r() * 12))),
      maybe(amount),
      pick(['new', 'paid', 'cancelled', 'shipped']),
      maybe(String(Math.floor(r() * 20))),
      maybe(String(BigInt(Math.floor(r() * 1e9)) * 10000000n)),
      maybe(
        `2024-0${1 + Math.floor(r() * 3)}-${String(day).padStart(2, '0')} ${String(Math.floor(r() * 24)).padStart(2, '0')}:30:00`,
      ),
      maybe(
        r() < 0.06
          ? pick(['infinity', '-infinity'])
          : `2023-${String(1 + Math.floor(r() * 12)).padStart(2, '0')}-${String(day).padStart(2, '0')}`,
      ),
      maybe(
        `2024-01-${String(day).padStart(2, '0')} ${String(Math.floor(r() * 24)).padStart(2, '0')}:${String(Math.floor(r() * 60)).padStart(2, '0')}:07.25+00`,
      ),
      maybe(
        pick([
          '1 day',
          '02:00:00',
          '1 mon 3 days',
          '-00:30:00',
          '1 year 2 mons 3 days 04:05:06.5',
          '45 days',
        ]),
      ),
    ];
  }
  return [maybe(String(1 + Math.floor(r() * 40))), pick(['a', 'b', 'c'])];
}

const lit = (v: string | null) => (v === null ? 'NULL' : `'${v.replaceAll("'", "''")}'`);

interface TableState {
  rows: TextRow[];
  nextId: number;
}

async function runCase(
  db: TestDatabase,
  schemas: TableSchema[],
  name: string,
  sql: string,
  seed: number,
): Promise<void> {
  const plan = await planView({
    name,
    sql,
    catalog: (s, t) => schemas.find((x) => x.name === t && (s === null || s === x.schema)),
  });
  const builder = new GraphBuilder();
  buildViewGraph(plan, builder);
  const graph = builder.build(new MemoryStateStore());
  const state: Record<string, TableState> = {
    customers: { rows: [], nextId: 1 },
    orders: { rows: [], nextId: 1 },
    tags: { rows: [], nextId: 1 },
  };
  const r = rng(seed);
  const out = new Map<string, number>();
  const client = await db.connect();
  await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'`);
  for (let batch = 0; batch < 8; batch++) {
    const changes = new Map<string, Change[]>();
    const stmts: string[] = [];
    for (let i = 0; i < 25; i++) {
      const table = (['customers', 'orders', 'orders', 'tags'] as const)[Math.floor(r() * 4)]!;
      const st = state[table]!;
      const schema = schemas.find((s) => s.name === table)!;
      const values = (row: TextRow) =>
        row.map((v, j) => decodeCell(v, schema.columns[j]!.typeOid, schema.columns[j]!.typeName));
      const list = changes.get(`public.${table}`) ?? [];
      changes.set(`public.${table}`, list);
      const op = st.rows.length < 5 || r() < 0.5 ? 'insert' : r() < 0.6 ? 'update' : 'delete';
      const cols = COLUMNS[table]!.map((c) => c[0]);
      if (op === 'insert') {
        const row = randomRow(table, st.nextId++, r);
        st.rows.push(row);
        stmts.push(`INSERT INTO ${table} VALUES (${row.map(lit).join(', ')})`);
        list.push({ row: values(row), weight: 1 });
        continue;
      }
      const idx = Math.floor(r() * st.rows.length);
      const old = st.rows[idx]!;
      const where = old.map((v, j) => `${cols[j]} IS NOT DISTINCT FROM ${lit(v)}`).join(' AND ');
      const target =
        table === 'tags' ? `ctid = (SELECT ctid FROM tags WHERE ${where} LIMIT 1)` : `id = ${old[0]}`;
      list.push({ row: values(old), weight: -1 });
      if (op === 'delete') {
        st.rows.splice(idx, 1);
        stmts.push(`DELETE FROM ${table} WHERE ${target}`);
      } else {
        const row = randomRow(table, table === 'tags' ? 0 : Number(old[0]), r);
        if (table !== 'tags') row[0] = old[0]!;
        st.rows[idx] = row;
        stmts.push(
          `UPDATE ${table} SET ${row.map((v, j) => `${cols[j]} = ${lit(v)}`).join(', ')} WHERE ${target}`,
        );
        list.push({ row: values(row), weight: 1 });
      }
    }
    await client.query(`BEGIN; ${stmts.join(';\n')}; COMMIT`);
    const used = new Set(plan.inputs.map((t) => `${t.schema}.${t.name}`));
    const delta = graph.step(new Map([...changes].filter(([k]) => used.has(k)))).get(name) ?? [];
    await graph.commit();
    for (const c of delta) {
      const key = JSON.stringify(c.row.map((v, j) => encodeText(v, plan.outputColumns[j]!.typeOid)));
      const n = (out.get(key) ?? 0) + c.weight;
      if (n === 0) out.delete(key);
      else out.set(key, n);
    }
    const res = await client.query({
      text: sql,
      rowMode: 'array',
      types: { getTypeParser: () => (v: string) => v },
    });
    const expected = new Map<string, number>();
    for (const row of res.rows as TextRow[]) {
      const key = JSON.stringify(row);
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const sort = (m: Map<string, number>) =>
      [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    expect(sort(out), `view ${name} after batch ${batch} (seed ${seed})`).toEqual(sort(expected));
  }
}

describe('views equal PostgreSQL after every batch', () => {
  const schemas = tableSchemas();
  test.each(VIEWS.map((v, i) => [v.name, v.sql, 1000 + i] as const))('%s', async (name, sql, seed) => {
    const db = await freshDatabase('views');
    await db.query(SCHEMA);
    await runCase(db, schemas, name, sql, seed);
  });
});
