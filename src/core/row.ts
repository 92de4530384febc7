/**
 * Rows travel through Tidemark in the source's text form: one cell per column, holding exactly
 * what PostgreSQL's type output function printed (the same bytes in `COPY TO` and in pgoutput, as
 * both run with the session settings in `source/postgres/session-settings.ts`). Text form is
 * lossless for every type (numeric, timestamptz, intervals, arrays, json) and lets a PostgreSQL
 * sink apply rows without re-encoding. `decode/pg-values.ts` turns cells into typed values for
 * views and for sinks that need them.
 */

/** Marks a TOASTed column the source left out of an update because it did not change. */
export const UNCHANGED = Symbol.for('tidemark.unchanged-toast');
export type Unchanged = typeof UNCHANGED;

/** A column value: text form, SQL NULL, or "unchanged" (only ever in an update's new row). */
export type Cell = string | null | Unchanged;

/** A full row: every cell is a value or NULL. */
export type Row = (string | null)[];

export function hasUnchanged(row: readonly Cell[]): boolean {
  for (const c of row) if (c === UNCHANGED) return true;
  return false;
}
