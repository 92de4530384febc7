/**
 * Reads table shapes from the source catalog: which tables a selection names, their columns
 * with `format_type` names, their key, and the enum types they use.
 */
import type pg from 'pg';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { isTablePattern, matchTable, splitTablePattern } from '../../core/selection.ts';
import { quoteIdent, type ColumnSchema, type EnumType, type TableSchema } from '../../core/table-schema.ts';

const SYSTEM_SCHEMAS = `('pg_catalog', 'information_schema', 'tidemark')`;

interface TableRow {
  oid: number;
  schema: string;
  name: string;
  replident: string;
}

/**
 * Resolves a selection to tables, in a stable order. Exact names that do not exist are an error
 * naming them; a selection that matches nothing at all is an error too.
 */
export async function resolveTables(
  client: pg.ClientBase,
  selection: readonly string[],
): Promise<TableRow[]> {
  const { rows } = await client.query<TableRow>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relreplident AS replident
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ${SYSTEM_SCHEMAS} AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY n.nspname, c.relname`,
  );
  const chosen = new Map<number, TableRow>();
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
    } else {
      for (const r of rows) if (matchTable(entry, r.schema, r.name)) chosen.set(r.oid, r);
    }
  }
  if (chosen.size === 0) {
    throw new TidemarkError('SOURCE_NO_TABLES', {
      detail: `tables: [${selection.join(', ')}] matches no table`,
    });
  }
  return [...chosen.values()].sort((a, b) => (a.schema + '.' + a.name < b.schema + '.' + b.name ? -1 : 1));
}

interface ColumnRow {
  relid: number;
  attnum: number;
  name: string;
  typeoid: number;
  typmod: number;
  typename: string;
  notnull: boolean;
  typtype: string;
  typschema: string;
  basetypename: string | null;
  enumoid: number | null;
}

/**
 * Describes tables by OID. Keyed by the primary key; a table without one is accepted only with
 * REPLICA IDENTITY FULL (keyless: rows match on all columns), otherwise SOURCE_TABLE_NO_KEY.
 * Generated columns are left out (pgoutput does not send them).
 */
export async function describeTables(
  client: pg.ClientBase,
  tables: readonly { oid: number; schema: string; name: string; replident: string }[],
  options: { requireKey: boolean } = { requireKey: true },
): Promise<TableSchema[]> {
  const oids = tables.map((t) => t.oid);
  const { rows: cols } = await client.query<ColumnRow>(
    `SELECT a.attrelid::int AS relid, a.attnum::int AS attnum, a.attname AS name,
            a.atttypid::int AS typeoid, a.atttypmod AS typmod,
            format_type(a.atttypid, a.atttypmod) AS typename, a.attnotnull AS notnull,
            t.typtype::text AS typtype, tn.nspname AS typschema,
            CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS basetypename,
            CASE WHEN t.typtype = 'e' THEN t.oid::int
                 WHEN et.typtype = 'e' THEN et.oid::int END AS enumoid
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       JOIN pg_namespace tn ON tn.oid = t.typnamespace
       LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  const { rows: pks } = await client.query<{ relid: number; conkey: number[] }>(
    `SELECT conrelid::int AS relid, conkey::int[] AS conkey FROM pg_constraint
      WHERE contype = 'p' AND conrelid = ANY($1::oid[])`,
    [oids],
  );
  const enumOids = [...new Set(cols.map((c) => c.enumoid).filter((o): o is number => o !== null))];
  const enums = new Map<number, EnumType>();
  if (enumOids.length > 0) {
    const { rows } = await client.query<{ oid: number; schema: string; name: string; labels: string[] }>(
      `SELECT t.oid::int AS oid, n.nspname AS schema, t.typname AS name,
              array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.oid = ANY($1::oid[]) GROUP BY t.oid, n.nspname, t.typname`,
      [enumOids],
    );
    for (const r of rows) enums.set(r.oid, { schema: r.schema, name: r.name, labels: r.labels });
  }
  return tables.map((t) => {
    const own = cols.filter((c) => c.relid === t.oid);
    const pk = pks.find((p) => p.relid === t.oid)?.conkey ?? [];
    const columns: ColumnSchema[] = own.map((c) => ({
      name: c.name,
      typeOid: c.typeoid,
      typeMod: c.typmod,
      typeName: portableTypeName(c, enums),
      isKey: pk.includes(c.attnum),
      nullable: !c.notnull,
    }));
    const keyColumns = own.flatMap((c, i) => (pk.includes(c.attnum) ? [i] : []));
    if (options.requireKey && keyColumns.length === 0 && t.replident !== 'f') {
      throw new TidemarkError('SOURCE_TABLE_NO_KEY', {
        detail: `table ${t.schema}.${t.name} has no primary key and its REPLICA IDENTITY is not FULL, so its updates and deletes cannot be matched downstream`,
        hint: `Add a primary key (ALTER TABLE "${t.schema}"."${t.name}" ADD PRIMARY KEY (…)), or run ALTER TABLE "${t.schema}"."${t.name}" REPLICA IDENTITY FULL to match rows on all columns.`,
      });
    }
    const usedEnums = [...new Set(own.map((c) => c.enumoid).filter((o): o is number => o !== null))]
      .map((o) => enums.get(o))
      .filter((e): e is EnumType => e !== undefined);
    return {
      schema: t.schema,
      name: t.name,
      relationId: t.oid,
      columns,
      keyColumns,
      keyless: keyColumns.length === 0,
      enums: usedEnums,
    };
  });
}

/**
 * The type to create downstream. Built-in types and enums keep their name; a domain becomes its
 * base type; other user-defined types (composites, extension types) travel as their text form.
 */
function portableTypeName(c: ColumnRow, enums: Map<number, EnumType>): string {
  if (c.basetypename !== null) return c.basetypename;
  const e = c.enumoid === null ? undefined : enums.get(c.enumoid);
  if (e) return `${quoteIdent(e.schema)}.${quoteIdent(e.name)}${c.enumoid === c.typeoid ? '' : '[]'}`;
  if (c.typschema === 'pg_catalog') return c.typename;
  return 'text';
}
