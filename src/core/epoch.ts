/**
 * An epoch and its parts: the unit of work and of commit (ARCHITECTURE.md "epoch"). Built by the
 * pipeline from the change hub's transactions, collapsed per key, and handed to a sink
 * (`sink/sink.ts`) together with the checkpoint naming its end.
 */
import type { PackedCells } from './packed-cells.ts';
import type { Cell, Row } from './row.ts';
import type { TableSchema } from './table-schema.ts';

export interface Checkpoint {
  /** The source position in its canonical text form (for PostgreSQL, the commit LSN). */
  readonly position: string;
  /** 0 for the snapshot, then 1, 2, … */
  readonly epoch: number;
}

/** Rows of one table, a chunk at a time, during the snapshot. */
export interface SnapshotRows {
  readonly table: TableSchema;
  /** The rows as cells (for a chunk carrying `copyText`, decoded from it on first access). */
  readonly rows: readonly Row[];
  /**
   * The same rows as PostgreSQL COPY text (default options: tab-separated, `\N` for NULL, backslash
   * escapes, each row ended by a newline, UTF-8) and how many there are, when the source read them
   * so. A sink whose input takes that text may send the bytes as they are instead of encoding
   * `rows` again; anything else reads `rows`.
   */
  readonly copyText?: { readonly bytes: Buffer; readonly rows: number };
}

/** How many rows a snapshot chunk holds, without decoding a `copyText` chunk. */
export function snapshotRowCount(chunk: SnapshotRows): number {
  return chunk.copyText?.rows ?? chunk.rows.length;
}

/**
 * All changes of the source transactions in one interval `(previous checkpoint, checkpoint]`,
 * collapsed per key: at most one final operation per key and table. Given to
 * `EpochWriter.commit`, `tables` is only the last chunk (the earlier ones were applied already).
 */
export interface Epoch {
  readonly checkpoint: Checkpoint;
  /** Source commit time of the last transaction in the epoch (ms since the Unix epoch). */
  readonly commitTimeMs: number;
  /** Number of source row changes the whole epoch was built from (before collapsing; all chunks). */
  readonly sourceChanges: number;
  readonly tables: readonly TableChanges[];
}

/**
 * The net effect of an epoch (or of one chunk of it) on one table. Apply in this order:
 * truncate; partial updates that have a `fromKey`; deletes; upserts; partial updates without
 * `fromKey`. Deletes, upserts and partial updates are disjoint by key.
 *
 * The partial updates with a `fromKey` all read their old rows as they were when the epoch — or
 * the chunk — began, before any of them is written: a chain `UPDATE … SET id = 3 WHERE id = 2;
 * UPDATE … SET id = 2 WHERE id = 1` gives `3 from 2` and `2 from 1`, and the row moved to 3 is the
 * old 2, not the 1 that arrives at 2 (cycles too: `1 from 2`, `2 from 1` swaps). The new key may
 * hold a row: it is overwritten. The old row's removal is a delete, unless its key is itself
 * written by the epoch.
 */
export interface TableChanges {
  readonly table: TableSchema;
  /** Empty the table first (a TRUNCATE in the source inside this epoch). */
  readonly truncate: boolean;
  /** Keyed tables: rows whose key columns identify the rows to delete (other cells are null). */
  readonly deletes: readonly Row[];
  /** Keyed tables: full rows to insert or to overwrite by key. */
  readonly upserts: readonly Row[];
  /**
   * Keyed tables: updates of rows that exist downstream where some cells are UNCHANGED (TOAST
   * values the source did not log): only the other columns are written. `fromKey`, when set, is
   * the old key of a key-changing update: the row is written under its new key with the
   * unchanged cells copied from the row at `fromKey` as the epoch began (see above). When the old
   * row is not in the store, the update writes nothing.
   */
  readonly partialUpdates: readonly PartialUpdate[];
  /** Keyless tables: the net count of each distinct row (+n insert n copies, −n delete n). */
  readonly rowDeltas: readonly RowDelta[]; /**
   * The same rows as `deletes` and `upserts`, in the same order, some still packed
   * (core/packed-cells.ts) as the change log held them: a sink that writes bytes reads these
   * instead, making no string per cell. Present only where the epoch builder made the object: a
   * copy that rewrites `deletes` or `upserts` must not carry these over.
   */
  readonly deletesPacked?: readonly (Row | PackedCells)[];
  readonly upsertsPacked?: readonly (Row | PackedCells)[];
}

export interface PartialUpdate {
  readonly row: readonly Cell[];
  readonly fromKey: Row | null;
}

export interface RowDelta {
  readonly row: Row;
  readonly count: number;
}
