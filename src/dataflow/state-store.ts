/**
 * The one storage interface behind every operator's state. Operators never keep state anywhere
 * else, so the memory store (tests, small views) and the LMDB store (durable, larger than memory)
 * are interchangeable without touching operator code.
 *
 * Keys are `namespace | key`. A namespace belongs to one operator node (`n<id>.<part>`, assigned
 * by graph.ts in build order); keys inside it are built from prefix-free parts so that a prefix
 * scan returns exactly one group:
 *
 *   n3.l|<rowKey(joinKey)><rowKey(row)>             → count      join: left rows by join key
 *   n3.lc|<rowKey(joinKey)>                         → count      join: left multiplicity per key
 *   n5.g|<rowKey(groupKey)>                         → rows       aggregate: count, accumulators, last output
 *   n5.v2|<rowKey(groupKey)><orderKey(v)><rowKey([v])> → count   aggregate: ordered multiset of agg #2
 *   n7.r|<rowKey(partition)><orderKey(row)><rowKey(row)> → count top-n: rows of a partition, in order
 *   n4.c|<rowKey(row)>                              → count      distinct
 *
 * rowKey (row-key.ts) and orderKey (order-key.ts) are prefix-free; order keys are ASCII, so JS
 * string order and UTF-8 byte order (LMDB) agree wherever order matters. Values are strings
 * (value-codec.ts).
 *
 * Writes are grouped per epoch: `beginEpoch(n)` … reads see the epoch's own writes …
 * `commitEpoch(n)` makes them durable at once, together with `lastCommittedEpoch() = n`;
 * `abortEpoch()` forgets them. So after a crash the state is exactly that of the last committed
 * epoch.
 *
 * Undo of one epoch: `commitEpoch(n)` also stores, in the same atomic write, the previous values
 * of every key epoch n wrote (replacing the undo record of n−1), and `rollbackLastEpoch()`
 * restores the state of the epoch committed before n. The runtime commits view state BEFORE the
 * sink commits the epoch's output, so after a crash the state is at the sink's epoch or exactly
 * one ahead — and then it is rolled back once.
 */
export interface ScanOptions {
  /** Newest-first (descending key order); defaults to ascending. */
  readonly reverse?: boolean;
  /** At most this many entries. */
  readonly limit?: number;
  /** Ascending scans only: start after this key (within the prefix), to page through a scan. */
  readonly after?: string;
}

export interface StateStore {
  /**
   * The value stored under `key`, seeing this epoch's writes. May be called at any time; outside
   * an epoch it reads committed state.
   */
  get(ns: string, key: string): string | undefined;

  /** Stores `value` under `key`. Only inside an epoch; visible to reads of this epoch at once. */
  put(ns: string, key: string, value: string): void;

  /**
   * `put` of a key the caller knows holds no value (seeing this epoch's writes), e.g. a row of a
   * collection without duplicates that is inserted: a durable store then neither reads the key
   * nor logs a prior value for it beyond "absent". Only inside an epoch.
   */
  insert(ns: string, key: string, value: string): void;

  /** Removes `key` (no-op when absent). Only inside an epoch. */
  delete(ns: string, key: string): void;

  /**
   * The entries whose key starts with `prefix`, in key order (or reverse), as a snapshot array:
   * writes after the call do not change it. Sees this epoch's writes.
   */
  scanPrefix(ns: string, prefix: string, options?: ScanOptions): [key: string, value: string][];

  /**
   * Opens epoch `epoch` for writing. Precondition: no epoch is open and `epoch` is greater than
   * `lastCommittedEpoch()`.
   */
  beginEpoch(epoch: number): void;

  /**
   * Makes all writes of the open epoch `epoch` durable and visible atomically, together with the
   * epoch number. When the promise resolves, a reopened store shows exactly this state.
   */
  commitEpoch(epoch: number): Promise<void>;

  /** Discards the open epoch's writes (no-op when none is open). */
  abortEpoch(): void;

  /**
   * Restores the state committed before the last `commitEpoch` (its undo record), making
   * `lastCommittedEpoch()` the epoch before it (null when it was the first). Durable when the
   * promise resolves. Precondition: no epoch is open and the last commit was not already rolled
   * back (one level of undo: fails with DATAFLOW_EPOCH_ORDER otherwise).
   */
  rollbackLastEpoch(): Promise<void>;

  /** The epoch the stored undo record would roll back, or null when there is none. */
  undoableEpoch(): number | null;

  /** The last committed epoch, or null for a fresh store. */
  lastCommittedEpoch(): number | null;

  /** Releases resources; the open epoch, if any, is discarded. Safe to call more than once. */
  close(): Promise<void>;
}
