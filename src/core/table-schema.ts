/**
 * The shape of a replicated table as the source describes it at a position. Column types are
 * PostgreSQL's (the source dialect and the pivot for every sink's type mapping).
 */
export interface ColumnSchema {
  readonly name: string;
  /** pg_type OID of the column's type (for arrays, the array type's OID). */
  readonly typeOid: number;
  /** atttypmod, -1 when none. */
  readonly typeMod: number;
  /** `format_type(oid, typmod)` on the source, e.g. `numeric(12,2)`, `text[]`, `public.mood`. */
  readonly typeName: string;
  /** True when the column is part of the table's key (primary key, or replica identity index). */
  readonly isKey: boolean;
  readonly nullable: boolean;
  /**
   * The source's own id of the column within its table, stable across renames (PostgreSQL: the
   * attnum), when the source has one: schema changes are diffed by it (a rename is not a drop and
   * an add). Absent when the shape came from where the source does not say it.
   */
  readonly sourceId?: number;
}

/** A user-defined enum the table uses; sinks that create tables create these first. */
export interface EnumType {
  readonly schema: string;
  readonly name: string;
  readonly labels: readonly string[];
}

/**
 * A column the source computes from the others (`GENERATED ALWAYS AS (expression) STORED`).
 * Logical replication does not send its values; a sink that can compute the same expression
 * (PostgreSQL) creates it as a generated column, the others leave it out.
 */
export interface GeneratedColumn {
  readonly name: string;
  readonly typeName: string;
  /** The expression as the source prints it (`pg_get_expr`), over the table's column names. */
  readonly expression: string;
  /** Its place among all the table's columns, generated ones included (0-based): tables are created in the source's order. */
  readonly position: number;
}

export interface TableSchema {
  readonly schema: string;
  readonly name: string;
  /** The source's identifier for the table (pg_class OID); stable for the table's lifetime. */
  readonly relationId: number;
  readonly columns: readonly ColumnSchema[];
  /**
   * Indexes into `columns` of the key used to collapse and apply changes. Empty for a table
   * replicated by REPLICA IDENTITY FULL without a key: rows then match on all columns and
   * duplicates are kept (see `keyless`).
   */
  readonly keyColumns: readonly number[];
  /** True when the table has no key: changes apply as row multisets. */
  readonly keyless: boolean;
  readonly enums: readonly EnumType[];
  /** Generated columns (not in `columns`: rows carry no cells for them). */
  readonly generated?: readonly GeneratedColumn[];
}

/** `schema.name`, quoted only where the name needs it, for messages and map keys. */
export function qualifiedName(t: { schema: string; name: string }): string {
  return `${t.schema}.${t.name}`;
}

/** A SQL identifier in double quotes, safe for any name. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteTable(t: { schema: string; name: string }): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}
