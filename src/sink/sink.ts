import type { SchemaChange } from '../core/schema-change.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { Checkpoint, Epoch, SnapshotRows, TableChanges } from '../core/epoch.ts';
import type { SinkReadSession } from '../core/table-read.ts';

/**
 * The contract every sink fulfils. A changefeed drives one sink:
 *
 *   open() ──► checkpoint? ──┬─ null ──► writeSnapshot(tables, rows, at P, epoch 0) ──────┐
 *                            ├─ C ─────────────────────────────────────────────────────────┴─► commitEpoch(e1),
 *                            └─ C, but the runtime cannot continue from it (view state lost):    commitEpoch(e2), …
 *                                 writeSnapshot(tables, rows, at P, epoch C.epoch + 1) ──────┘
 *   an epoch too large for memory, or one holding a schema change, in place of its commitEpoch:
 *     beginEpoch() ──► writer.applyChunk(c1), applySchema(s), applyChunk(c2), … ──► writer.commit(e)
 *                                                                                 (or abort())
 *
 * Exactly-once rests on one rule: **the data of an epoch and the checkpoint row naming its end
 * are made visible together, or not at all.** A crash between calls loses nothing (the source is
 * acknowledged only after `commitEpoch` / `EpochWriter.commit` resolves) and duplicates nothing
 * (on restart `open()` returns the checkpoint, and the runtime discards everything at or before
 * it). An epoch written in chunks is still one downstream transaction (one commit point for
 * file and NATS), so the rule holds for it unchanged.
 *
 * **One writer.** Two processes may run the same changefeed against one store (a restart while
 * the old process still runs, a copy of the config on another host). Every commit is therefore
 * *fenced*: an epoch, a snapshot or a chunked epoch commits only if the store still holds the
 * checkpoint this instance last read (`open()`) or last committed — compared inside the commit's
 * own transaction, or by the store's own compare-and-set where it has no transactions. Otherwise
 * nothing of it becomes visible and the call rejects with SINK_FENCED (never retriable), naming
 * the checkpoint found and, where the store records it, the writer that committed it. Epoch
 * numbers grow by one from commit to commit, so the checkpoint never moves backwards; a
 * checkpoint at or before the one held is refused with SINK_CHECKPOINT_AHEAD. How each store
 * fences (the strongest it allows) is in `docs/sinks.md`, "Fencing".
 *
 * **Keys.** Key cells may be NULL: a view grouped by a nullable column has a NULL group. Sinks
 * match keys null-safely (NULL is equal to NULL) in upserts, deletes and partial updates, and key
 * text compares exactly (`'a'` and `'a '` are two keys).
 */
export interface Sink {
  /** What a downstream reader can rely on; never silently weaker than declared. */
  readonly guarantee: 'exactly-once' | 'effectively-once';

  /**
   * True when `writeSnapshot` may be called again after it committed, for further tables at the
   * same position and the next epoch, each call creating, emptying and filling only its own tables
   * in one transaction (a reader sees each table absent or whole). The runtime then commits a new
   * changefeed's snapshot table by table, so that a crash keeps the tables already committed.
   * Not for stores where a snapshot replaces everything before it (files, NATS).
   */
  readonly snapshotsByTable?: boolean;

  /**
   * Connects, creates the sink's own bookkeeping (e.g. `tidemark.checkpoints`) if missing, and
   * returns this changefeed's last committed checkpoint, or null if it never committed here.
   * Called once, first. Makes nothing visible to readers of the replicated tables. What it
   * returns is what this instance's first commit is fenced on.
   */
  open(): Promise<Checkpoint | null>;

