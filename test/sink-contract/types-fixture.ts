/**
 * The type round-trip input of the sink contract: the shared all-types table
 * (`test/support/all-types.ts`, `ALL_TYPES`) created in a real PostgreSQL, described by the
 * source's own catalog code and read in the source session's text forms — exactly what a sink
 * receives from a changefeed. Plus a comparison that tolerates only each store's documented
 * re-formatting (trailing zeros of numerics and fractions, JSON whitespace, char padding).
 */
import pg from 'pg';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { describeSelection } from '../../src/source/postgres/catalog.ts';
import { sessionOptions } from '../../src/source/postgres/session-settings.ts';
import { pgTypeKind } from '../../src/sink/shared/pg-type-kind.ts';
import { pgArrayToJson } from '../../src/sink/shared/pg-array-json.ts';
import { allTypesInsertSql, allTypesSetupSql } from '../support/all-types.ts';
import { freshDatabase } from '../support/db.ts';

export interface AllTypes {
  readonly table: TableSchema;
  readonly rows: Row[];
}

/** Creates and fills `public.all_types` in a fresh source database; returns schema and text rows. */
export async function loadAllTypes(): Promise<AllTypes> {
  const db = await freshDatabase('all_types');
  for (const sql of [...allTypesSetupSql(), ...allTypesInsertSql()]) await db.query(sql);
  const c = new pg.Client({
    connectionString: db.url,
    options: sessionOptions(),
  });
  await c.connect();
  try {
    const [table] = (await describeSelection(c, ['public.all_types'])).tables;
    const r = await c.query({
      text: 'SELECT * FROM public.all_types ORDER BY id',
      rowMode: 'array',
      types: { getTypeParser: () => (v: string) => v },
    });
    return { table: table!, rows: r.rows as Row[] };
  } finally {
    await c.end();
  }
}

/** The table restricted to `id` and the columns named (rows cut to match). */
export function project(all: AllTypes, name: string, columns: readonly string[]): AllTypes {
  const keep = all.table.columns.flatMap((c, i) => (c.name === 'id' || columns.includes(c.name) ? [i] : []));
  const cols = keep.map((i) => all.table.columns[i]!);
  return {
    table: {
      ...all.table,
      name,
      columns: cols,
      keyColumns: cols.flatMap((c, i) => (c.isKey ? [i] : [])),
    },
    rows: all.rows.map((r) => keep.map((i) => r[i] ?? null)),
  };
}

/** A comparable form of a cell: equal for values the column's store mapping must keep equal. */
export function normalizeCell(t: TableSchema, colIndex: number, cell: string | null): unknown {
  if (cell === null) return null;
  const column = t.columns[colIndex]!;
  switch (pgTypeKind(column, t)) {
    case 'float4':
    case 'float8':
      return Number(cell);
    case 'numeric':
      return cell.includes('.') ? cell.replace(/0+$/, '').replace(/\.$/, '') : cell;
    case 'bpchar':
      return cell.trimEnd();
    case 'json':
      return JSON.stringify(JSON.parse(cell));
    case 'array':
      return pgArrayToJson(cell, 'text');
    case 'timestamp':
    case 'time':
      return cell.includes('.') ? cell.replace(/0+$/, '').replace(/\.$/, '') : cell;
    case 'timestamptz':
      return cell.replace(/(\.\d*?)0+(?=[+-]\d\d)/, '$1').replace(/\.(?=[+-]\d\d)/, '');
    default:
      return cell;
  }
}

/** Rows as comparable cells, sorted by `id`; `exact` compares the text forms unchanged. */
export function normalizeRows(t: TableSchema, rows: Row[], options: { exact: boolean }): unknown[][] {
  return rows
    .map((r) => (options.exact ? [...r] : r.map((c, i) => normalizeCell(t, i, c))))
    .sort((a, b) => Number(a[0]) - Number(b[0]));
}
