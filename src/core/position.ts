/**
 * A position in a source's commit order (ARCHITECTURE.md "position").
 *
 * Positions are immutable value objects with a total order, opaque to everything but their
 * connector: the change hub, the pipeline and the sinks only compare, print and store them
 * through the connector's `PositionCodec`. Parse a position once, at the boundary where its text
 * or bytes enter (a sink's checkpoint row, the log, an API argument); never re-parse a string.
 */
export interface Position {
  /** Negative, zero or positive as this is before, equal to or after `other` (same codec). */
  compare(other: Position): number;
  equals(other: Position): boolean;
  /**
   * The canonical, persisted text form, as the source itself prints it (PostgreSQL: the LSN
   * `16/B374D848`, so `position::pg_lsn` works; MariaDB: a GTID list). Stored in checkpoints.
   */
  toString(): string;
  /** A fixed-width string whose plain order equals the position order (file names, sorting). */
  sortKey(): string;
}

/**
 * How one kind of source's positions enter and leave Tidemark. `encode` is compact and
 * self-delimiting only within its buffer; `decode(encode(p))` equals `p`; `parse(p.toString())`
 * equals `p`. Both throw POSITION_INVALID (naming the text or the bytes) on malformed input.
 */
export interface PositionCodec<P extends Position = Position> {
  /** The connector kind these positions belong to (`postgres`, `mysql`). */
  readonly kind: string;
  parse(text: string): P;
  encode(position: P): Buffer;
  decode(bytes: Buffer): P;
  /**
   * Bytes of source log between `from` and `to` when the source can tell (PostgreSQL: LSN
   * difference), else null. For lag in bytes only; never for ordering.
   */
  distanceBytes(from: P, to: P): number | null;
}

export function maxPosition<P extends Position>(a: P, b: P): P {
  return a.compare(b) >= 0 ? a : b;
}
