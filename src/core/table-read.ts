/**
 * Reading tables back for comparison (`tidemark verify`, reconcile of a non-empty target): a
 * read-only session on one database, every read inside one consistent snapshot of it, rows in
 * the pivot text form (`row.ts`) whatever the store keeps. The source's connector and every SQL
 * sink offer one; `verify/` compares them without knowing either database.
 *
 * Key ranges are expressed with key cells in the pivot text form and evaluated by each database
 * in its own order: two databases may order some keys differently (collations, numeric stored
 * as text in SQLite), so a row may fall into a range on one side and a neighbouring range on the
 * other. Callers that compare ranges therefore match the rows of differing ranges by key across
 * the whole table, never only within one range.
 */
import type { Checkpoint } from './epoch.ts';
import type { Position } from './position.ts';
import type { Row } from './row.ts';
import type { TableSchema } from './table-schema.ts';

/** Keys `k` with `lower < k ≤ upper` (row comparison over the key columns); null: unbounded. */
export interface KeyRange {
  readonly lower: Row | null;
  readonly upper: Row | null;
}

export const WHOLE_TABLE: KeyRange = { lower: null, upper: null };

export interface TableReadSession {
  /**
   * Rows of `table` whose key lies in `range` (a keyless table: only WHOLE_TABLE), in no
   * particular order, in batches, every cell in the pivot text form (`t`/`f`, `\x…` bytea, …).
   * A table the store does not hold reads as empty.
   */
  readRows(table: TableSchema, range: KeyRange): AsyncIterable<readonly Row[]>;
  /** Ends the snapshot and releases the connection. Idempotent. */
  close(): Promise<void>;
}

/** A read of the source (`SourceConnector.openRead`). */
export interface SourceReadSession extends TableReadSession {
  /**
   * Every transaction whose changes the reads see committed at or before this position (it may
   * be later than the last of them: an upper bound).
   */
  readonly position: Position;
  /**
   * Key values cutting `table` into ranges of about `chunkRows` rows, ascending in the source's
   * order: ranges `(-∞, b0], (b0, b1], …, (bn, +∞)`. Empty for a keyless or small table.
   */
  chunkBounds(table: TableSchema, chunkRows: number): Promise<Row[]>;
  /**
   * A digest of the row versions in `range`: it differs between two sessions whenever any row of
   * the range was inserted, updated (even to the same values) or deleted between their snapshots.
   * Null when the source cannot tell (the caller then compares the rows' values instead).
   */
  rangeVersion(table: TableSchema, range: KeyRange): Promise<string | null>;
}

/** A read of a downstream (`Sink.openRead`). */
export interface SinkReadSession extends TableReadSession {
  /** The changefeed's checkpoint as the same snapshot sees it (null: none committed). */
  readonly checkpoint: Checkpoint | null;
  /**
   * The stored rows of `table` with these keys (keyed tables only), in no particular order; keys
   * not stored are left out.
   */
  readRowsByKeys(table: TableSchema, keys: readonly Row[]): Promise<Row[]>;
  /** True when the store holds the table with at least one row. */
  hasRows(table: TableSchema): Promise<boolean>;
}
