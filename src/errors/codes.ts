/**
 * The one registry of Tidemark error codes. Every error a user can see has a code here with its
 * primary message, whether retrying can help, and a default hint. Add codes; never reuse one.
 *
 * `retriable: true` means the runner backs off and tries again (the cause is outside us and may
 * pass: network, a restarting database). `false` means retrying cannot help until a person acts
 * (bad config, missing privilege): the changefeed stops with the error and its hint.
 */
export const ERROR_CODES = {
  // Configuration and input
  CONFIG_NOT_FOUND: {
    message: 'Config file not found',
    retriable: false,
    hint: 'Pass an existing file with --config.',
  },
  CONFIG_INVALID: {
    message: 'Invalid config',
    retriable: false,
    hint: 'Fix the key named above; see the config reference in README.md.',
  },
  CONFIG_ENV_MISSING: {
    message: 'Config refers to an environment variable that is not set',
    retriable: false,
    hint: 'Export the variable before starting, or write the value in the file.',
  },
  CLI_USAGE: { message: 'Invalid command line', retriable: false, hint: 'Run `tidemark --help`.' },
  DEMO_POSTGRES_FAILED: {
    message: 'The demo PostgreSQL could not be started',
    retriable: false,
    hint: 'Another server may use the port (pass --port) or the data directory (pass --data-dir); see the detail.',
  },
  POSITION_INVALID: {
    message: 'Invalid position',
    retriable: false,
    hint: 'Positions are written the way the source prints them.',
  },

  // Connecting
  CONNECT_REFUSED: {
    message: 'Cannot connect to the database',
    retriable: true,
    hint: 'Check that the server is running and that host and port are right.',
  },
  AUTH_FAILED: {
    message: 'Authentication failed',
    retriable: false,
    hint: 'Check the user name and password in the connection URI (or the variable it reads).',
  },
  DATABASE_NOT_FOUND: {
    message: 'Database does not exist',
    retriable: false,
    hint: 'Create the database or fix its name in the URI.',
  },
  PERMISSION_DENIED: {
    message: 'Permission denied',
    retriable: false,
    hint: 'Grant the privilege named in the detail to the user in the URI.',
  },

  // Source (PostgreSQL)
  SOURCE_WAL_LEVEL: {
    message: 'The source does not have logical decoding enabled',
    retriable: false,
    hint: "Set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = 'logical') and restart PostgreSQL.",
  },
  SOURCE_TABLE_NOT_FOUND: {
    message: 'Selected table does not exist in the source',
    retriable: false,
    hint: 'Create the table, or fix its name or pattern under `tables`.',
  },
  SOURCE_NO_TABLES: {
    message: 'The table selection matches no table',
    retriable: false,
    hint: 'Check the names and patterns under `tables`.',
  },
  SOURCE_REPLICA_IDENTITY: {
    message: 'Table has a replica identity that would make the source fail',
    retriable: false,
    hint: 'Set REPLICA IDENTITY DEFAULT (with a primary key) or FULL, or leave the table out of `tables`.',
  },
  SOURCE_TABLE_UNSUPPORTED: {
    message: 'Table cannot be replicated by logical replication',
    retriable: false,
    hint: 'See the detail; leave the table out of `tables` or change it as suggested.',
  },
  SOURCE_SNAPSHOT_BLOCKED: {
    message: 'The snapshot cannot start: a transaction on the source blocks it',
    retriable: true,
    hint: 'Finish or roll back the transaction named in the detail (COMMIT PREPARED / ROLLBACK PREPARED for a prepared one, pg_terminate_backend for an idle session); Tidemark retries meanwhile.',
  },
  SOURCE_COPY_UNSETTLED: {
    message: 'An online copy could not take a snapshot that sees every committed transaction',
    retriable: true,
    hint: 'A transaction stayed committed but invisible for long (synchronous replication waiting for a standby?). Tidemark retries; check the standby.',
  },
  SOURCE_SNAPSHOT_SCHEMA_MOVED: {
    message: "A table's schema changed while the snapshot was starting",
    retriable: true,
    hint: 'Nothing to do: the snapshot starts again with the schema the source has now.',
  },
  SOURCE_VERSION: {
    message: 'This PostgreSQL version has a known logical-replication defect',
    retriable: false,
    hint: 'Upgrade to the minor release named in the detail.',
  },
  SOURCE_SCHEMA_RECOPY: {
    message: 'A schema change rewrote rows with values the change log does not carry',
    retriable: false,
    hint: 'The table must be copied again at this position: reset the changefeed (it takes a new snapshot). Schema changes that replay exactly (constant defaults, widenings, renames) need nothing.',
  },
  SOURCE_TABLE_DROPPED: {
    message: 'A replicated table was dropped in the source',
    retriable: false,
    hint: 'schemaChanges.dropTable is `fail`: set it to `drop` or `keep`, or remove the table from `tables`, then resume.',
  },
  SOURCE_TABLE_RENAMED: {
    message: 'A replicated table was renamed in the source',
    retriable: false,
    hint: 'schemaChanges.renameTable is `fail`: set it to `follow` to rename the table downstream too, then resume.',
  },
  SOURCE_TABLE_NO_KEY: {
    message: 'Table has neither a primary key nor REPLICA IDENTITY FULL',
    retriable: false,
    hint: 'Add a primary key, or run ALTER TABLE … REPLICA IDENTITY FULL.',
  },
  SOURCE_SLOT_IN_USE: {
    message: 'The replication slot is used by another consumer',
    retriable: true,
    hint: 'Stop the other consumer (see pg_stat_replication), or give this changefeed another id.',
  },
  SOURCE_SLOT_LOST: {
    message: 'The replication slot is gone or invalidated',
    retriable: false,
    hint: 'The source dropped or invalidated the slot: recreate the changefeed to take a new snapshot.',
  },
  SOURCE_PROTOCOL: {
    message: 'Unexpected data in the replication stream',
    retriable: false,
    hint: 'This is a bug or an unsupported server; report it with the detail.',
  },
  SOURCE_UNSUPPORTED_TYPE: {
    message: 'Unsupported column type',
    retriable: false,
    hint: 'Exclude the table or change the column type.',
  },
  SOURCE_SLOT_AHEAD: {
    message: 'The replication slot is ahead of the checkpoint in the sink',
    retriable: false,
    hint: 'Another consumer advanced the slot, or the sink was restored from an older backup: changes in between are lost to this changefeed. Reset it: drop the sink tables and the tidemark.checkpoints row to take a new snapshot.',
  },
  SOURCE_TABLES_CHANGED: {
    message: 'The table selection changed after the snapshot',
    retriable: false,
    hint: 'Adding tables to a running changefeed is not supported yet: create a new changefeed (new id) for the added tables, or reset this one.',
  },
  SOURCE_SCHEMA_CHANGED: {
    message: 'A source table changed shape in a way Tidemark cannot follow',
    retriable: true,
    hint: 'Tidemark re-reads the catalog and retries; if it persists, pause writes to the table while its DDL is replicated.',
  },
  SOURCE_STREAM_ENDED: {
    message: 'The replication stream ended unexpectedly',
    retriable: true,
    hint: 'The source restarted or the connection dropped; Tidemark reconnects.',
  },

  SOURCE_QUERY_CANCELED: {
    message: "A query of Tidemark's on the source was cancelled",
    retriable: true,
    hint: "Someone cancelled it, or a limit fired; Tidemark's sessions lift the source's statement and idle limits, so look for a job that cancels long queries. Tidemark retries.",
  },

  // Source (MySQL/MariaDB binlog)
  SOURCE_BINLOG_OFF: {
    message: 'The source does not write a binary log',
    retriable: false,
    hint: 'Start the server with log_bin (e.g. log-bin=mariadb-bin in [mysqld]) and restart it.',
  },
  SOURCE_BINLOG_FORMAT: {
    message: 'The source does not log row changes',
    retriable: false,
    hint: 'Set binlog_format=ROW in [mysqld] (SET GLOBAL binlog_format=ROW applies to new sessions only).',
  },
  SOURCE_BINLOG_ROW_IMAGE: {
    message: 'The source does not log whole rows',
    retriable: false,
    hint: 'Set binlog_row_image=FULL in [mysqld] (SET GLOBAL binlog_row_image=FULL applies to new sessions only).',
  },
  SOURCE_BINLOG_ROW_METADATA: {
    message: 'The source does not log column names and keys with each row event',
    retriable: false,
    hint: 'Set binlog_row_metadata=FULL in [mysqld] (MariaDB ≥ 10.5, MySQL ≥ 8.0): rows are then decoded with the shape in force where they were written.',
  },
  SOURCE_SERVER_ID: {
    message: 'The source has no server id',
    retriable: false,
    hint: 'Set server_id to a non-zero number unique among the servers of the replication topology.',
  },
  SOURCE_GTID_UNAVAILABLE: {
    message: 'The source does not assign GTIDs',
    retriable: false,
    hint: 'MariaDB ≥ 10.0 always does; on MySQL set gtid_mode=ON and enforce_gtid_consistency=ON.',
  },
  SOURCE_BINLOG_PURGED: {
    message: 'The binary log the changefeed needs has been purged from the source',
    retriable: false,
    hint: 'Changes in between are lost to this changefeed: reset it to take a new snapshot, and keep binary logs longer (binlog_expire_logs_seconds) than Tidemark may be down.',
  },
  SOURCE_BINLOG_POSITION_UNKNOWN: {
    message: "The source's binary log does not contain the changefeed's position",
    retriable: false,
    hint: 'The source lost history the changefeed already read (restored from a backup, or another server): reset the changefeed to take a new snapshot.',
  },
  SOURCE_BINLOG_INCIDENT: {
    message: 'The source logged an incident: changes may be missing from its binary log',
    retriable: false,
    hint: 'Reset the changefeed to take a new snapshot; see the source error log for the incident.',
  },
  SOURCE_UNSUPPORTED_EVENT: {
    message: 'The binary log holds an event Tidemark cannot decode',
    retriable: false,
    hint: 'Turn off the server feature named in the detail (binlog compression, binlog encryption), or report it.',
  },

  // Sink
  SINK_UNSUPPORTED_SCHEME: {
    message: 'Unsupported sink URI scheme',
    retriable: false,
    hint: 'Use one of the schemes listed in README.md.',
  },
  SINK_WRITE_FAILED: {
    message: 'Writing to the sink failed',
    retriable: true,
    hint: 'Check the sink database. A failure that can heal (connection, lock, serialization) is retried from the last checkpoint; one that cannot (the sink refused what the detail names) stops the changefeed: fix the cause, then resume.',
  },
  SINK_LOCK_TIMEOUT: {
    message: 'The sink gave up waiting for a lock that a session downstream holds',
    retriable: true,
    hint: "A reader or writer downstream (a long query, or a session idle in its transaction; the detail names what the sink could see) holds a lock on a table the sink must change or write. The sink waits a bounded time, so that other readers do not queue behind its request, and retries from the last checkpoint until it gets it. If it keeps failing, end that session's transaction.",
  },
  SINK_SCHEMA_UNSUPPORTED: {
    message: 'The sink cannot replay this schema change',
    retriable: false,
    hint: 'See the detail; reset the changefeed so the table is copied again with its new shape.',
  },
  SINK_SCHEMA_MISMATCH: {
    message: 'Sink table does not match the source table',
    retriable: false,
    hint: 'Drop or fix the sink table so its columns and key match the source.',
  },
  SINK_CHECKPOINT_AHEAD: {
    message: 'Sink checkpoint is ahead of the source slot',
    retriable: false,
    hint: 'The sink was written by another changefeed or the source was restored; use a new sink or changefeed id.',
  },
  SINK_FENCED: {
    message: 'Another writer committed to this changefeed in the sink',
    retriable: false,
    hint: 'Two Tidemark processes run this changefeed against the same sink (a restart while the old process still runs, or a copy of the config on another host). Stop the other process named in the detail, or give one of them another changefeed id; this one committed nothing and stopped.',
  },
  SINK_CONSTRAINT_VIOLATION: {
    message: 'A constraint of the sink refused a row',
    retriable: false,
    hint: "The downstream has a constraint the source's data does not satisfy (added downstream, or on a table created by someone else): drop or relax the constraint named in the detail, then restart the changefeed; it resumes from its checkpoint.",
  },
  SINK_DEPENDENT_OBJECTS: {
    message: 'Objects created downstream block a change Tidemark must make to a table',
    retriable: false,
    hint: "A view, rule or foreign key created downstream on the table (PostgreSQL's DETAIL above names it) blocks the DDL a schema change or a copy's swap needs (DROP, ALTER COLUMN TYPE). Drop those objects (recreate them afterwards), then restart the changefeed; it resumes from its checkpoint.",
  },
  SINK_UNSUITABLE: {
    message: 'The sink store is configured in a way that breaks the guarantee',
    retriable: false,
    hint: 'Change the setting named in the detail as it says, then restart the changefeed.',
  },
  SINK_UNSUPPORTED_TYPE: {
    message: 'The sink cannot store a column type',
    retriable: false,
    hint: 'Exclude the column or table, cast it in a view, or use a sink that maps the type (see the sink README).',
  },
  SINK_VALUE_OUT_OF_RANGE: {
    message: 'A value does not fit the sink column it maps to',
    retriable: false,
    hint: 'The detail names the column and value; change the column type in the source or the sink, or exclude the column.',
  },

  // Typed values (decode/)
  VALUE_INVALID_TEXT: {
    message: 'Invalid text form for the type',
    retriable: false,
    hint: 'The value is not in the form PostgreSQL prints (DateStyle=ISO, IntervalStyle=postgres); this is a bug or an unsupported session setting.',
  },
  VALUE_DIVISION_BY_ZERO: {
    message: 'Division by zero',
    retriable: false,
    hint: 'Guard the divisor in the view (NULLIF(x, 0)).',
  },
  VALUE_OUT_OF_RANGE: {
    message: 'Value out of range',
    retriable: false,
    hint: 'The result does not fit the type; widen the type in the view.',
  },

  // Views (SQL front end)
  VIEW_INVALID: {
    message: 'Invalid view definition',
    retriable: false,
    hint: 'Fix the SQL at the position named above.',
  },
  VIEW_UNSUPPORTED: {
    message: 'Unsupported construct in a view',
    retriable: false,
    hint: 'Rewrite the view with the supported subset listed in src/sql/README.md.',
  },
  VIEW_SCHEMA_INCOMPATIBLE: {
    message: "A view's input table changed so that the view no longer binds",
    retriable: false,
    hint: 'Change the view to match the new table (or undo the schema change); its state is rebuilt from a new snapshot.',
  },
  VIEW_SCHEMA_MISMATCH: {
    message: "Changes arrived in a table layout the views' state was not built or migrated for",
    retriable: false,
    hint: 'The runtime must announce the schema change (ViewStage.schemaChanged) at its barrier before changes in the new layout; report this.',
  },
  VIEW_STATE_STALE: {
    message: 'View state was built for other view definitions or input schemas',
    retriable: false,
    hint: 'The views are rebuilt from a new snapshot (the changefeed does this itself).',
  },
  VIEW_RUNTIME: {
    message: 'Evaluating a view failed',
    retriable: false,
    hint: 'A row made an expression of the view fail (as PostgreSQL would); fix the data or guard the expression.',
  },

  VIEW_SCHEMA_CHANGED: {
    message: 'A table a view reads changed its schema',
    retriable: false,
    hint: 'Update the view definition for the new schema (or revert the change); the changefeed stops at the change, with nothing after it applied.',
  },

  // Dataflow (incremental views)
  DATAFLOW_GRAPH_INVALID: {
    message: 'Invalid dataflow graph',
    retriable: false,
    hint: 'This is a planner bug; report it with the detail.',
  },
  DATAFLOW_EPOCH_ORDER: {
    message: 'Dataflow epochs out of order',
    retriable: false,
    hint: 'Epochs are stepped and committed one at a time, in increasing order.',
  },
  DATAFLOW_UNSUPPORTED_VALUE: {
    message: 'Value cannot be keyed, ordered or stored by the dataflow',
    retriable: false,
    hint: 'Give the value class canonical()/sortKey() and register a codec tag for it (src/dataflow/value-codec.ts).',
  },
  DATAFLOW_STATE_CORRUPT: {
    message: 'Dataflow state cannot be read',
    retriable: false,
    hint: 'The state directory was written by another version or damaged; delete it to rebuild the views from a snapshot.',
  },

  // Server and HTTP API (server/, api/)
  TLS_NOT_OFFERED: {
    message: 'The server does not offer TLS, and sslmode demands it',
    retriable: false,
    hint: 'Turn TLS on at the server (ssl = on with a certificate), or, if an unencrypted connection is acceptable on this network, lower sslmode to prefer or disable. Nothing (no password) was sent.',
  },
  TLS_CERTIFICATE_REJECTED: {
    message: "The server's TLS certificate was rejected",
    retriable: false,
    hint: 'Point sslrootcert at the CA that signed the server certificate, and (verify-full) use a host name the certificate names; sslmode=verify-ca skips the host name check, sslmode=require checks nothing.',
  },
  TLS_REQUIRED_BY_SERVER: {
    message: 'The server accepts this connection only over TLS',
    retriable: false,
    hint: 'Set sslmode=verify-full with sslrootcert=/path/ca.crt in the URI (or sslmode=require to encrypt without checking the certificate).',
  },
  PREFLIGHT_FAILED: {
    message: 'The changefeed would not start safely',
    retriable: false,
    hint: 'Fix each problem listed (`tidemark doctor --config FILE` shows the same report), then create it again; ?skipChecks=true creates it anyway.',
  },
  API_BAD_REQUEST: {
    message: 'Invalid request',
    retriable: false,
    hint: 'Fix the field named in the detail; see docs/operations.md or /api/openapi.json.',
  },
  API_UNAUTHORIZED: {
    message: 'Missing or wrong bearer token',
    retriable: false,
    hint: "Send `Authorization: Bearer <token>`: the token is in the api-token file of the server's data directory (or the one given with --token-file / TIDEMARK_API_TOKEN). The tidemark CLI of the same user finds it by itself; `tidemark dashboard` prints a signed-in dashboard link.",
  },
  API_FORBIDDEN: {
    message: 'Request refused',
    retriable: false,
    hint: 'Call the server by its own address; web pages of other origins may not call the API.',
  },
  API_UNSUPPORTED_MEDIA_TYPE: {
    message: 'Mutating requests must be JSON',
    retriable: false,
    hint: 'Send `Content-Type: application/json` (with `{}` as the body when there is nothing to send).',
  },
  API_NOT_FOUND: {
    message: 'Not found',
    retriable: false,
    hint: 'List the changefeeds with `tidemark changefeed list` or GET /api/v1/changefeeds.',
  },
  API_CONFLICT: {
    message: 'Conflicts with the current state',
    retriable: false,
    hint: 'Use another id, or remove the existing changefeed first.',
  },
  API_UNREACHABLE: {
    message: 'Cannot reach the Tidemark server',
    retriable: true,
    hint: 'Check --server (e.g. http://127.0.0.1:8300) and that `tidemark server` is running.',
  },
  SERVER_TOKEN_REQUIRED: {
    message: 'A bearer token is required to listen on a non-loopback address',
    retriable: false,
    hint: 'Pass --token-file FILE or set TIDEMARK_API_TOKEN, or bind 127.0.0.1.',
  },
  SERVER_METADATA: {
    message: 'The metadata store cannot be used',
    retriable: false,
    hint: 'Check that --data-dir is writable and not used by another `tidemark server`.',
  },
  SERVER_LISTEN_FAILED: {
    message: 'The server cannot listen on the address',
    retriable: false,
    hint: 'Another process may use the port; pass another --addr.',
  },

  // Engine (control/)
  DATA_DIR_LOCKED: {
    message: 'The data directory is in use by another Tidemark process',
    retriable: false,
    hint: 'Stop the other process (named in the detail) first, or give this one another --data-dir. Two processes must never run the same changefeed.',
  },

  // Change log (log/)
  CHANGELOG_CORRUPT: {
    message: 'The change log cannot be read',
    retriable: true,
    hint: "The log directory named in the detail is damaged (a machine crash, a full disk) or was written by another version. Tidemark moves it aside and refills the log from the source, which still holds everything after the slowest changefeed's checkpoint; if this repeats, check the disk.",
  },
  CHANGELOG_MISSING: {
    message: 'The change log is missing',
    retriable: false,
    hint: 'The log directory named in the detail was removed or its disk is not mounted: restore it, or let Tidemark recreate it (the source is then re-read from the slot).',
  },
  COPY_SPILL_FAILED: {
    message: 'An online copy could not keep its rows on the local disk',
    retriable: true,
    hint: "A table without a key is copied online in one read, kept under the data directory (copies/) until it is applied, with the table's changes that arrive meanwhile: it needs about the table's size and theirs in free space there. Free space or fix the directory's permissions (the detail names the file and the error); the copy is retried from the start, backing off.",
  },
  CHANGELOG_DISK_FULL: {
    message: 'The change log is out of disk space',
    retriable: true,
    hint: 'Free space on the disk of the log directory or raise its size limit; a slow or stopped changefeed holds the log back (see its lag).',
  },
  CHANGELOG_BEHIND: {
    message: 'The change log no longer holds the changes a reader needs',
    retriable: false,
    hint: "The changefeed's checkpoint is older than the start of the local log (cleaned, never read, or its registration was released after changeLog.releaseAfter): reset the changefeed to take a new snapshot.",
  },

  // Verify and reconcile (verify/)
  VERIFY_UNSUPPORTED: {
    message: 'This changefeed cannot be verified',
    retriable: false,
    hint: 'verify compares a PostgreSQL source with a PostgreSQL, MySQL/MariaDB or SQLite sink; see docs/operations.md, "Verify".',
  },
  VERIFY_NOT_CAUGHT_UP: {
    message: "The downstream did not reach the source's position in time",
    retriable: true,
    hint: 'verify compares only once the checkpoint passes the position its source read saw: start the changefeed (or let it catch up) and run verify again, or give it longer with --wait-ms.',
  },
  VERIFY_NO_STABLE_READ: {
    message: 'The source kept changing the rows being compared',
    retriable: true,
    hint: 'verify re-reads a range the source changed during its comparison; some ranges changed in every round. Run it at a quieter time, raise --rounds, or pause the writes to these tables.',
  },
  SINK_TARGET_NOT_EMPTY: {
    message: 'A target table already holds rows before the initial snapshot',
    retriable: false,
    hint: 'Set the changefeed option onNonEmptyTarget: reconcile (rewrite only the rows that differ) or truncate (empty it in the first epoch), or empty the table yourself.',
  },

  // Runtime
  RESNAPSHOT_REFUSED: {
    message: 'A table cannot be copied again',
    retriable: false,
    hint: 'Name tables this changefeed replicates (schema.table, or a pattern such as sales.*); a table only views read (not replicated itself) is copied with a new snapshot of the changefeed instead.',
  },
  RESNAPSHOT_NOT_TAKEN: {
    message: 'The changefeed stopped before the re-copy started',
    retriable: true,
    hint: 'Nothing was changed: ask again once the changefeed runs.',
  },
  CHANGEFEED_FAILED: { message: 'Changefeed failed', retriable: false, hint: 'See the cause.' },
  INTERNAL: {
    message: 'Internal error',
    retriable: false,
    hint: 'This is a bug; please report it with the detail.',
  },
} as const satisfies Record<string, { message: string; retriable: boolean; hint: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
