/**
 * Replays a source schema change (`core/schema-change.ts`) on MySQL / MariaDB / TiDB. MySQL's DDL
 * commits implicitly, so it cannot sit inside the epoch's transaction; the sink (mysql-sink.ts)
 * records the change as *pending* in its checkpoint row before running the DDL and clears it in
 * the epoch's commit. This file plans the DDL — every statement checked against
 * information_schema first, so running a plan again after a crash part-way does only what is
 * left — and maps rows of a table's shape before a pending change onto the table as it is now.
 *
 *   added     → ADD COLUMN c T [DEFAULT v]   (the source's fill stays the column's default: rows
 *               of the old shape written again after a crash get it, as they did in the source)
 *   dropped   → DROP COLUMN c
 *   renamed   → RENAME COLUMN a TO b          (MySQL 8.0, MariaDB 10.5.2, TiDB)
 *   retyped   → MODIFY COLUMN c T            where MySQL converts the values as PostgreSQL did
 *               (integers and decimals, floats, text and varchar); else SINK_SCHEMA_UNSUPPORTED
 *   table     → RENAME TABLE a TO b; CREATE TABLE IF NOT EXISTS; DROP TABLE IF EXISTS
 *   key       → SINK_SCHEMA_UNSUPPORTED (the table needs a new snapshot)
 *   enum labels, nullability of non-key columns: nothing (enums are VARCHAR; such columns are NULL)
 */
import mysql, { type Connection } from 'mysql2/promise';
import type { Row } from '../../core/row.ts';
import type { TableChanges } from '../../core/epoch.ts';
import { schemaChangeTableId, type ColumnChange, type SchemaChange } from '../../core/schema-change.ts';
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { pgTypeKind, type PgTypeKind } from '../shared/pg-type-kind.ts';
import { mysqlIdent, mysqlTableName } from './mysql-table-writer.ts';
import { mysqlColumnType } from './mysql-types.ts';

type Altered = Extract<SchemaChange, { kind: 'table-altered' }>;

/** Type families within which `MODIFY COLUMN` converts every value as PostgreSQL's cast did. */
const FAMILY: Partial<Record<PgTypeKind, string>> = {
  int2: 'integer',
  int4: 'integer',
  int8: 'integer',
  numeric: 'decimal',
  float4: 'float',
  float8: 'float',
  text: 'text',
  varchar: 'text',
  enum: 'text',
};

/**
 * The statements that give the MySQL database the shape `change` leads to, from what
 * information_schema shows on `conn` now: empty when it is there already. Throws
 * SINK_SCHEMA_UNSUPPORTED for a change MySQL cannot replay in place. `createSql` makes a table.
 */
export async function mysqlSchemaDdl(
  conn: Connection,
  database: string,
  change: SchemaChange,
  createSql: (t: TableSchema) => string,
): Promise<string[]> {
  switch (change.kind) {
    case 'table-created':
      return (await columnsOf(conn, database, mysqlTableName(change.table))).size === 0
        ? [createSql(change.table)]
        : [];
    case 'table-dropped':
      return (await columnsOf(conn, database, mysqlTableName(change.table))).size === 0
        ? []
        : [`DROP TABLE IF EXISTS ${mysqlIdent(mysqlTableName(change.table))}`];
    case 'table-altered':
      return alteredDdl(conn, database, change);
  }
}

async function alteredDdl(conn: Connection, database: string, change: Altered): Promise<string[]> {
  const { before, after } = change;
  const refuse = (what: string) =>
    new TidemarkError('SINK_SCHEMA_UNSUPPORTED', {
      detail: `MySQL table ${mysqlTableName(before)}: ${what}${change.ddl ? ` (${change.ddl.trim().slice(0, 200)})` : ''}`,
      hint: 'MySQL cannot replay this change in place: reset the changefeed so the table is copied again.',
    });
  const renamedTo = new Map(
    change.columns.flatMap((c) => (c.op === 'renamed' ? [[c.from, c.to] as const] : [])),
  );
  const oldKey = keyNames(before).map((n) => renamedTo.get(n) ?? n);
  if (oldKey.join('\0') !== keyNames(after).join('\0')) throw refuse('its key changed');
  const out: string[] = [];
  const oldName = mysqlTableName(before);
  const newName = mysqlTableName(after);
  let cols = await columnsOf(conn, database, newName);
  if (oldName !== newName) {
    const old = await columnsOf(conn, database, oldName);
    if (old.size > 0 && cols.size > 0) {
      throw new TidemarkError('SINK_SCHEMA_MISMATCH', {
        detail: `MySQL tables ${oldName} and ${newName} both exist: ${oldName} cannot be renamed to ${newName}`,
      });
    }
    if (old.size > 0) {
      out.push(`RENAME TABLE ${mysqlIdent(oldName)} TO ${mysqlIdent(newName)}`);
      cols = old;
    }
  }
  if (cols.size === 0) throw refuse(`the table does not exist in the sink`);
  const at = mysqlIdent(newName);
  const have = new Map(cols);
  for (const c of change.columns) {
    const ddl = columnDdl(at, c, change, have, refuse);
    if (ddl) out.push(ddl);
  }
  return out;
}

