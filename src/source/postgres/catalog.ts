/**
 * Reads table shapes from the source catalog: which tables a selection names, their columns with
 * `format_type` names, their key, and the enum types they use — and which tables cannot be
 * replicated without harming the source or losing changes, with the reason.
 *
 * The rules (each refusal names the table and the fix):
 * - a partitioned table replicates as its root (every partition, now and attached later); a
 *   partition alone is not selected by a pattern (its root is);
 * - the key is the primary key, or the REPLICA IDENTITY USING INDEX index when set; a table with
 *   neither replicates only with REPLICA IDENTITY FULL (rows matched on all columns);
 * - REPLICA IDENTITY NOTHING is refused: once published, every UPDATE and DELETE on the source
 *   would fail; so is a table without a key whose identity is DEFAULT, for the same reason;
 * - unlogged and temporary tables are refused: their changes are not in the WAL;
 * - generated columns are not sent by logical replication: they are described apart
 *   (`TableSchema.generated`) so a sink can compute them the same way.
 */
import type pg from 'pg';
import { ENUM_OID_SQL, portableTypeSql, typeJoinsSql } from './portable-type.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { isTablePattern, matchTable, splitTablePattern } from '../../core/selection.ts';
import {
  quoteIdent,
  type ColumnSchema,
  type EnumType,
  type GeneratedColumn,
  type TableSchema,
} from '../../core/table-schema.ts';

const SYSTEM_SCHEMAS = `('pg_catalog', 'information_schema', 'tidemark', '_tidemark')`;

export interface TableRow {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly replident: string;
  /** r: table, p: partitioned table. */
  readonly relkind: string;
  /** p: permanent, u: unlogged, t: temporary. */
  readonly persistence: string;
}

/** A table a pattern matched but that cannot be replicated, with the reason. */
export interface LeftOut {
  readonly schema: string;
  readonly name: string;
  readonly reason: TidemarkError;
}

export interface Selection {
  readonly tables: TableSchema[];
  /** Tables matched by a pattern only and left out; a table named exactly is refused instead. */
  readonly leftOut: LeftOut[];
}

/**
 * Resolves a selection to tables, in a stable order. Exact names that do not exist are an error
 * naming them; a selection that matches nothing at all is an error too.
 */
export async function resolveTables(
  client: pg.ClientBase,
  selection: readonly string[],
): Promise<{ rows: TableRow[]; named: Set<number> }> {
  const { rows } = await client.query<TableRow>(
    `SELECT c.oid AS oid, n.nspname AS schema, c.relname AS name, c.relreplident AS replident,
            c.relkind::text AS relkind, c.relpersistence::text AS persistence
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ${SYSTEM_SCHEMAS} AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY n.nspname, c.relname`,
  );
  const chosen = new Map<number, TableRow>();
  const named = new Set<number>();
  for (const entry of selection) {
    if (!isTablePattern(entry)) {
      const sel = splitTablePattern(entry);
      const hit = rows.find((r) => r.schema === sel.schema && r.name === sel.name);
      if (!hit) {
        throw new TidemarkError('SOURCE_TABLE_NOT_FOUND', {
          detail: `table ${sel.schema}.${sel.name} (from tables: "${entry}") does not exist in the source`,
        });
      }
      chosen.set(hit.oid, hit);
      named.add(hit.oid);
    } else {
      for (const r of rows) if (matchTable(entry, r.schema, r.name)) chosen.set(r.oid, r);
    }
  }
  if (chosen.size === 0) {
    throw new TidemarkError('SOURCE_NO_TABLES', {
      detail: `tables: [${selection.join(', ')}] matches no table`,
    });
  }
  const ordered = [...chosen.values()].sort((a, b) =>
    a.schema === b.schema ? (a.name < b.name ? -1 : 1) : a.schema < b.schema ? -1 : 1,
  );
  return { rows: ordered, named };
}

