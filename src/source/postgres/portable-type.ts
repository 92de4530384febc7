/**
 * The type a column is described with (`ColumnSchema.typeName`): the one SQL expression shared by
 * the catalog reader, the schema-change trigger and the tracker's type lookups, so that the three
 * always agree on a column's type text. Built-in types keep their `format_type` name; a domain
 * becomes its base type; an enum (or an array of one) its schema-qualified name; other
 * user-defined types (composites, ranges of them, extension types) travel as text.
 *
 * Aliases expected: `t` pg_type of the column, `tn` its namespace, `et` the element type for
 * arrays (LEFT JOIN, may be NULL), `etn` that element's namespace; `typmod` the column's typmod.
 */
export function portableTypeSql(typmod: string): string {
  return `CASE
    WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
    WHEN t.typtype = 'e' THEN quote_ident(tn.nspname) || '.' || quote_ident(t.typname)
    WHEN et.typtype = 'e' THEN quote_ident(etn.nspname) || '.' || quote_ident(et.typname) || '[]'
    WHEN tn.nspname = 'pg_catalog' THEN format_type(t.oid, ${typmod})
    ELSE 'text' END`;
}

/** The enum type of a column (or of its array's elements), by oid, or NULL: same aliases. */
export const ENUM_OID_SQL = `CASE WHEN t.typtype = 'e' THEN t.oid WHEN et.typtype = 'e' THEN et.oid END`;

/** The joins the two expressions above need, from a column's type oid `typeOid`. */
export function typeJoinsSql(typeOid: string): string {
  return `JOIN pg_type t ON t.oid = ${typeOid}
       JOIN pg_namespace tn ON tn.oid = t.typnamespace
       LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
       LEFT JOIN pg_namespace etn ON etn.oid = et.typnamespace`;
}
