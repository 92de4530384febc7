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
  CONFIG_NOT_FOUND: { message: 'Config file not found', retriable: false, hint: 'Pass an existing file with --config.' },
  CONFIG_INVALID: { message: 'Invalid config', retriable: false, hint: 'Fix the key named above; see the config reference in README.md.' },
  CONFIG_ENV_MISSING: { message: 'Config refers to an environment variable that is not set', retriable: false, hint: 'Export the variable before starting, or write the value in the file.' },
  CLI_USAGE: { message: 'Invalid command line', retriable: false, hint: 'Run `tidemark --help`.' },
  POSITION_INVALID: { message: 'Invalid position', retriable: false, hint: 'Positions are written the way the source prints them.' },

  // Connecting
  CONNECT_REFUSED: { message: 'Cannot connect to the database', retriable: true, hint: 'Check that the server is running and that host and port are right.' },
  AUTH_FAILED: { message: 'Authentication failed', retriable: false, hint: 'Check the user name and password in the connection URI (or the variable it reads).' },
  DATABASE_NOT_FOUND: { message: 'Database does not exist', retriable: false, hint: 'Create the database or fix its name in the URI.' },
  PERMISSION_DENIED: { message: 'Permission denied', retriable: false, hint: 'Grant the privilege named in the detail to the user in the URI.' },

  // Source (PostgreSQL)
  SOURCE_WAL_LEVEL: { message: 'The source does not have logical decoding enabled', retriable: false, hint: "Set wal_level = logical in postgresql.conf (ALTER SYSTEM SET wal_level = 'logical') and restart PostgreSQL." },
  SOURCE_TABLE_NOT_FOUND: { message: 'Selected table does not exist in the source', retriable: false, hint: 'Create the table, or fix its name or pattern under `tables`.' },
  SOURCE_NO_TABLES: { message: 'The table selection matches no table', retriable: false, hint: 'Check the names and patterns under `tables`.' },
  SOURCE_TABLE_NO_KEY: { message: 'Table has neither a primary key nor REPLICA IDENTITY FULL', retriable: false, hint: 'Add a primary key, or run ALTER TABLE … REPLICA IDENTITY FULL.' },
  SOURCE_SLOT_IN_USE: { message: 'The replication slot is used by another consumer', retriable: true, hint: 'Stop the other consumer (see pg_stat_replication), or give this changefeed another id.' },
  SOURCE_SLOT_LOST: { message: 'The replication slot is gone or invalidated', retriable: false, hint: 'The source dropped or invalidated the slot: recreate the changefeed to take a new snapshot.' },
  SOURCE_PROTOCOL: { message: 'Unexpected data in the replication stream', retriable: false, hint: 'This is a bug or an unsupported server; report it with the detail.' },
  SOURCE_UNSUPPORTED_TYPE: { message: 'Unsupported column type', retriable: false, hint: 'Exclude the table or change the column type.' },
  SOURCE_STREAM_ENDED: { message: 'The replication stream ended unexpectedly', retriable: true, hint: 'The source restarted or the connection dropped; Tidemark reconnects.' },

  // Sink
  SINK_UNSUPPORTED_SCHEME: { message: 'Unsupported sink URI scheme', retriable: false, hint: 'Use one of the schemes listed in README.md.' },
  SINK_WRITE_FAILED: { message: 'Writing to the sink failed', retriable: true, hint: 'Check the sink database; Tidemark retries from the last checkpoint.' },
  SINK_SCHEMA_MISMATCH: { message: 'Sink table does not match the source table', retriable: false, hint: 'Drop or fix the sink table so its columns and key match the source.' },
  SINK_CHECKPOINT_AHEAD: { message: 'Sink checkpoint is ahead of the source slot', retriable: false, hint: 'The sink was written by another changefeed or the source was restored; use a new sink or changefeed id.' },

  // Runtime
  CHANGEFEED_FAILED: { message: 'Changefeed failed', retriable: false, hint: 'See the cause.' },
  INTERNAL: { message: 'Internal error', retriable: false, hint: 'This is a bug; please report it with the detail.' },
} as const satisfies Record<string, { message: string; retriable: boolean; hint: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