/**
 * Resolves and describes a selection: tables that cannot be replicated are refused when named
 * exactly (the error), left out with their reason when only a pattern matched them.
 */
export async function describeSelection(
  client: pg.ClientBase,
  selection: readonly string[],
): Promise<Selection> {
  const { rows, named } = await resolveTables(client, selection);
  const described = await describeTables(client, rows, { requireKey: true });
  const tables: TableSchema[] = [];
  const leftOut: LeftOut[] = [];
  rows.forEach((row, i) => {
    const d = described[i]!;
    if (d instanceof TidemarkError) {
      if (named.has(row.oid)) throw d;
      leftOut.push({ schema: row.schema, name: row.name, reason: d });
    } else tables.push(d);
  });
  if (tables.length === 0) throw leftOut[0]!.reason;
  return { tables, leftOut };
}

interface ColumnRow {
  relid: number;
  attnum: number;
  name: string;
  typeoid: number;
  typmod: number;
  typename: string;
  notnull: boolean;
  enumoid: number | null;
  generated: string;
  expression: string | null;
}

/**
 * Describes tables by OID, each as its TableSchema or — when `requireKey` and it cannot be
 * replicated safely — as the TidemarkError saying why.
 */
export async function describeTables(
  client: pg.ClientBase,
  tables: readonly TableRow[],
  options: { requireKey: boolean } = { requireKey: true },
): Promise<(TableSchema | TidemarkError)[]> {
  const oids = tables.map((t) => t.oid);
  const { rows: cols } = await client.query<ColumnRow>(
    `SELECT a.attrelid AS relid, a.attnum::int AS attnum, a.attname AS name,
            a.atttypid AS typeoid, a.atttypmod AS typmod,
            ${portableTypeSql('a.atttypmod')} AS typename, a.attnotnull AS notnull,
            ${ENUM_OID_SQL} AS enumoid,
            a.attgenerated::text AS generated,
            CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END AS expression
       FROM pg_attribute a
       ${typeJoinsSql('a.atttypid')}
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  const { rows: keys } = await client.query<{ relid: number; pk: number[] | null; ri: number[] | null }>(
    `SELECT c.oid AS relid,
            (SELECT conkey::int[] FROM pg_constraint WHERE contype = 'p' AND conrelid = c.oid) AS pk,
            (SELECT string_to_array(indkey::text, ' ')::int[] FROM pg_index WHERE indrelid = c.oid AND indisreplident) AS ri
       FROM pg_class c WHERE c.oid = ANY($1::oid[])`,
    [oids],
  );
  // Partitions of partitioned roots: each one's own identity decides whether the source's
  // writes to it keep working once the root is published.
  const { rows: parts } = await client.query<{
    root: number;
    name: string;
    replident: string;
    haspk: boolean;
  }>(
    `SELECT r.oid AS root, format('%I.%I', pn.nspname, p.relname) AS name, p.relreplident AS replident,
            EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'p' AND conrelid = p.oid) AS haspk
       FROM pg_class r, pg_partition_tree(r.oid) pt
       JOIN pg_class p ON p.oid = pt.relid JOIN pg_namespace pn ON pn.oid = p.relnamespace
      WHERE r.oid = ANY($1::oid[]) AND r.relkind = 'p' AND pt.isleaf`,
    [oids],
  );
  const enumOids = [...new Set(cols.map((c) => c.enumoid).filter((o): o is number => o !== null))];
  const enums = new Map<number, EnumType>();
  if (enumOids.length > 0) {
    const { rows } = await client.query<{ oid: number; schema: string; name: string; labels: string[] }>(
      `SELECT t.oid AS oid, n.nspname AS schema, t.typname AS name,
              array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.oid = ANY($1::oid[]) GROUP BY t.oid, n.nspname, t.typname`,
      [enumOids],
    );
    for (const r of rows) enums.set(r.oid, { schema: r.schema, name: r.name, labels: r.labels });
  }
  return tables.map((t) => {
    const all = cols.filter((c) => c.relid === t.oid);
    const own = all.filter((c) => c.generated === '');
    const k = keys.find((x) => x.relid === t.oid);
    const ri = t.replident === 'i' ? (k?.ri ?? []) : null;
    const keyAttnums = ri ?? k?.pk ?? [];
    const columns: ColumnSchema[] = own.map((c) => ({
      name: c.name,
      typeOid: c.typeoid,
      typeMod: c.typmod,
      typeName: c.typename,
      isKey: keyAttnums.includes(c.attnum),
      nullable: !c.notnull,
      sourceId: c.attnum,
    }));
    const keyColumns = own.flatMap((c, i) => (keyAttnums.includes(c.attnum) ? [i] : []));
    if (options.requireKey) {
      const refusal = refuse(
        t,
        keyColumns.length > 0,
        parts.filter((p) => p.root === t.oid),
      );
      if (refusal) return refusal;
    }
    const usedEnums = [...new Set(own.map((c) => c.enumoid).filter((o): o is number => o !== null))]
      .map((o) => enums.get(o))
      .filter((e): e is EnumType => e !== undefined);
    const generated: GeneratedColumn[] = all.flatMap((c, position) =>
      c.generated !== '' && c.expression !== null
        ? [{ name: c.name, typeName: c.typename, expression: c.expression, position }]
        : [],
    );
    return {
      schema: t.schema,
      name: t.name,
      relationId: t.oid,
      columns,
      keyColumns,
      keyless: keyColumns.length === 0,
      enums: usedEnums,
      ...(generated.length > 0 ? { generated } : {}),
    };
  });
}

/** Why a table cannot be replicated safely, or null. */
function refuse(
  t: TableRow,
  hasKey: boolean,
  partitions: readonly { name: string; replident: string; haspk: boolean }[],
): TidemarkError | null {
  const table = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
  if (t.persistence !== 'p') {
    return new TidemarkError('SOURCE_TABLE_UNSUPPORTED', {
      detail: `table ${t.schema}.${t.name} is ${t.persistence === 'u' ? 'UNLOGGED' : 'TEMPORARY'}: its changes are not written to the WAL, so logical replication cannot see them`,
      hint: `Make it a regular table (ALTER TABLE ${table} SET LOGGED), or leave it out of \`tables\`.`,
    });
  }
  if (t.replident === 'n') {
    return new TidemarkError('SOURCE_REPLICA_IDENTITY', {
      detail: `table ${t.schema}.${t.name} has REPLICA IDENTITY NOTHING: once published, every UPDATE and DELETE on it in the source would fail`,
      hint: `Set ALTER TABLE ${table} REPLICA IDENTITY DEFAULT (with a primary key) or FULL, or leave it out of \`tables\`.`,
    });
  }
  if (!hasKey && t.replident !== 'f') {
    return new TidemarkError('SOURCE_TABLE_NO_KEY', {
      detail: `table ${t.schema}.${t.name} has no primary key and its REPLICA IDENTITY is not FULL, so its updates and deletes cannot be matched downstream (and, once published, would fail on the source)`,
      hint: `Add a primary key (ALTER TABLE ${table} ADD PRIMARY KEY (…)), or run ALTER TABLE ${table} REPLICA IDENTITY FULL to match rows on all columns.`,
    });
  }
  const bad = partitions.find((p) => p.replident === 'n' || (p.replident === 'd' && !p.haspk));
  if (bad) {
    return new TidemarkError('SOURCE_REPLICA_IDENTITY', {
      detail: `partition ${bad.name} of ${t.schema}.${t.name} has ${bad.replident === 'n' ? 'REPLICA IDENTITY NOTHING' : 'no primary key and REPLICA IDENTITY DEFAULT'}: once the table is published, UPDATE and DELETE on that partition would fail on the source`,
      hint: `Give the partition a primary key or set ALTER TABLE ${bad.name} REPLICA IDENTITY FULL.`,
    });
  }
  return null;
}
