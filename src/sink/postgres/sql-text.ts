/**
 * SQL text helpers for statements the sink sends as one multi-statement simple query (so an
 * epoch costs one round trip). Literals rely on `standard_conforming_strings = on`, which the
 * sink sets for its session: a backslash inside quotes is then an ordinary character.
 */

/** A string literal, or NULL. */
export function quoteLiteral(value: string | null): string {
  return value === null ? 'NULL' : `'${value.replaceAll("'", "''")}'`;
}
