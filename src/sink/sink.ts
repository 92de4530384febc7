import type { Cell, Row } from '../decode/row.ts';
import type { TableSchema } from '../decode/table-schema.ts';

/**
 * The contract every sink fulfils. A changefeed drives one sink:
 *
 *   open() ──► checkpoint? ──┬─ null ──► writeSnapshot(tables, rows, at P) ─┐
 *                            └─ C ───────────────────────────────────────────┴─► commitEpoch(e1),
 *                                                                               commitEpoch(e2), …
 *
 * Exactly-once rests on one rule: **the data of an epoch and the checkpoint row naming its end
 * are made visible together, or not at all.** A crash between calls loses nothing (the source is
 * acknowledged only after `commitEpoch` resolves) and duplicates nothing (on restart `open()`
 * returns the checkpoint, and the runtime discards everything at or before it).
 */
export interface Sink {
  /** What a downstream reader can rely on; never silently weaker than declared. */
  readonly guarantee: 'exactly-once' | 'effectively-once';

  /**
   * Connects, creates the sink's own bookkeeping (e.g. `tidemark.checkpoints`) if missing, and
   * returns this changefeed's last committed checkpoint, or null if it never committed here.
   * Called once, first. Makes nothing visible to readers of the replicated tables.
   */
  open(): Promise<Checkpoint | null>;

  /**
   * Writes the initial snapshot: creates the target tables if missing (failing with
   * SINK_SCHEMA_MISMATCH if one exists with other columns), empties them, writes every row, and
   * commits them together with the checkpoint `at` — one downstream transaction where the store
   * allows, so a reader sees either nothing of the snapshot or all of it.
   * Called only after `open()` returned null. `chunks` is consumed at the sink's own pace
   * (back-pressure); if it throws, nothing is committed.
   */
  writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
  ): Promise<void>;

  /**
   * Applies one epoch and advances the checkpoint to `epoch.checkpoint`, atomically. Target tables
   * for schemas not seen before are created (or altered: added columns) inside the same
   * transaction. Preconditions: `open()` returned, epochs are given in order with increasing
   * positions, and never two at once. When the promise resolves the epoch is durable and visible;
   * when it rejects nothing of it is visible, and the runtime may retry the same epoch.
   */
  commitEpoch(epoch: Epoch): Promise<void>;

  /** Releases connections. Safe to call at any time, more than once; commits nothing. */
  close(): Promise<void>;
}

export interface Checkpoint {
  /** The source position in its canonical text form (for PostgreSQL, the commit LSN). */
  readonly position: string;
  /** 0 for the snapshot, then 1, 2, … */
  readonly epoch: number;
}

/** Rows of one table, a chunk at a time, during the snapshot. */
export interface SnapshotRows {
  readonly table: TableSchema;
  readonly rows: readonly Row[];
}

/**
 * All changes of the source transactions in one interval `(previous checkpoint, checkpoint]`,
 * collapsed per key: at most one final operation per key and table.
 */
export interface Epoch {
  readonly checkpoint: Checkpoint;
  /** Source commit time of the last transaction in the epoch (ms since the Unix epoch). */
  readonly commitTimeMs: number;
  /** Number of source row changes the epoch was built from (before collapsing). */
  readonly sourceChanges: number;
  readonly tables: readonly TableChanges[];
}

/**
 * The net effect of an epoch on one table. Apply in this order: truncate; partial updates that
 * have a `fromKey` (they read the old row as it was when the epoch began); deletes; upserts;
 * partial updates without `fromKey`. Deletes, upserts and partial updates are disjoint by key.
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
   * the old key of a key-changing update: the row is inserted under its new key with the
   * unchanged cells copied from the row at `fromKey` (whose removal is a separate delete).
   */
  readonly partialUpdates: readonly PartialUpdate[];
  /** Keyless tables: the net count of each distinct row (+n insert n copies, −n delete n). */
  readonly rowDeltas: readonly RowDelta[];
}

export interface PartialUpdate {
  readonly row: readonly Cell[];
  readonly fromKey: Row | null;
}

export interface RowDelta {
  readonly row: Row;
  readonly count: number;
}
