/**
 * What the views' state was built with, stored beside it (namespace `meta`, key `schema`): the
 * view definitions and the input tables' layouts the state's rows are in, plus a fingerprint of
 * both. Rows in state are positional (arrangements keep text rows, operators keep Value rows in
 * the plan's column order), so a state may only be read with a plan built for this record's
 * layouts; `diffTable` says what changed when the source's layout is another.
 *
 *   meta|schema → {"format":1,"fingerprint":"<sha256>","views":[{name,sql}…],"inputs":[TableSchema…],
 *                  "generation":<n>,"plans":"<sha256 of the plans>"}
 *
 * `generation` counts the rebuilds of the graph's state at schema barriers (absent: 0): graph
 * node namespaces are `n<id>` in generation 0, `g<n>n<id>` after, so a rebuilt graph never reads
 * what an earlier one left.
 */
import { createHash } from 'node:crypto';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { StateStore } from './state-store.ts';

export interface ViewDefinition {
  /** `name` or `schema.name`: the table the sink maintains. */
  readonly name: string;
  readonly sql: string;
}

export interface SchemaRecord {
  readonly format: 1;
  readonly fingerprint: string;
  readonly views: readonly ViewDefinition[];
  /** The layouts of the input tables the state's rows are in, in state-namespace order. */
  readonly inputs: readonly TableSchema[];
  /** Rebuilds at schema barriers so far (absent: 0). */
  readonly generation?: number;
  /**
   * The layouts changes arrive in at this state's epoch, where migrated barriers changed them
   * (absent: `inputs`), and the values existing rows have for columns they added, by table id.
   */
  readonly current?: readonly TableSchema[];
  readonly fills?: Readonly<Record<string, Readonly<Record<string, string | null>>>>;
  /** How the views were planned (sql/plan.ts `planDigest`); absent in records of older versions. */
  readonly plans?: string;
}

const NS = 'meta';
const KEY = 'schema';

export function schemaRecord(
  views: readonly ViewDefinition[],
  inputs: readonly TableSchema[],
  plans: string,
  generation = 0,
): SchemaRecord {
  const v = views.map((x) => ({ name: x.name, sql: x.sql }));
  return { format: 1, fingerprint: fingerprint(v, inputs), views: v, inputs, generation, plans };
}

/** The namespace prefix of graph nodes in the record's generation. */
export function nodePrefix(record: SchemaRecord): string {
  const g = record.generation ?? 0;
  return g === 0 ? 'n' : `g${g}n`;
}

/** The fingerprint of view definitions over input layouts (what a state built for them has). */
export function fingerprint(views: readonly ViewDefinition[], inputs: readonly TableSchema[]): string {
  const canonical = JSON.stringify({
    views: views.map((v) => [v.name, v.sql]),
    inputs: inputs.map((t) => [t.relationId, t.schema, t.name, t.keyColumns, t.keyless, layout(t)]),
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** The columns as the state sees them: name, type, key membership. */
function layout(t: TableSchema): [string, string, number, boolean][] {
  return t.columns.map((c) => [c.name, c.typeName, c.typeOid, c.isKey]);
}

/** Whether rows of `a` and `b` have the same columns in the same places with the same types. */
export function sameLayout(a: TableSchema, b: TableSchema): boolean {
  return (
    a === b ||
    (JSON.stringify(layout(a)) === JSON.stringify(layout(b)) &&
      JSON.stringify(a.keyColumns) === JSON.stringify(b.keyColumns) &&
      a.keyless === b.keyless)
  );
}

/** The stored record, or null for a fresh store (or a state written before records existed). */
export function readSchemaRecord(store: StateStore): SchemaRecord | null {
  const text = store.get(NS, KEY);
  if (text === undefined) return null;
  try {
    const r = JSON.parse(text) as SchemaRecord;
    if (r.format !== 1) throw new Error(`unknown format ${String(r.format)}`);
    return r;
  } catch (cause) {
    throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
      detail: 'the schema record of the view state',
      cause,
    });
  }
}

/** Stores the record; only inside an open epoch (it commits with the state it describes). */
export function writeSchemaRecord(store: StateStore, record: SchemaRecord): void {
  store.put(NS, KEY, JSON.stringify(record));
}

export interface ColumnChange {
  readonly column: string;
  readonly kind: 'dropped' | 'added' | 'retyped';
  /** Type names before and after (retyped). */
  readonly from?: string;
  readonly to?: string;
}

export interface TableChange {
  readonly table: string;
  readonly columns: readonly ColumnChange[];
  /** The key columns, when they changed. */
  readonly key: { readonly from: readonly string[]; readonly to: readonly string[] } | null;
  /** The table was dropped and created again under its name (another relation id). */
  readonly replaced: boolean;
}

/** What changed from the stored layout to the current one, by column name. */
export function diffTable(stored: TableSchema, current: TableSchema): TableChange {
  const columns: ColumnChange[] = [];
  for (const c of stored.columns) {
    const now = current.columns.find((x) => x.name === c.name);
    if (now === undefined) columns.push({ column: c.name, kind: 'dropped' });
    else if (now.typeName !== c.typeName || now.typeOid !== c.typeOid)
      columns.push({ column: c.name, kind: 'retyped', from: c.typeName, to: now.typeName });
  }
  for (const c of current.columns)
    if (!stored.columns.some((x) => x.name === c.name)) columns.push({ column: c.name, kind: 'added' });
  const keyNames = (t: TableSchema) => (t.keyless ? [] : t.keyColumns.map((i) => t.columns[i]?.name ?? '?'));
  const from = keyNames(stored);
  const to = keyNames(current);
  return {
    table: qualifiedName(current),
    columns,
    key: JSON.stringify(from) === JSON.stringify(to) ? null : { from, to },
    replaced: stored.relationId !== current.relationId,
  };
}

export function isUnchanged(c: TableChange): boolean {
  return c.columns.length === 0 && c.key === null && !c.replaced;
}

/** `column "a" dropped`, `column "b" retyped from integer to text`, … */
export function describeColumn(c: ColumnChange): string {
  if (c.kind === 'retyped') return `column "${c.column}" changed type from ${c.from} to ${c.to}`;
  return `column "${c.column}" ${c.kind}`;
}

export function describeTableChange(c: TableChange): string {
  const parts = c.columns.map(describeColumn);
  if (c.key) parts.push(`key changed from (${c.key.from.join(', ')}) to (${c.key.to.join(', ')})`);
  if (c.replaced) parts.unshift('dropped and created again');
  return `${c.table}: ${parts.join(', ')}`;
}
