/**
 * The contract between one kind of source database and the rest of Tidemark.
 *
 *   check()          prerequisites, each with a fix                      (doctor, start, API create)
 *   describe(sel)    selection ─► TableSchema[] with stable ids; refuses what cannot be replicated
 *   capture(tables)  changes of these tables flow from now on (PostgreSQL: the publication)
 *   replicate(after) ─► batches of SourceEvent: begin · (change | schema)* · commit(position) …
 *                          ▲ in commit order, only transactions committed after `after`
 *   session.acknowledge(P) ◄── the hub: every subscriber's sink durably holds everything ≤ P
 *   snapshot(tables) ─► rows of each table as of one position P; replicate(after P) has no gap
 *
 * A connector knows its database and nothing downstream of the change hub. Everything it hands
 * out is in the core model: positions through its `PositionCodec`, tables as `TableSchema` (stable
 * id, columns typed in the pivot type system: PostgreSQL's type names), rows as cells in text form
 * (`decode/row.ts`), schema changes as `SchemaChange` barriers. One connector instance serves one
 * source database (`sourceKey`) for one engine; the hub owns its replication session.
 */
import type { Position, PositionCodec } from '../core/position.ts';
import type { ChangeEvent } from '../core/change.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { TidemarkError } from '../errors/tidemark-error.ts';
import type { SnapshotRows } from '../core/epoch.ts';
import type { Row } from '../core/row.ts';
import type { SourceReadSession } from '../core/table-read.ts';

export interface SourceConnector<P extends Position = Position> {
  /** `postgres`, `mysql`: the URI scheme family. */
  readonly kind: string;
  /**
   * Names the source database for the engine: one change hub (and one local log directory) per
   * key. Stable across restarts, free of credentials, safe as a file name.
   */
  readonly sourceKey: string;
  readonly positions: PositionCodec<P>;
  /**
   * What this source cannot do as it is set up, in sentences for the changefeed's status (for
   * PostgreSQL without a superuser: schema changes are seen only through Relation messages).
   * Known once `capture` ran; empty when nothing is degraded.
   */
  readonly limitations: readonly string[];

  /**
   * Checks every prerequisite for replicating `tables` (or the server alone when omitted):
   * reachable, settings, privileges, table shapes. Never changes the source. Failures are listed,
   * each with what and how to fix; a connection failure rejects with its TidemarkError.
   */
  check(tables?: readonly TableSchema[]): Promise<CheckResult[]>;

  /**
   * Resolves a selection (`schema.table` names and globs, see `core/selection.ts`) to the tables
   * it names now, in a stable order, described as the source defines them. Rejects with a clear
   * TidemarkError when a named table is missing, nothing matches, or a table named exactly cannot
   * be replicated safely (no key and no full row image; a replica identity that would make the
   * source's own writes fail once published); such a table matched only by a pattern is left out
   * with its reason instead. Read-only.
   *
   * `knownTables`: the tables the log already holds (by stable id), so a table renamed while
   * Tidemark was stopped is described under the id it had — for sources whose ids are assigned
   * by the connector (MySQL: no catalog id survives a rename and a rebuild). Sources with a
   * catalog id (PostgreSQL's OID) may ignore it.
   */
  describe(selection: readonly string[], options?: DescribeOptions): Promise<DescribedSelection>;

  /** Every user table, described without requiring a key (the catalog views are planned against). */
  describeAll(): Promise<TableSchema[]>;

  /**
   * Makes the changes of `tables` flow through replication from now on (PostgreSQL: adds them to
   * the source's publication) and, where the source can, those of tables created later that
   * `selection` matches, from their creation (so a `table-created` barrier is followed by every
   * row of the new table). Idempotent; concurrent calls are serialised; never removes a table
   * another subscriber captures. Resolves once a transaction committed after it includes them.
   */
  capture(tables: readonly TableSchema[], selection?: readonly string[]): Promise<void>;

  /**
   * Opens the source's replication: transactions committed after `options.after` (the hub's log
   * end), or — for a new log, `after` null — from the earliest point the source guarantees (a new
   * slot's consistent point). Rejects with SOURCE_SLOT_LOST / SOURCE_SLOT_AHEAD (or the source's
   * equivalent: binlog purged) when the source can no longer deliver everything after `after`.
   * At most one session per connector at a time.
   */
  replicate(options: ReplicateOptions<P>): Promise<ReplicationSession<P>>;