/** One column change, unless `have` (the columns as they stand, updated here) shows it done. */
function columnDdl(
  at: string,
  c: ColumnChange,
  change: Altered,
  have: Map<string, string>,
  refuse: (what: string) => TidemarkError,
): string | null {
  const { before, after } = change;
  switch (c.op) {
    case 'added': {
      if (have.has(c.column)) return null;
      const col = after.columns.find((x) => x.name === c.column);
      if (!col) return null; // added and dropped again by a later change in the list
      const type = mysqlColumnType(col, after);
      have.set(c.column, type.ddl.toLowerCase());
      let fill = '';
      if (c.fill.kind === 'value') {
        const literal = mysql.escape(type.convert(c.fill.text));
        // Text, blob and JSON columns take a default only as an expression (MySQL 8.0.13+, MariaDB 10.2+).
        fill = /TEXT|BLOB|JSON/.test(type.ddl) ? ` DEFAULT (${literal})` : ` DEFAULT ${literal}`;
      }
      return `ALTER TABLE ${at} ADD COLUMN ${mysqlIdent(c.column)} ${type.ddl}${fill}`;
    }
    case 'dropped':
      if (!have.delete(c.column)) return null;
      return `ALTER TABLE ${at} DROP COLUMN ${mysqlIdent(c.column)}`;
    case 'renamed': {
      const type = have.get(c.from);
      if (type === undefined || have.has(c.to)) return null;
      have.delete(c.from);
      have.set(c.to, type);
      return `ALTER TABLE ${at} RENAME COLUMN ${mysqlIdent(c.from)} TO ${mysqlIdent(c.to)}`;
    }
    case 'retyped': {
      const now = after.columns.find((x) => x.name === c.column);
      const was = before.columns.find((x) => x.name === (renamedFrom(change, c.column) ?? c.column));
      if (!now || !was || !have.has(c.column)) return null;
      const type = mysqlColumnType(now, after);
      if (have.get(c.column) === type.ddl.toLowerCase()) return null;
      const from = FAMILY[pgTypeKind(was, before)];
      if (from === undefined || from !== FAMILY[pgTypeKind(now, after)]) {
        throw refuse(`column ${c.column} changed type ${c.fromType} → ${c.toType}`);
      }
      have.set(c.column, type.ddl.toLowerCase());
      const notNull = now.isKey && !now.nullable ? ' NOT NULL' : '';
      return `ALTER TABLE ${at} MODIFY COLUMN ${mysqlIdent(c.column)} ${type.ddl}${notNull}`;
    }
  }
}

/** Column name → COLUMN_TYPE (lower case) of a table; empty when it does not exist. */
async function columnsOf(conn: Connection, database: string, table: string): Promise<Map<string, string>> {
  const [rows] = await conn.query(
    `SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  return new Map(
    (rows as { name: string; type: string }[]).map((r) => [r.name, String(r.type).toLowerCase()]),
  );
}

function keyNames(t: TableSchema): string[] {
  return t.keyless ? [] : t.keyColumns.map((i) => t.columns[i]?.name ?? '');
}

function renamedFrom(change: Altered, name: string): string | null {
  const r = change.columns.find((c) => c.op === 'renamed' && c.to === name);
  return r && r.op === 'renamed' ? r.from : null;
}

function sameShape(a: TableSchema, b: TableSchema): boolean {
  const sig = (t: TableSchema) =>
    JSON.stringify([t.schema, t.name, t.columns.map((c) => [c.name, c.typeName]), t.keyColumns]);
  return sig(a) === sig(b);
}

/**
 * Changes of a table whose shape is the `before` of a pending schema change (rows the runtime
 * sends again after a crash between the DDL and the epoch's commit), mapped onto the table as the
 * pending changes left it: the table's new name, renamed columns under their new names, dropped
 * columns left out, added ones not written (their default holds the source's fill). Null when
 * the table was dropped; `tc` itself when no pending change concerns it.
 */
export function throughPending(tc: TableChanges, pending: readonly SchemaChange[]): TableChanges | null {
  const id = tc.table.relationId;
  const start = pending.findIndex(
    (p) =>
      schemaChangeTableId(p) === id &&
      ((p.kind === 'table-altered' && sameShape(p.before, tc.table)) ||
        (p.kind === 'table-dropped' && sameShape(p.table, tc.table))),
  );
  if (start < 0) return tc;
  /** For each column of the rows: its name now, or null when dropped. */
  let names: (string | null)[] = tc.table.columns.map((c) => c.name);
  let last: TableSchema = tc.table;
  for (const p of pending.slice(start)) {
    if (schemaChangeTableId(p) !== id) continue;
    if (p.kind === 'table-dropped') return null;
    if (p.kind !== 'table-altered') continue;
    for (const c of p.columns) {
      if (c.op === 'dropped') names = names.map((n) => (n === c.column ? null : n));
      else if (c.op === 'renamed') names = names.map((n) => (n === c.from ? c.to : n));
    }
    last = p.after;
  }
  const kept = names.flatMap((n, i) => (n === null ? [] : [i]));
  const columns: ColumnSchema[] = kept.map((i) => {
    const name = names[i]!;
    return last.columns.find((c) => c.name === name) ?? { ...tc.table.columns[i]!, name };
  });
  const keyColumns = tc.table.keyColumns.map((k) => kept.indexOf(k)).filter((k) => k >= 0);
  const table: TableSchema = { ...last, columns, keyColumns };
  const pick = <T>(row: readonly T[]): T[] => kept.map((i) => row[i]!);
  return {
    table,
    truncate: tc.truncate,
    deletes: tc.deletes.map((r) => pick(r) as Row),
    upserts: tc.upserts.map((r) => pick(r) as Row),
    partialUpdates: tc.partialUpdates.map((pu) => ({
      row: pick(pu.row),
      fromKey: pu.fromKey === null ? null : (pick(pu.fromKey) as Row),
    })),
    rowDeltas: tc.rowDeltas.map((d) => ({ row: pick(d.row) as Row, count: d.count })),
  };
}

/**
 * True when two schema changes are the same barrier (the pending one met again on replay),
 * whatever order their fields came in (one of them went through JSON in the checkpoint row).
 */
export function sameChange(a: SchemaChange, b: SchemaChange): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
