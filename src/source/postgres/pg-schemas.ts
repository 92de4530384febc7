/**
 * The shape of every replicated table at each point of the replication stream, and the schema
 * changes (barriers) between shapes.
 *
 *   knownTables (the hub's log: shapes in force where the session starts)
 *        │
 *   DDL message (ddl-capture.ts) ──► shape after the command, diffed by column number ──► SchemaChange
 *   Relation message ──► shape the next rows follow; if it differs from the known one and no DDL
 *                        message explained it (capture not installed), a degraded diff by name
 *
 * Rows are always decoded with the shape in force at their position: the DDL message comes at
 * the command's place in its transaction, and Relation messages describe the historic catalog
 * the WAL was written with — never the catalog as it is now (a change made while Tidemark was
 * down is diffed where it happened). The catalog is read only for what neither message says:
 * type names and enum labels of type oids (types outlive the columns that use them), and a table
 * first met in the stream.
 */
import type { ColumnChange, ColumnFill, SchemaChange } from '../../core/schema-change.ts';
import type { ColumnSchema, EnumType, GeneratedColumn, TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { DdlMessage, DdlTable } from './ddl-capture.ts';
import type { PgoutputMessage } from './pgoutput-messages.ts';

type RelationEvent = Extract<PgoutputMessage, { tag: 'relation' }>;

/** Rewrite reasons of `pg_event_trigger_table_rewrite_reason` (AT_REWRITE_* in tablecmds.h). */
const REWRITE_DEFAULT_VAL = 0x02;

/** What the tracker reads from the catalog. */
export interface CatalogLookup {
  /** The portable type name of (type oid, typmod), and its enum (with labels) if it is one. */
  type(typeOid: number, typeMod: number): Promise<{ typeName: string; enumType: EnumType | null }>;
  /** A table first met in the stream, as the catalog describes it now (null when gone). */
  table(oid: number): Promise<TableSchema | null>;
  /** The value existing rows read for column `column` of `oid`, as the catalog holds it now. */
  missingValue(oid: number, column: string): Promise<string | null>;
}

export class PgSchemaTracker {
  private readonly shapes = new Map<number, TableSchema>();
  /** Tables rewritten in the open transaction (table_rewrite fires before its command's DDL message). */
  private readonly rewrites = new Map<number, number>();

  constructor(
    known: readonly TableSchema[],
    private readonly lookup: CatalogLookup,
  ) {
    for (const t of known) this.shapes.set(t.relationId, t);
  }

  /** Tables captured after the session started: their shape now, unless one is known already. */
  learn(tables: readonly TableSchema[]): void {
    for (const t of tables) if (!this.shapes.has(t.relationId)) this.shapes.set(t.relationId, t);
  }

  /** The shape the rows of relation `oid` follow now; only after its Relation message. */
  known(oid: number): TableSchema {
    const t = this.shapes.get(oid);
    if (!t) {
      throw new TidemarkError('SOURCE_PROTOCOL', {
        detail: `change for relation ${oid} before its Relation message`,
      });
    }
    return t;
  }

  /** Ends the open transaction's bookkeeping (rewrites are per command, within one transaction). */
  endTransaction(): void {
    this.rewrites.clear();
  }

  /**
   * A Relation message: the shape the next rows of the table follow. Returns the schema change
   * when it differs from the known shape and no DDL message said so (a degraded diff by column
   * name: a rename shows as a drop and an add), else null.
   */
  async onRelation(ev: RelationEvent): Promise<SchemaChange | null> {
    const prev = this.shapes.get(ev.relationId) ?? null;
    if (prev && sameRelation(prev, ev)) return null;
    const next = await this.fromRelation(ev, prev);
    this.shapes.set(ev.relationId, next);
    if (!prev) return null;
    const fills = new Map<string, ColumnFill>();
    for (const c of next.columns) {
      if (prev.columns.some((p) => p.name === c.name)) continue;
      const missing = await this.lookup.missingValue(ev.relationId, c.name);
      fills.set(c.name, missing === null ? { kind: 'null' } : { kind: 'value', text: missing });
    }
    return altered(
      prev,
      next,
      diffColumns(prev, next, { byId: false, fills, reproducible: () => true }),
      null,
      null,
    );
  }

  /** A DDL capture message: the schema changes it makes, in order (none for tables not replicated). */
  onDdl(msg: DdlMessage): SchemaChange[] {
    switch (msg.kind) {
      case 'rewrite':
        this.rewrites.set(msg.oid, (this.rewrites.get(msg.oid) ?? 0) | msg.reason);
        return [];
      case 'drop': {
        const out: SchemaChange[] = [];
        for (const d of msg.dropped) {
          const prev = this.shapes.get(d.oid);
          if (prev) {
            this.shapes.delete(d.oid);
            out.push({ kind: 'table-dropped', tableId: d.oid, table: prev, ddl: msg.tag });
            continue;
          }
          // A dropped partition took its rows out of its root.
          const root = d.partitionOf ?? null;
          const rootShape =
            root !== null && !msg.dropped.some((x) => x.oid === root) ? this.shapes.get(root) : undefined;
          if (rootShape) {
            out.push(
              altered(
                rootShape,
                rootShape,
                [],
                `partition ${d.schema}.${d.name} was dropped (its rows left the table)`,
                msg.tag,
              ),
            );
          }
        }
        return out;
      }
      case 'ddl': {
        const out: SchemaChange[] = [];
        for (const e of msg.enums) out.push(...this.onEnum(e, msg.tag));
        const creates = /^(CREATE TABLE|CREATE TABLE AS|SELECT INTO)$/.test(msg.tag);
        for (const t of msg.tables) {
          const c = this.onTable(t, { tag: msg.tag, query: msg.query, creates });
          if (c) out.push(c);
        }
        return out;
      }
      case 'failed': {
        const out: SchemaChange[] = [];
        for (const oid of msg.oids) {
          const prev = this.shapes.get(oid);
          if (prev) {
            const why = `the source's schema-change capture failed for this command (${msg.error})`;
            out.push(altered(prev, prev, [], why, msg.tag));
          }
        }
        return out;
      }
    }
  }

  private onEnum(e: EnumType & { oid: number }, ddl: string): SchemaChange[] {
    const out: SchemaChange[] = [];
    for (const [oid, t] of this.shapes) {
      const i = t.enums.findIndex((x) => x.schema === e.schema && x.name === e.name);
      if (i < 0 || sameLabels(t.enums[i]!.labels, e.labels)) continue;
      const enums = t.enums.map((x, j) =>
        j === i ? { schema: e.schema, name: e.name, labels: [...e.labels] } : x,
      );
      const next: TableSchema = { ...t, enums };
      this.shapes.set(oid, next);
      out.push(altered(t, next, [], null, ddl));
    }
    return out;
  }

  private onTable(
    d: DdlTable,
    cmd: { readonly tag: string; readonly query: string; readonly creates: boolean },
  ): SchemaChange | null {
    if (d.root !== null || d.persistence === 't') return null; // partitions replicate via their root
    const prev = this.shapes.get(d.oid) ?? null;
    const next = fromDdl(d);
    const rewrite = this.rewrites.get(d.oid) ?? 0;
    const partitionsRecopy = partitionChange(d);
    // What errors and logs show: the command's tag and table, never its text (it may hold secrets).
    const ddl = `${cmd.tag} ${d.schema}.${d.name}`;
    const creates = cmd.creates;
    if (!prev) {
      this.shapes.set(d.oid, next);
      // A table this session never saw and no command created: nothing to diff against.
      if (!creates) return null;
      return {
        kind: 'table-created',
        table: next,
        unreplicable: unreplicable(d),
        ddl,
      };
    }
    if (d.refused !== undefined && prev) {
      this.shapes.set(d.oid, next);
      return { ...altered(prev, next, [], null, ddl), unreplicable: d.refused };
    }
    const fills = new Map<string, ColumnFill>();
    for (const c of d.columns) {
      if (c.generated !== '') continue;
      fills.set(
        c.name,
        c.hasMissing && c.missing !== null
          ? { kind: 'value', text: c.missing }
          : // A default without a missing value: the rows were rewritten (a volatile default, or
            // a rewrite by another subcommand, which stores the constant in each row), or the
            // default sits on a partitioned root whose leaves did not say.
            rewrite & REWRITE_DEFAULT_VAL || (c.hasDefault && (rewrite !== 0 || d.relkind === 'p'))
            ? { kind: 'per-row' }
            : { kind: 'null' },
      );
    }
    const usesUsing = /\bTYPE\b[^;]*\bUSING\b/i.test(cmd.query);
    const columns = diffColumns(prev, next, { byId: true, fills, reproducible: () => !usesUsing });
    this.shapes.set(d.oid, next);
    const recopy =
      columns
        .map((c) =>
          c.op === 'added' && c.fill.kind === 'per-row'
            ? `column ${c.column} was added with a default written into each existing row (a volatile default, or a table rewrite in the same command)`
            : c.op === 'retyped' && !c.reproducible
              ? `column ${c.column} changed type with a USING expression (the source computed new values)`
              : null,
        )
        .find((r) => r !== null) ?? partitionsRecopy;
    if (columns.length === 0 && recopy === null && sameShape(prev, next)) return null;
    return altered(prev, next, columns, recopy, ddl);
  }

  /** A table's shape from its Relation message, with what the message does not say from `prev` or the catalog. */
  private async fromRelation(ev: RelationEvent, prev: TableSchema | null): Promise<TableSchema> {
    const base = prev ?? (await this.lookup.table(ev.relationId));
    const columns: ColumnSchema[] = [];
    const enums = new Map<string, EnumType>();
    for (const c of ev.columns) {
      const old = base?.columns.find((p) => p.name === c.name) ?? null;
      const same = old !== null && old.typeOid === c.typeOid && old.typeMod === c.typeMod;
      let typeName: string;
      if (same) typeName = old.typeName;
      else {
        const t = await this.lookup.type(c.typeOid, c.typeMod);
        typeName = t.typeName;
        if (t.enumType) enums.set(`${t.enumType.schema}.${t.enumType.name}`, t.enumType);
      }
      columns.push({
        name: c.name,
        typeOid: c.typeOid,
        typeMod: c.typeMod,
        typeName,
        isKey: false,
        nullable: old?.nullable ?? true,
        ...(old?.sourceId !== undefined ? { sourceId: old.sourceId } : {}),
      });
    }
    // The key: the replica identity's columns, except under FULL (every column is flagged):
    // then the table's own key, as known.
    const keyNames =
      ev.replicaIdentity === 'f'
        ? new Set((base?.keyColumns ?? []).map((i) => base!.columns[i]!.name))
        : new Set(ev.columns.filter((c) => c.isKey).map((c) => c.name));
    const keyColumns = columns.flatMap((c, i) => (keyNames.has(c.name) ? [i] : []));
    for (const i of keyColumns) columns[i] = { ...columns[i]!, isKey: true };
    for (const e of base?.enums ?? [])
      if (!enums.has(`${e.schema}.${e.name}`)) enums.set(`${e.schema}.${e.name}`, e);
    return {
      schema: ev.schema,
      name: ev.name,
      relationId: ev.relationId,
      columns,
      keyColumns,
      keyless: keyColumns.length === 0,
      enums: [...enums.values()],
      ...(base?.generated ? { generated: base.generated } : {}),
    };
  }
}

/** A table's shape from its DDL description (generated columns apart; enum labels kept from `prev`, refreshed by ALTER TYPE). */
function fromDdl(d: DdlTable): TableSchema {
  const plain = d.columns.filter((c) => c.generated === '');
  const columns: ColumnSchema[] = plain.map((c) => ({
    name: c.name,
    typeOid: c.typoid,
    typeMod: c.typmod,
    typeName: c.type,
    isKey: d.key.includes(c.attnum),
    nullable: !c.notnull,
    sourceId: c.attnum,
  }));
  const keyColumns = plain.flatMap((c, i) => (d.key.includes(c.attnum) ? [i] : []));
  const generated: GeneratedColumn[] = d.columns.flatMap((c, position) =>
    c.generated !== '' && c.expression !== null
      ? [{ name: c.name, typeName: c.type, expression: c.expression, position }]
      : [],
  );
  const enums: EnumType[] = d.enums.map((e) => ({ schema: e.schema, name: e.name, labels: [...e.labels] }));
  return {
    schema: d.schema,
    name: d.name,
    relationId: d.oid,
    columns,
    keyColumns,
    keyless: keyColumns.length === 0,
    enums,
    ...(generated.length > 0 ? { generated } : {}),
  };
}

/** Why a partitioned root needs a re-copy after this command (a partition with rows came or went). */
function partitionChange(d: DdlTable): string | null {
  if (d.partitions === null) return null;
  const [attached] = d.partitions.attachedWithRows;
  if (attached !== undefined) return `partition ${attached} was attached with rows already in it`;
  const [detached] = d.partitions.detached;
  if (detached !== undefined) return `partition ${detached} was detached (its rows left the table)`;
  return null;
}

/** Why a created table cannot be replicated (catalog.ts `refuse`, for what the message says). */
function unreplicable(d: DdlTable): string | null {
  if (d.persistence !== 'p') return `table ${d.schema}.${d.name} is UNLOGGED: its changes are not in the WAL`;
  if (d.replident === 'n') return `table ${d.schema}.${d.name} has REPLICA IDENTITY NOTHING`;
  if (d.key.length === 0 && d.replident !== 'f') {
    return `table ${d.schema}.${d.name} has no primary key and its REPLICA IDENTITY is not FULL`;
  }
  return null;
}

/**
 * The column changes from `before` to `after`: matched by source id when both have one (so a
 * rename is a rename), else by name. In apply order: drops, renames, type changes, adds.
 */
export function diffColumns(
  before: TableSchema,
  after: TableSchema,
  opts: {
    byId: boolean;
    fills: ReadonlyMap<string, ColumnFill>;
    reproducible: (column: string) => boolean;
  },
): ColumnChange[] {
  const match = (a: ColumnSchema): ColumnSchema | undefined =>
    opts.byId && a.sourceId !== undefined
      ? before.columns.find((b) => b.sourceId === a.sourceId)
      : before.columns.find((b) => b.name === a.name);
  const matched = new Set<ColumnSchema>();
  const renamed: ColumnChange[] = [];
  const retyped: ColumnChange[] = [];
  const added: ColumnChange[] = [];
  for (const a of after.columns) {
    const b = match(a);
    if (!b) {
      added.push({ op: 'added', column: a.name, fill: opts.fills.get(a.name) ?? { kind: 'null' } });
      continue;
    }
    matched.add(b);
    if (b.name !== a.name) renamed.push({ op: 'renamed', from: b.name, to: a.name });
    if (b.typeOid !== a.typeOid || b.typeMod !== a.typeMod || b.typeName !== a.typeName) {
      retyped.push({
        op: 'retyped',
        column: a.name,
        fromType: b.typeName,
        toType: a.typeName,
        reproducible: opts.reproducible(a.name),
      });
    }
  }
  const dropped: ColumnChange[] = before.columns
    .filter((b) => !matched.has(b))
    .map((b) => ({ op: 'dropped', column: b.name }));
  return [...dropped, ...renamed, ...retyped, ...added];
}

function altered(
  before: TableSchema,
  after: TableSchema,
  columns: ColumnChange[],
  recopy: string | null,
  ddl: string | null,
): Extract<SchemaChange, { kind: 'table-altered' }> {
  return { kind: 'table-altered', before, after, columns, recopy, ddl };
}

/** Same table, columns, types and key as a Relation message describes them. */
function sameRelation(t: TableSchema, ev: RelationEvent): boolean {
  if (t.schema !== ev.schema || t.name !== ev.name || t.columns.length !== ev.columns.length) return false;
  for (let i = 0; i < ev.columns.length; i++) {
    const c = ev.columns[i]!;
    const o = t.columns[i]!;
    if (c.name !== o.name || c.typeOid !== o.typeOid || c.typeMod !== o.typeMod) return false;
  }
  if (ev.replicaIdentity === 'f') return true;
  const keys = ev.columns.flatMap((c, i) => (c.isKey ? [i] : []));
  return keys.length === t.keyColumns.length && keys.every((k, i) => t.keyColumns[i] === k);
}

/** Everything sinks act on, other than columns: name, key, enums, generated columns, nullability. */
function sameShape(a: TableSchema, b: TableSchema): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}