  /**
   * A consistent copy of `tables`: the rows as of one position P, and P itself, such that
   * `replicate` delivers exactly the transactions committed after P. `rows` may be consumed once,
   * at the consumer's pace; `release` frees what holds the snapshot (call it in any case).
   */
  snapshot(tables: readonly TableSchema[], options: SnapshotOptions): Promise<SourceSnapshot<P>>;

  /**
   * An online copy of one table (issue 12), read a key range at a time in short transactions,
   * each chunk bracketed by positions the pipeline reconciles with the stream. Optional: a
   * connector without it cannot add tables to a running changefeed. The table must be captured
   * (`capture`) before the first `read`.
   */
  openChunkReader?(table: TableSchema): ChunkReader<P>;

  /**
   * Opens a read-only session inside one consistent snapshot of the source, for comparing tables
   * (`tidemark verify`, reconcile): rows in key ranges, range bounds, row-version digests, and a
   * position bounding the commits the snapshot sees. Holds the snapshot until `close()`. Absent
   * for sources that cannot verify yet (the caller refuses with VERIFY_UNSUPPORTED).
   */
  openRead?(): Promise<SourceReadSession>;

  /**
   * Where the source's shared replication stands, read without opening a session: the source's
   * log end now, the position it was last acknowledged up to, and whether some process streams
   * it right now. For `tidemark status`; read-only; rejects for an unreachable source.
   */
  progress(): Promise<SourceProgress<P>>;

  /**
   * Bytes of its log the source keeps for Tidemark (PostgreSQL: the WAL the shared slot retains;
   * MySQL: the binlog after the oldest position still needed), or null when it cannot tell (no
   * slot yet). A gauge for operators; never throws for an unreachable source (null then).
   */
  retainedBytes(): Promise<number | null>;

