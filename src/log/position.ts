/**
 * A position in a source's commit order (ARCHITECTURE.md "position").
 *
 * Positions are immutable value objects with a total order. `toString()` is the canonical,
 * persisted form (for PostgreSQL the LSN text form `16/B374D848`, so `position::pg_lsn` works);
 * `sortKey()` is a fixed-width string whose lexical order equals the position order, for stores
 * that can only compare strings (LMDB keys, file names).
 */
export interface Position {
  /** Negative, zero or positive as this is before, equal to or after `other`. */
  compare(other: Position): number;
  equals(other: Position): boolean;
  toString(): string;
  sortKey(): string;
}

export function maxPosition<P extends Position>(a: P, b: P): P {
  return a.compare(b) >= 0 ? a : b;
}
