/**
 * Replays a source schema change (`core/schema-change.ts`) on a SQLite sink, inside the epoch's
 * transaction (SQLite's DDL is transactional).
 *
 *   dropped   → ALTER TABLE t DROP COLUMN c            (SQLite ≥ 3.35; not for a key column)
 *   renamed   → ALTER TABLE t RENAME COLUMN a TO b     (values kept)
 *   retyped   → nothing when the column keeps its storage class and text (int → bigint,
 *               varchar(n) → text); numeric → numeric(p,s) rescales every value as PostgreSQL
 *               does (round half away from zero, exact: `NUMERIC_SCALE_FUNCTION`); a change of
 *               storage class is refused: the table needs a new snapshot
 *   added     → ALTER TABLE t ADD COLUMN c T DEFAULT 'v' (existing rows read the source's value)
 *   table     → ALTER TABLE t RENAME TO u
 *   key, nullability and enum labels: SQLite keeps no enum types, and its key cannot change
 *   without rebuilding the table: a key change is refused the same way.
 */
import type { SchemaChange } from '../../core/schema-change.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { Numeric } from '../../decode/numeric.ts';
import { numericPrecision, pgTypeKind } from '../shared/pg-type-kind.ts';
import { cellConverters, sqliteAffinity } from './sqlite-types.ts';
import { sqliteIdent, sqliteTableName } from './sqlite-table-writer.ts';

/**
 * The SQL function the sink registers on its database: a numeric's text rescaled as PostgreSQL's
 * `numeric(p,s)` input does, exactly (decode/numeric.ts).
 */
export const NUMERIC_SCALE_FUNCTION = 'tidemark_numeric_scale';

export function numericScale(value: unknown, scale: unknown): string | null {
  if (value === null || value === undefined) return null;
  return Numeric.parse(String(value)).round(Number(scale)).toString();
}

/** The statements for a `table-altered` change (run in order, in the open transaction). */
export function sqliteAlterStatements(change: Extract<SchemaChange, { kind: 'table-altered' }>): string[] {
  const { before, after } = change;
  const out: string[] = [];
  const oldName = sqliteTableName(before);
  const newName = sqliteTableName(after);
  const refuse = (what: string) =>
    new TidemarkError('SINK_SCHEMA_UNSUPPORTED', {
      detail: `sqlite table ${oldName}: ${what}${change.ddl ? ` (${change.ddl.trim().slice(0, 200)})` : ''}`,
      hint: 'SQLite cannot replay this change in place: reset the changefeed so the table is copied again.',
    });
  const keyOf = (t: TableSchema) => (t.keyless ? [] : t.keyColumns.map((i) => t.columns[i]?.name ?? ''));
  const renamedTo = new Map(
    change.columns.flatMap((c) => (c.op === 'renamed' ? [[c.from, c.to] as const] : [])),
  );
  const oldKey = keyOf(before).map((n) => renamedTo.get(n) ?? n);
  if (oldKey.join('\0') !== keyOf(after).join('\0')) throw refuse('its key changed');
  if (oldName !== newName) out.push(`ALTER TABLE ${sqliteIdent(oldName)} RENAME TO ${sqliteIdent(newName)}`);
  const at = sqliteIdent(newName);
  for (const c of change.columns) {
    switch (c.op) {
      case 'dropped':
        out.push(`ALTER TABLE ${at} DROP COLUMN ${sqliteIdent(c.column)}`);
        break;
      case 'renamed':
        out.push(`ALTER TABLE ${at} RENAME COLUMN ${sqliteIdent(c.from)} TO ${sqliteIdent(c.to)}`);
        break;
      case 'retyped': {
        const was = before.columns.find((x) => x.name === (renamedFromOf(change, c.column) ?? c.column));
        const now = after.columns.find((x) => x.name === c.column);
        if (!was || !now) throw refuse(`column ${c.column} changed type`);
        const a = pgTypeKind(was, before);
        const b = pgTypeKind(now, after);
        if (sqliteAffinity(a) !== sqliteAffinity(b)) {
          throw refuse(`column ${c.column} changed type ${c.fromType} → ${c.toType}`);
        }
        const scale = b === 'numeric' ? (numericPrecision(now)?.scale ?? null) : null;
        if (a === 'numeric' && scale !== null && numericPrecision(was)?.scale !== scale) {
          const col = sqliteIdent(c.column);
          out.push(
            `UPDATE ${at} SET ${col} = ${NUMERIC_SCALE_FUNCTION}(${col}, ${scale}) WHERE ${col} IS NOT NULL`,
          );
        }
        break;
      }
      case 'added': {
        const col = after.columns.find((x) => x.name === c.column);
        const type = col ? sqliteAffinity(pgTypeKind(col, after)) : 'TEXT';
        let fill = '';
        if (c.fill.kind === 'value' && col) {
          const i = after.columns.indexOf(col);
          const v = cellConverters(after)[i]!(c.fill.text);
          fill = ` DEFAULT ${sqlLiteral(v)}`;
        }
        out.push(`ALTER TABLE ${at} ADD COLUMN ${sqliteIdent(c.column)} ${type}${fill}`);
        break;
      }
    }
  }
  return out;
}

function renamedFromOf(
  change: Extract<SchemaChange, { kind: 'table-altered' }>,
  name: string,
): string | null {
  const r = change.columns.find((c) => c.op === 'renamed' && c.to === name);
  return r && r.op === 'renamed' ? r.from : null;
}

function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (Buffer.isBuffer(v)) return `X'${v.toString('hex')}'`;
  return `'${String(v).replaceAll("'", "''")}'`;
}
