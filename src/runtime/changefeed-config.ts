/**
 * The validated, defaulted configuration of changefeeds, as the runtime receives it. Produced by
 * `cli/load-config.ts` from YAML, or by `defineChangefeed()` in code (tests, the demo).
 */

/** One changefeed: a source, the tables it selects, the views over them, one sink, options. */
export interface ChangefeedConfig {
  /** `[a-z0-9][a-z0-9_-]{0,40}`; names the slot and publication (see `replicationNameFor`). */
  id: string;
  /** postgres:// URI, environment variables already substituted. */
  source: string;
  /** URI; its scheme picks the sink. */
  sink: string;
  /** `schema.table`, `table` (= `public.table`), or glob patterns (`*`, `?`) like `sales.*`. */
  tables: string[];
  /** Derived tables maintained incrementally; may be empty. */
  views: { name: string; sql: string }[];
  epoch: { intervalMs: number; maxRows: number; maxBytes: number };
  heartbeatIntervalMs: number;
  /** Checkpoint lag within which the changefeed counts as healthy (the server's /readyz). */
  lagBudgetMs: number;
  snapshot: {
    parallelism: number;
    chunkRows: number;
    /** How long the snapshot may wait for the source's running transactions before naming them (retried). */
    startTimeoutMs: number;
  };
  memoryQuotaBytes: number;
  /** What a schema change in the source does to the changefeed (runtime/schema-barrier.ts). */
  schemaChanges: {
    dropTable: 'drop' | 'keep' | 'fail';
    renameTable: 'follow' | 'fail';
    /** A change whose rows the log does not carry (a volatile rewrite): copy the table again online, or stop. */
    recopy: 'copy' | 'fail';
  };
  /**
   * A target table that already holds rows when a new changefeed's initial snapshot starts
   * (`verify/non-empty-target.ts`): reconcile it by key, rewriting only differing rows; truncate
   * it inside the snapshot's transaction; or fail naming it.
   */
  onNonEmptyTarget: 'reconcile' | 'truncate' | 'fail';
  /**
   * Tables to copy again online (`Changefeed.resnapshot`), each request taken once: a request
   * string not yet taken for the table (recorded with the epoch that carries its copy) starts a
   * copy when the changefeed starts or its configuration is reloaded.
   */
  resnapshot: { table: string; request: string }[];
  /**
   * The source database's local change log (shared by every changefeed on that database in this
   * process; the first changefeed to start its puller sets these). `maxDiskBytes` null: no limit
   * but the disk's.
   */
  changeLog: {
    maxDiskBytes: number | null;
    /**
     * A changefeed that has not run (acknowledged) for this long no longer holds the log or the
     * source: its record is released, and resuming it needs a new snapshot. Null: never.
     */
    releaseAfterMs: number | null;
  };
}

export interface TidemarkConfig {
  changefeeds: ChangefeedConfig[];
}

const MiB = 1024 * 1024;

/** Defaults for every optional key; `docs/config-reference.md` lists the same values. */
export const CHANGEFEED_DEFAULTS = {
  views: [] as { name: string; sql: string }[],
  epoch: { intervalMs: 50, maxRows: 100_000, maxBytes: 64 * MiB },
  heartbeatIntervalMs: 1000,
  lagBudgetMs: 60_000,
  snapshot: { parallelism: 4, chunkRows: 50_000, startTimeoutMs: 30_000 },
  memoryQuotaBytes: 256 * MiB,
  schemaChanges: { dropTable: 'drop', renameTable: 'follow', recopy: 'copy' },
  onNonEmptyTarget: 'reconcile',
  resnapshot: [] as { table: string; request: string }[],
  changeLog: { maxDiskBytes: null, releaseAfterMs: 24 * 3600_000 },
} as const;

export const CHANGEFEED_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,40}$/;

/** What a caller must give; everything else has a default. Nested objects may be partial. */
export interface ChangefeedInput {
  id: string;
  source: string;
  sink: string;
  tables: string[];
  views?: { name: string; sql: string }[];
  epoch?: Partial<ChangefeedConfig['epoch']>;
  heartbeatIntervalMs?: number;
  lagBudgetMs?: number;
  snapshot?: Partial<ChangefeedConfig['snapshot']>;
  memoryQuotaBytes?: number;
  changeLog?: Partial<ChangefeedConfig['changeLog']>;
  schemaChanges?: Partial<ChangefeedConfig['schemaChanges']>;
  onNonEmptyTarget?: ChangefeedConfig['onNonEmptyTarget'];
  resnapshot?: ChangefeedConfig['resnapshot'];
}

/** Applies the defaults. Does not validate: `cli/load-config.ts` does that for user input. */
export function defineChangefeed(input: ChangefeedInput): ChangefeedConfig {
  const d = CHANGEFEED_DEFAULTS;
  return {
    id: input.id,
    source: input.source,
    sink: input.sink,
    tables: [...input.tables],
    views: (input.views ?? d.views).map((v) => ({ ...v })),
    epoch: { ...d.epoch, ...input.epoch },
    heartbeatIntervalMs: input.heartbeatIntervalMs ?? d.heartbeatIntervalMs,
    lagBudgetMs: input.lagBudgetMs ?? d.lagBudgetMs,
    snapshot: { ...d.snapshot, ...input.snapshot },
    memoryQuotaBytes: input.memoryQuotaBytes ?? d.memoryQuotaBytes,
    changeLog: { ...d.changeLog, ...input.changeLog },
    schemaChanges: { ...d.schemaChanges, ...input.schemaChanges },
    onNonEmptyTarget: input.onNonEmptyTarget ?? d.onNonEmptyTarget,
    resnapshot: (input.resnapshot ?? d.resnapshot).map((r) => ({ ...r })),
  };
}

/** The replication slot and publication name of a changefeed: `tidemark_<id, - → _>`. */
export function replicationNameFor(id: string): string {
  return `tidemark_${id.replaceAll('-', '_')}`;
}
