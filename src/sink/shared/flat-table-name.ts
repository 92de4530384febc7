/**
 * One identifier for a schema-qualified table, for stores where the sink writes every table into
 * one namespace (a SQLite file, a MySQL database): a table of `public` keeps its name; any other
 * is `schema.name`. A `.` or `%` inside a part is escaped (`%2E`, `%25`) — in a `public` name too —
 * so that the mapping is one-to-one: `"a.b"."c"` → `a%2Eb.c`, `"a"."b.c"` → `a.b%2Ec`,
 * `public."a.b"` → `a%2Eb`, and a plain `public` name has no `.` at all.
 */
export function flatTableName(t: { schema: string; name: string }): string {
  const escape = (part: string) => part.replaceAll('%', '%25').replaceAll('.', '%2E');
  return t.schema === 'public' ? escape(t.name) : `${escape(t.schema)}.${escape(t.name)}`;
}
