/**
 * What a view state needs at a schema barrier that touches a view's input (issue 11: "views are
 * re-planned at that point"), beside the decision itself (schema-reconcile.ts):
 *
 *   - `refusal`: the VIEW_SCHEMA_CHANGED error when a view no longer binds (a column it reads
 *     dropped or renamed, its table dropped or renamed, its rows not derivable), naming the view,
 *     the column and the fix;
 *   - `rowConverter`: the stored rows of an input in its new layout when the state is rebuilt
 *     at the barrier — renamed columns follow, added columns take their fill, retyped columns
 *     are cast as the source's reproducible cast does (`ColumnChange.reproducible`).
 */
import type { Row as TextRow } from '../core/row.ts';
import type { ColumnChange, SchemaChange } from '../core/schema-change.ts';
import type { ColumnSchema, TableSchema } from '../core/table-schema.ts';
import { decodeCell, encodeText, typeHintFor } from '../decode/pg-values.ts';
import type { Value } from '../decode/value.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { castFn } from '../sql/casts.ts';
import { typeFromName } from '../sql/sql-type.ts';

/** Values existing rows have for columns added without a rewrite (text form; null: NULL). */
export type Fills = ReadonlyMap<string, string | null>;

/**
 * VIEW_SCHEMA_CHANGED for `view`, which reads `stored` (its columns `reads`) and can no longer
 * be maintained after `change` at `where`.
 */
export function refusal(
  view: string,
  stored: TableSchema,
  reads: ReadonlySet<string>,
  change: SchemaChange,
  where: string,
  cause?: unknown,
): TidemarkError {
  const table = `${stored.schema}.${stored.name}`;
  const ddl = change.ddl ? ` (${change.ddl.trim().slice(0, 200)})` : '';
  let what: string;
  let fix: string;
  if (change.kind === 'table-dropped') {
    what = `table ${table} was dropped`;
    fix = `define view "${view}" without ${table}`;
  } else if (change.kind === 'table-altered' && change.recopy !== null) {
    what = `${table} needs a new copy (${change.recopy}): its rows cannot be derived from the change`;
    fix = `restart the changefeed once the change is done: view "${view}" is rebuilt from a new snapshot`;
  } else if (
    change.kind === 'table-altered' &&
    (change.before.schema !== change.after.schema || change.before.name !== change.after.name)
  ) {
    what = `table ${table} was renamed to ${change.after.schema}.${change.after.name}`;
    fix = `name ${change.after.schema}.${change.after.name} in view "${view}"`;
  } else {
    const columns = change.kind === 'table-altered' ? change.columns : [];
    const lost = columns.flatMap((c) => lostColumn(c, reads));
    what =
      lost.length > 0
        ? `${table}: ${lost.join(', ')}`
        : `${table} changed: ${(cause as { detail?: string } | undefined)?.detail ?? String(cause)}`;
    const names = columns.flatMap((c) =>
      c.op === 'dropped' && reads.has(c.column)
        ? [`without column ${c.column}`]
        : c.op === 'renamed' && reads.has(c.from)
          ? [`with ${c.to} for ${c.from}`]
          : [],
    );
    fix = `write view "${view}" ${names.length > 0 ? names.join(' and ') : 'for the new schema'}`;
  }
  return new TidemarkError('VIEW_SCHEMA_CHANGED', {
    detail: `view "${view}" no longer binds: ${what} ${where}${ddl}. Fix: ${fix} in the configuration and restart (the view is rebuilt from a new snapshot), or revert the change`,
    ...(cause === undefined ? {} : { cause }),
  });
}

function lostColumn(c: ColumnChange, reads: ReadonlySet<string>): string[] {
  if (c.op === 'dropped' && reads.has(c.column)) return [`column ${c.column} was dropped`];
  if (c.op === 'renamed' && reads.has(c.from)) return [`column ${c.from} was renamed to ${c.to}`];
  return [];
}

/**
 * Rows stored in layout `from` as rows of layout `to`. `changes` are the column changes of the
 * barrier (empty for an input that only took migrated changes earlier): a column of `to` is
 * traced back through them to its name in `from`; one added here takes its fill; one `from`
 * lacks (added by an earlier, migrated barrier) takes `fills` (else NULL); one whose type
 * differs is cast.
 */
export function rowConverter(
  from: TableSchema,
  to: TableSchema,
  changes: readonly ColumnChange[],
  fills: Fills,
): (row: TextRow) => TextRow {
  const sources = to.columns.map((col): ((row: TextRow) => string | null) => {
    let name = col.name;
    for (let k = changes.length - 1; k >= 0; k--) {
      const c = changes[k]!;
      if (c.op === 'renamed' && c.to === name) name = c.from;
      else if (c.op === 'added' && c.column === name) {
        const fill = c.fill.kind === 'value' ? c.fill.text : null;
        return () => fill;
      }
    }
    const j = from.columns.findIndex((c) => c.name === name);
    if (j < 0) {
      const fill = fills.get(col.name) ?? null;
      return () => fill;
    }
    const old = from.columns[j]!;
    if (old.typeName === col.typeName && old.typeOid === col.typeOid) return (row) => row[j] ?? null;
    const cast = castText(old, from, col, to);
    return (row) => cast(row[j] ?? null);
  });
  return (row) => sources.map((f) => f(row));
}

function castText(
  from: ColumnSchema,
  fromTable: TableSchema,
  to: ColumnSchema,
  toTable: TableSchema,
): (text: string | null) => string | null {
  const hint = typeHintFor(from, fromTable.enums);
  let f: (v: Value) => Value;
  try {
    f = castFn(typeFromName(from.typeName), typeFromName(to.typeName));
  } catch (cause) {
    throw new TidemarkError('VIEW_SCHEMA_CHANGED', {
      detail: `${toTable.schema}.${toTable.name}: column ${to.name} changed type ${from.typeName} → ${to.typeName}, which the views cannot convert in their state. Fix: restart the changefeed: the views are rebuilt from a new snapshot`,
      cause,
    });
  }
  return (text) => (text === null ? null : encodeText(f(decodeCell(text, from.typeOid, hint)), to.typeOid));
}
