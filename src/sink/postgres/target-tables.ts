import type pg from 'pg';
import { qualifiedName, quoteIdent, quoteTable, type TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { hasNullableKey } from './apply-plan.ts';
import { quoteLiteral } from './sql-text.ts';

interface SinkColumn {
  readonly name: string;
  readonly type: string;
  readonly isKey: boolean;
}

/**
 * The sink table's columns and which are in its key: the primary key, or — for a key that may
 * hold NULL (PostgreSQL 15+) — the UNIQUE NULLS NOT DISTINCT index the sink made instead.
 */
const COLUMNS_SQL = `
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       coalesce(a.attnum = ANY (k.indkey), false) AS "isKey"
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
  SELECT i.indkey FROM pg_catalog.pg_index i
  WHERE i.indrelid = c.oid
    AND (i.indisprimary OR (i.indisunique AND (to_jsonb(i) ->> 'indnullsnotdistinct')::boolean IS TRUE))
  ORDER BY i.indisprimary DESC LIMIT 1) k ON true
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`;

const ENUMS_SQL = `
SELECT n.nspname AS schema, t.typname AS name
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE (n.nspname, t.typname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`;

/**
 * Makes target tables match their source schema, and remembers which shapes it has checked so
 * that steady-state epochs run no catalog query. `prepare` returns DDL for the caller's
 * transaction; `committed` / `forget` keep the memory in step with what that transaction did.
 *
 * Maintains the invariant that a remembered signature was verified (or created) by a committed
 * transaction on this database.
 */
export class TargetTables {
  private readonly verified = new Map<string, string>();
  private readonly pending = new Map<string, string>();
  private readonly pendingEnums = new Set<string>();
  /** server_version_num of the connection's server, once asked. */
  private version: number | null = null;

  /**
   * DDL that makes `table` exist with the source's columns: nothing when already verified; else
   * one catalog query, then CREATE SCHEMA / TYPE / TABLE, or ALTER TABLE … ADD COLUMN for columns
   * the source added. Throws SINK_SCHEMA_MISMATCH if the sink table has other columns or key.
   */
  async prepare(client: pg.Client, table: TableSchema): Promise<string[]> {
    const key = nameKey(table);
    const sig = signature(table);
    if (this.verified.get(key) === sig || this.pending.get(key) === sig) return [];
    const { rows } = await client.query<SinkColumn>(COLUMNS_SQL, [table.schema, table.name]);
    const ddl = rows.length === 0 ? await this.createDdl(client, table) : alterDdl(table, rows);
    this.pending.set(key, sig);
    return ddl;
  }

  /**
   * The caller's transaction runs DDL that gives the table of `before` the shape `after` (a
   * schema change replayed), or drops it (`after` null): remembered as pending like `prepare`'s.
   */
  assume(before: TableSchema | null, after: TableSchema | null): void {
    if (before) {
      this.verified.delete(nameKey(before));
      this.pending.delete(nameKey(before));
    }
    if (after) this.pending.set(nameKey(after), signature(after));
  }

  /**
   * The statements that give `table` the rows of `shadow` (an online copy, with `table`'s columns)
   * and drop the shadow, in the caller's transaction: `ddl` (which takes the table's exclusive
   * lock: run it with schema-ddl.ts `runBoundedDdl`), then `data`. An existing table keeps its identity —
   * grants, indexes, views over it — when its shape differs at most by columns the source added:
   * `DELETE`, then `INSERT … SELECT`, so a reader whose snapshot predates the commit goes on seeing
   * the old rows. A rename would not do: name lookups in PostgreSQL do not follow the reader's
   * snapshot, so such a reader would see the shadow under the table's name with only the rows
   * committed before its snapshot — a partial table. A table whose shape differs otherwise (a
   * column retyped or dropped, another key) is dropped and created: a reader inside an older
   * snapshot then sees it empty, as PostgreSQL shows it a table rewritten by ALTER TABLE. The
   * price of the copy: the table's rows are written a second time, inside the swap's epoch.
   */
  async replaceDdl(
    client: pg.Client,
    table: TableSchema,
    shadow: TableSchema,
  ): Promise<{ ddl: string[]; data: string[] }> {
    const { rows } = await client.query<SinkColumn>(COLUMNS_SQL, [table.schema, table.name]);
    let ddl: string[];
    const data: string[] = [];
    if (rows.length === 0) ddl = await this.createDdl(client, table);
    else {
      try {
        ddl = alterDdl(table, rows);
        data.push(`DELETE FROM ${quoteTable(table)}`);
      } catch (err) {
        if (!(err instanceof TidemarkError) || err.code !== 'SINK_SCHEMA_MISMATCH') throw err;
        ddl = [`DROP TABLE ${quoteTable(table)}`, ...(await this.createDdl(client, table))];
      }
    }
    this.assume(shadow, null);
    this.assume(table, table);
    const cols = table.columns.map((c) => quoteIdent(c.name)).join(', ');
    data.push(
      `INSERT INTO ${quoteTable(table)} (${cols}) SELECT ${cols} FROM ${quoteTable(shadow)}`,
      `DROP TABLE ${quoteTable(shadow)}`,
    );
    return { ddl, data };
  }

  /** CREATE SCHEMA / CREATE TYPE for the schemas and enum types `table` needs that do not exist yet. */
  async enumDdl(client: pg.Client, table: TableSchema): Promise<string[]> {
    const ddl: string[] = [];
    const schemas = new Set([table.schema, ...table.enums.map((e) => e.schema)]);
    for (const s of schemas) ddl.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(s)}`);
    const wanted = table.enums.filter((e) => !this.pendingEnums.has(nameKey(e)));
    if (wanted.length > 0) {
      const { rows } = await client.query<{ schema: string; name: string }>(ENUMS_SQL, [
        wanted.map((e) => e.schema),
        wanted.map((e) => e.name),
      ]);
      const existing = new Set(rows.map((r) => nameKey(r)));
      for (const e of wanted) {
        if (existing.has(nameKey(e))) continue;
        this.pendingEnums.add(nameKey(e));
        ddl.push(`CREATE TYPE ${quoteTable(e)} AS ENUM (${e.labels.map(quoteLiteral).join(', ')})`);
      }
    }
    return ddl;
  }

  /** The transaction that ran the DDL committed. */
  committed(): void {
    for (const [k, v] of this.pending) this.verified.set(k, v);
    this.pending.clear();
    this.pendingEnums.clear();
  }

  /** The transaction rolled back; `all` also drops what was verified (a new connection). */
  forget(options: { all: boolean }): void {
    this.pending.clear();
    this.pendingEnums.clear();
    if (options.all) {
      this.verified.clear();
      this.version = null;
    }
  }

  private async createDdl(client: pg.Client, table: TableSchema): Promise<string[]> {
    const ddl = await this.enumDdl(client, table);
    const cols = table.columns.map(
      (c) => `${quoteIdent(c.name)} ${c.typeName}${c.nullable ? '' : ' NOT NULL'}`,
    );
    // Generated columns at their places in the source's order (rows never carry them).
    for (const g of [...(table.generated ?? [])].sort((a, b) => a.position - b.position)) {
      cols.splice(
        Math.min(g.position, cols.length),
        0,
        `${quoteIdent(g.name)} ${g.typeName} GENERATED ALWAYS AS (${g.expression}) STORED`,
      );
    }
    const keys = table.keyColumns.map((k) => quoteIdent(table.columns[k]?.name ?? ''));
    if (keys.length > 0 && !table.keyless) {
      // A primary key cannot hold NULL; a view's key can (a NULL group). UNIQUE NULLS NOT
      // DISTINCT is the same constraint with NULL equal to NULL, and ON CONFLICT uses it alike.
      if (!hasNullableKey(table)) cols.push(`PRIMARY KEY (${keys.join(', ')})`);
      else if ((await this.serverVersion(client)) >= 150000)
        cols.push(`UNIQUE NULLS NOT DISTINCT (${keys.join(', ')})`);
      else {
        throw new TidemarkError('SINK_UNSUITABLE', {
          detail: `${qualifiedName(table)}: its key (${table.keyColumns.map((k) => table.columns[k]?.name).join(', ')}) may be NULL, and a unique key that holds NULL needs PostgreSQL 15 or later (UNIQUE NULLS NOT DISTINCT)`,
          hint: "Use a PostgreSQL 15+ sink, or make the key non-null in the view (e.g. GROUP BY coalesce(region, '(none)')).",
        });
      }
    }
    ddl.push(`CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (${cols.join(', ')})`);
    return ddl;
  }

  private async serverVersion(client: pg.Client): Promise<number> {
    if (this.version === null) {
      const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
      this.version = Number(rows[0]?.v ?? 0);
    }
    return this.version;
  }
}

/**
 * Columns the sink lacks are added (a later schema of the same table); anything else that
 * differs is a mismatch. Added columns are nullable: rows already in the sink have no value.
 */
function alterDdl(table: TableSchema, existing: readonly SinkColumn[]): string[] {
  const byName = new Map(existing.map((c) => [c.name, c]));
  const problems: string[] = [];
  const add: string[] = [];
  for (const g of table.generated ?? []) byName.delete(g.name);
  table.columns.forEach((c, i) => {
    const have = byName.get(c.name);
    byName.delete(c.name);
    if (!have) add.push(`ADD COLUMN ${quoteIdent(c.name)} ${c.typeName}`);
    else if (!sameType(have.type, c.typeName))
      problems.push(`${c.name} is ${have.type}, source has ${c.typeName}`);
    else if (have.isKey !== (table.keyColumns.includes(i) && !table.keyless)) {
      problems.push(`${c.name} is ${have.isKey ? '' : 'not '}in the sink's primary key`);
    }
  });
  for (const extra of byName.values()) problems.push(`${extra.name} (${extra.type}) is not in the source`);
  if (problems.length > 0) {
    throw new TidemarkError('SINK_SCHEMA_MISMATCH', {
      detail: `${qualifiedName(table)}: ${problems.join('; ')}`,
    });
  }
  return add.length > 0 ? [`ALTER TABLE ${quoteTable(table)} ${add.join(', ')}`] : [];
}

/** format_type() output; the schema prefix is optional because it depends on search_path. */
function sameType(sink: string, source: string): boolean {
  const bare = (t: string) => t.replace(/^("[^"]+"|[a-z_][a-z0-9_$]*)\./, '');
  return sink === source || bare(sink) === bare(source);
}

/**
 * A map key for a schema-qualified name. Not `schema.name`: `"a.b"."c"` and `"a"."b.c"` are two
 * tables.
 */
export function nameKey(t: { schema: string; name: string }): string {
  return JSON.stringify([t.schema, t.name]);
}

function signature(table: TableSchema): string {
  return JSON.stringify([
    table.columns.map((c) => [c.name, c.typeName, c.nullable]),
    table.keyColumns,
    table.keyless,
    table.generated ?? [],
  ]);
}