  /**
   * Writes a snapshot: creates the target tables if missing (failing with SINK_SCHEMA_MISMATCH if
   * one exists with other columns), empties them, writes every row, and commits them together
   * with the checkpoint `at` — one downstream transaction where the store allows, so a reader
   * sees either what was there before or all of the snapshot, never a mix or an empty table.
   * Called once, after `open()` (or, with `snapshotsByTable`, once per group of tables, at epochs
   * growing by one): when it returned null, `at.epoch` is 0; when it returned a
   * checkpoint C (the runtime cannot continue from C, e.g. its view state is lost), the snapshot
   * *replaces* the data at a later position and `at.epoch` is C.epoch + 1 (file and NATS mark
   * such a commit so that readers start over from it). Fenced on what `open()` returned: null
   * → no checkpoint may exist by the commit; C → the store must still hold C; else SINK_FENCED.
   * `chunks` is consumed at the sink's own pace (back-pressure); if it throws, nothing is
   * committed. With `options.append` (only where `snapshotsByTable`) the tables are not emptied:
   * the rows add to those an earlier call committed (a large table's snapshot committed in parts,
   * into its online copy's shadow).
   */
  writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
    options?: SnapshotWriteOptions,
  ): Promise<void>;

  /**
   * Applies one epoch and advances the checkpoint to `epoch.checkpoint`, atomically. Target tables
   * for schemas not seen before are created (or altered: added columns) inside the same
   * transaction. Preconditions: `open()` returned, epochs are given in order with increasing
   * positions and epoch numbers one above the last, and never two at once. When the promise
   * resolves the epoch is durable and visible; when it rejects nothing of it is visible, and the
   * runtime may retry the same epoch — unless the error is SINK_FENCED: another writer committed
   * meanwhile, and this instance can commit nothing any more.
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

  /**
   * Opens a read-only session inside one consistent snapshot of the downstream (`core/table-read.ts`):
   * the changefeed's checkpoint and the rows of the tables as that snapshot holds them, in the
   * pivot text form. For `tidemark verify` and the reconcile of a non-empty target; independent of
   * `open()` and of any epoch being written (its own connection); writes nothing. Offered by the
   * SQL sinks; absent for stores that cannot be read back by key (NATS, files).
   */
  openRead?(): Promise<SinkReadSession>;

  /** Releases connections. Safe to call at any time, more than once; commits nothing. */
  close(): Promise<void>;
}

export interface SnapshotWriteOptions {
  /** Keep the tables' rows (see `Sink.writeSnapshot`). */
  readonly append?: boolean;
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
   * Applies a schema change (a barrier) at this point of the epoch: after every chunk applied so
   * far, before any chunk applied after it, whose rows follow the new shape. PostgreSQL and
   * SQLite run the equivalent DDL inside the epoch's transaction, visible with its commit (added
   * columns show the value existing rows got in the source; renames rename). A store whose DDL
   * commits implicitly says in its own doc how a crash between the DDL and the commit recovers;
   * NATS and file sinks write a schema-change record. Never given a change that needs a re-copy
   * (`recopy` set) or a dropped table the changefeed keeps. Same sequencing as `applyChunk`.
   */
  applySchema(change: SchemaChange): Promise<void>;

  /**
   * Replaces the rows of `table` with those of `shadow` and drops the shadow, at this point of the
   * epoch, visible with its commit (an online copy complete: `runtime/table-copy.ts`). `shadow` is
   * a table this changefeed created and filled in earlier epochs or chunks, with `table`'s columns.
   * `table` takes `table`'s shape: created if missing, recreated if its shape differs beyond
   * columns the source added. Readers see the old rows (or no table) until the commit, then all
   * of the new ones; how strictly a reader inside an older snapshot is kept from the shadow
   * depends on the store, as each sink's doc says (PostgreSQL keeps the table's identity and moves
   * the rows, because a renamed shadow would show such a reader a partial table). Same sequencing
   * as `applyChunk`.
   */
  replaceTable(table: TableSchema, shadow: TableSchema): Promise<void>;

  /**
   * Applies the last chunk (`epoch.tables`, may be empty) and the checkpoint `epoch.checkpoint`,
   * and commits: when it resolves, every chunk and the checkpoint are durable and visible
   * together. Fenced like `commitEpoch`: rejects with SINK_FENCED (rolling back every chunk) if
   * the store no longer holds the checkpoint this instance last read or wrote.
   */
  commit(epoch: Epoch): Promise<void>;

  /**
   * Discards the transaction: nothing of it becomes visible (NATS: the chunk messages stay in the
   * stream, but no marker ever commits them). Idempotent; safe after a failure, after `commit`
   * (then a no-op) and while another call is pending (it waits for it first).
   */
  abort(): Promise<void>;
}
