/**
 * Table shapes from `information_schema`, as the source defines them now: which tables a
 * selection names (`shop.orders`, `shop.*`; a bare `orders` is in the URI's database), their
 * columns typed through `column-types.ts` (the same mapping the binlog's table maps go through),
 * and their primary key.
 */
import type { Connection } from 'mysql2/promise';
import { isTablePattern, matchTable, splitTablePattern } from '../../core/selection.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { columnSchema, parseColumnType, type MysqlType } from './column-types.ts';
import { makeShape, type Shape } from './table-shapes.ts';

const SYSTEM_SCHEMAS = `('mysql', 'information_schema', 'performance_schema', 'sys')`;

interface TableRow {
  schema: string;
  name: string;
}

export async function listTables(conn: Connection): Promise<TableRow[]> {
  const [rows] = await conn.query(
    `SELECT TABLE_SCHEMA AS \`schema\`, TABLE_NAME AS name FROM information_schema.TABLES
      WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ${SYSTEM_SCHEMAS}
      ORDER BY TABLE_SCHEMA, TABLE_NAME`,
  );
  return rows as TableRow[];
}

/**
 * Resolves a selection to tables in a stable order, and the keys (`schema\0name`) of those named
 * exactly; missing exact names and empty matches fail.
 */
export function resolveSelection(
  all: readonly TableRow[],
  selection: readonly string[],
  database: string | null,
): { tables: TableRow[]; named: Set<string> } {
  const chosen = new Map<string, TableRow>();
  const named = new Set<string>();
  for (const entry of selection) {
    const local = localize(entry, database);
    if (!isTablePattern(local)) {
      const sel = splitTablePattern(local);
      const hit = all.find((r) => r.schema === sel.schema && r.name === sel.name);
      if (!hit) {
        throw new TidemarkError('SOURCE_TABLE_NOT_FOUND', {
          detail: `table ${sel.schema}.${sel.name} (from tables: "${entry}") does not exist in the source`,
        });
      }
      chosen.set(`${hit.schema}\0${hit.name}`, hit);
      named.add(`${hit.schema}\0${hit.name}`);
    } else {
      for (const r of all) if (matchTable(local, r.schema, r.name)) chosen.set(`${r.schema}\0${r.name}`, r);
    }
  }
  if (chosen.size === 0) {
    throw new TidemarkError('SOURCE_NO_TABLES', {
      detail: `tables: [${selection.join(', ')}] matches no table`,
    });
  }
  const tables = [...chosen.values()].sort((a, b) =>
    a.schema < b.schema ? -1 : a.schema > b.schema ? 1 : a.name < b.name ? -1 : 1,
  );
  return { tables, named };
}

/** A bare `orders` names the URI's database (`public` means nothing to MySQL). */
function localize(entry: string, database: string | null): string {
  const split = splitTablePattern(entry);
  if (split.schema === 'public' && !/^"?public"?\./.test(entry) && database !== null) {
    return `"${database.replaceAll('"', '""')}".${entry}`;
  }
  return entry;
}

interface ColumnRow {
  schema: string;
  table: string;
  name: string;
  columnType: string;
  charset: string | null;
  nullable: string;
}

/** Describes tables with the catalog's current definitions; ids from `idOf`. */
export async function describeShapes(
  conn: Connection,
  tables: readonly TableRow[],
  idOf: (schema: string, name: string) => number,
): Promise<Shape[]> {
  if (tables.length === 0) return [];
  const keys = tables.map((t) => [t.schema, t.name]);
  const [colRows] = await conn.query(
    `SELECT TABLE_SCHEMA AS \`schema\`, TABLE_NAME AS \`table\`, COLUMN_NAME AS name, COLUMN_TYPE AS columnType,
            CHARACTER_SET_NAME AS charset, IS_NULLABLE AS nullable
       FROM information_schema.COLUMNS WHERE (TABLE_SCHEMA, TABLE_NAME) IN (?)
      ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    [keys],
  );
  const [keyRows] = await conn.query(
    `SELECT TABLE_SCHEMA AS \`schema\`, TABLE_NAME AS \`table\`, COLUMN_NAME AS name FROM information_schema.STATISTICS
      WHERE INDEX_NAME = 'PRIMARY' AND (TABLE_SCHEMA, TABLE_NAME) IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX`,
    [keys],
  );
  const columnsOf = new Map<string, ColumnRow[]>();
  for (const r of colRows as ColumnRow[]) {
    const k = `${r.schema}\0${r.table}`;
    columnsOf.set(k, [...(columnsOf.get(k) ?? []), r]);
  }
  const keysOf = new Map<string, string[]>();
  for (const r of keyRows as { schema: string; table: string; name: string }[]) {
    const k = `${r.schema}\0${r.table}`;
    keysOf.set(k, [...(keysOf.get(k) ?? []), r.name]);
  }
  return tables.map((t) => {
    const k = `${t.schema}\0${t.name}`;
    const columns = (columnsOf.get(k) ?? []).map((c) => {
      const type: MysqlType = parseColumnType(c.columnType, c.charset, `${t.schema}.${t.name}.${c.name}`);
      return { column: columnSchema(c.name, type, { isKey: false, nullable: c.nullable === 'YES' }), type };
    });
    return makeShape(
      { schema: t.schema, name: t.name, relationId: idOf(t.schema, t.name) },
      columns,
      keysOf.get(k) ?? [],
    );
  });
}

export type { TableSchema };
