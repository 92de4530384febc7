import type { Cell, Row } from '../decode/row.ts';
import type { TableSchema } from '../decode/table-schema.ts';

/**
 * The contract every sink fulfils. A changefeed drives one sink:
 *
 *   open() ──► checkpoint? ──┬─ null ──► writeSnapshot(tables, rows, at P) ─┐
 *                            └─ C ───────────────────────────────────────────┴─► commitEpoch(e1),
 *                                                                               commitEpoch(e2), …
 *   an epoch too large for memory, in place of its commitEpoch:
 *     beginEpoch() ──► writer.applyChunk(c1), applyChunk(c2), … ──► writer.commit(e)   (or abort())
 *
 * Exactly-once rests on one rule: **the data of an epoch and the checkpoint row naming its end
 * are made visible together, or not at all.** A crash between calls loses nothing (the source is
 * acknowledged only after `commitEpoch` / `EpochWriter.commit` resolves) and duplicates nothing
 * (on restart `open()` returns the checkpoint, and the runtime discards everything at or before
 * it). An epoch written in chunks is still one downstream transaction (one commit point for
 * file and NATS), so the rule holds for it unchanged.
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

  /**
   * Opens the downstream transaction of an epoch too large to hold in memory; its changes then
   * come as ordered chunks (`EpochWriter`). Preconditions as `commitEpoch`: after `open()`, never
   * while another epoch is being committed or written (a second open writer is refused with
   * INTERNAL). Nothing is visible until `EpochWriter.commit` resolves. `commitEpoch(e)` is
   * exactly `beginEpoch()` then `commit(e)`. Sinks may defer the actual BEGIN to the first chunk.
   */
  beginEpoch(): Promise<EpochWriter>;

  /** Releases connections. Safe to call at any time, more than once; commits nothing. */
  close(): Promise<void>;
}

/**
 * One epoch being written in chunks, inside one downstream transaction (or, for file and NATS,
 * before one commit point). Calls are strictly sequential: at most one is pending, and none after
 * `commit` resolved or after any call failed — except `abort`. When `applyChunk` or `commit`
 * rejects, the sink has already discarded the transaction (nothing of it is visible) and the
 * writer is finished; the runtime may then retry the same epoch from its checkpoint, with
 * `commitEpoch` or a new writer.
 *
 *   open ──applyChunk──► open ──commit──► committed
 *     │                   │
 *     └──abort / a call fails──► finished (rolled back; abort again is a no-op)
 */
export interface EpochWriter {
  /**
   * Applies the net effect of the next run of changes, after all earlier chunks; invisible until
   * `commit`. Each TableChanges is computed against the downstream state as the earlier chunks
   * left it (a partial update or a `fromKey` reads the row as written by them; a truncate empties
   * the table at this point) and is applied in the usual order within the chunk. New tables and
   * added columns are created inside the transaction (MySQL: see its sink). Memory is bounded by
   * the chunk: the sink keeps nothing of it once the promise resolves.
   */
  applyChunk(tables: readonly TableChanges[]): Promise<void>;

  /**
   * Applies the last chunk (`epoch.tables`, may be empty) and the checkpoint `epoch.checkpoint`,
   * and commits: when it resolves, every chunk and the checkpoint are durable and visible
   * together. Rejects with SINK_CHECKPOINT_AHEAD (rolling back) if the store already holds this
   * epoch or a later one, where the sink checks that.
   */
  commit(epoch: Epoch): Promise<void>;

  /**
   * Discards the transaction: nothing of it becomes visible (NATS: the chunk messages stay in the
   * stream, but no marker ever commits them). Idempotent; safe after a failure, after `commit`
   * (then a no-op) and while another call is pending (it waits for it first).
   */
  abort(): Promise<void>;
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
 * truncate; partial updates that have a `fromKey` (they read the old row as it was when the
 * epoch — or the chunk — began); deletes; upserts; partial updates without `fromKey`. Deletes,
 * upserts and partial updates are disjoint by key.
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