  /**
   * Removes what `capture` and `replicate` made on the source (PostgreSQL: the slot, the
   * publication, the schema-change capture): the last changefeed of the source was removed. An
   * object another process still uses is left alone. Never called while a session is open.
   */
  dropSourceObjects(): Promise<void>;

  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

export interface DescribeOptions {
  readonly knownTables?: readonly TableSchema[];
}

/** A selection resolved: the tables to replicate, and those a pattern matched but cannot be. */
export interface DescribedSelection {
  readonly tables: TableSchema[];
  readonly leftOut: readonly {
    readonly schema: string;
    readonly name: string;
    readonly reason: TidemarkError;
  }[];
}

export interface SourceProgress<P extends Position = Position> {
  readonly end: P | null;
  readonly acknowledged: P | null;
  readonly streaming: boolean;
}

export interface ReplicateOptions<P extends Position = Position> {
  /** The hub's log end: deliver what committed after it. Null: a new log. */
  readonly after: P | null;
  /**
   * The shape of each table as the log last recorded it (by stable id), i.e. in force at `after`.
   * A schema change the source made while nobody was reading is diffed against these, so it
   * arrives as a `schema` event at its own position rather than being compared with the catalog
   * as it is now.
   */
  readonly knownTables: readonly TableSchema[];
  /**
   * Asked when the source can deliver only what committed after `earliest`, a position later
   * than `after` (it discarded what is between: a slot confirmed further, binlogs purged). True:
   * start there (the hub's subscribers need nothing older, and the hub restarts its log at
   * `earliest`); false: reject with SOURCE_SLOT_AHEAD (or the source's equivalent) naming both.
   */
  acceptStartAfter(earliest: P): boolean;
}

export interface ReplicationSession<P extends Position = Position> {
  /** Transactions committed after this position are delivered (for a new log: where it starts). */
  readonly start: P;
  /**
   * Events in commit order, in batches (whatever arrived together): each transaction is
   * `begin · (change | schema)* · commit`, contiguous, committed after `start`, never one twice.
   * A batch may be empty: the source sent a heartbeat and nothing else (`sourceEnd` is current,
   * the source is idle). A transaction may span batches (a huge one is never held whole).
   * Pull-based: nothing is read from the source faster than it is consumed. Ends (returns) only
   * after `close`; a lost connection or source error throws its TidemarkError.
   */
  readonly events: AsyncIterable<readonly SourceEvent<P>[]>;
  /**
   * Everything at or before `position` is durable downstream: the source may discard it
   * (PostgreSQL: the slot's confirmed position). Never called with a position not yet delivered;
   * positions only grow. No-op for sources without retention (MySQL).
   */
  acknowledge(position: P): void;
  /** The source's log end as last seen (lag in bytes), or null. */
  readonly sourceEnd: P | null;
  /**
   * Tables captured after the session started, in their shape now (their later schema changes
   * are diffed against it). Shapes the session already knows are kept.
   */
  learn(tables: readonly TableSchema[]): void;
  close(): Promise<void>;
}

/** One event of the replication stream: the core model's `ChangeEvent` (`core/change.ts`). */
export type SourceEvent<P extends Position = Position> = ChangeEvent<P>;

export interface SnapshotOptions {
  /** Connections reading at once. */
  readonly parallelism: number;
  /** Rows per key-range chunk. */
  readonly chunkRows: number;
  /** Bytes of rows read ahead of the consumer, at most (a share of the memory quota). */
  readonly bufferBytes?: number;
}

export interface SourceSnapshot<P extends Position = Position> {
  /** Every transaction committed at or before P is in the rows; none after it. */
  readonly position: P;
  readonly rows: AsyncIterable<SnapshotRows>;
  /**
   * The rows of some of the tables, read in the same snapshot (so at the same `position`); each
   * call reads them anew. Lets the runtime commit a snapshot table by table. Optional: a source
   * without it is read through `rows` only.
   */
  rowsOf?(tables: readonly TableSchema[]): AsyncIterable<SnapshotRows>;
  /**
   * The rows of one table with a key, in the same snapshot, in key order — the order and the key
   * comparison of `ChunkReader.read` — each batch naming its last row: the rows up to any batch
   * are the table's rows up to that key, a prefix an online copy of the table can go on from
   * (after `lastKey`). Lets the runtime commit a large table's snapshot in parts. Optional.
   */
  rowsInKeyOrder?(table: TableSchema): AsyncIterable<KeyOrderedRows>;
  release(): Promise<void>;
}

/** A batch of `SourceSnapshot.rowsInKeyOrder`. */
export interface KeyOrderedRows extends SnapshotRows {
  /** The batch's last row (its key cells are what `ChunkReader.read` takes as `after`). */
  readonly lastKey: Row;
}

/**
 * Reads one table in chunks (see `openChunkReader`). Calls are sequential.
 */
export interface ChunkReader<P extends Position = Position> {
  readonly table: TableSchema;
  /** The source's estimate of the table's rows (for progress), or null. */
  estimateRows(): Promise<number | null>;
  /**
   * The next chunk: up to `limit` rows whose key is after `after` (null: from the start), in key
   * order; a keyless table is read whole. The rows hold every transaction committed before `low`
   * and none committed at or after `high` (positions of commits as the stream reports them);
   * transactions committed in between may or may not be in it. A commit at or after `high` reaches
   * the stream promptly. With `each`, a keyless table's rows are handed to it in batches as they
   * are read, in the read's one snapshot, and the chunk's `rows` is empty: such a table is read
   * whole, and it may not fit in memory.
   */
  read(after: Row | null, limit: number, each?: (rows: readonly Row[]) => void): Promise<ChunkRead<P>>;
  close(): Promise<void>;
}

export interface ChunkRead<P extends Position = Position> {
  readonly rows: readonly Row[];
  readonly low: P;
  readonly high: P;
  /** The last row's cells (its key cells are the next chunk's `after`); null for a keyless table. */
  readonly lastKey: Row | null;
  /** No rows after this chunk (a keyless table: always). */
  readonly done: boolean;
  /**
   * Whether the rows hold the stream's transaction with this `txn` (its begin's), exactly; absent
   * where the source cannot tell. Lets a table without a key be reconciled with the stream.
   */
  readonly contains?: (txn: number) => boolean;
}

/** One prerequisite, checked. */
export interface CheckResult {
  /** Stable id, e.g. `wal_level`, `replica-identity:public.orders`. */
  readonly id: string;
  readonly ok: boolean;
  /** What was found, in a sentence. */
  readonly detail: string;
  /** How to fix it (for a failure). */
  readonly fix?: string;
  /** A failure that makes starting unsafe (else a warning). */
  readonly blocking: boolean;
}
