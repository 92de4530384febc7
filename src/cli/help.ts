import { readFileSync } from 'node:fs';

export const USAGE = `tidemark — keeps derived data exactly in step with PostgreSQL

Usage:
  tidemark start --config FILE [--data-dir DIR]   run every changefeed in FILE until Ctrl-C
  tidemark status --config FILE [--json]   show each changefeed's position and lag
  tidemark doctor --config FILE [--json]   check every prerequisite, with a fix for each problem
  tidemark verify --config FILE [--changefeed ID] [--json]
                                           compare each downstream with its source at one
                                           position; exit 0 equal, 1 different, 2 error
  tidemark demo [--sink postgres|sqlite] [--data-dir DIR] [--port N] [--addr HOST:PORT] [--rate N] [--seed N]
                                           a local PostgreSQL with a live workload, replicated,
                                           with a view and the dashboard
  tidemark server [--addr HOST:PORT] [--data-dir DIR] [--config FILE] [--token-file FILE | --no-auth]
                                           HTTP API, dashboard and /metrics (docs/operations.md)
  tidemark changefeed create|list|query|pause|resume|update|remove [--server URL] …
                                           manage a server's changefeeds
  tidemark dashboard [--server URL]        print the dashboard link that signs in
  tidemark --help | --version

Options:
  -c, --config FILE    the YAML config (see docs/config-reference.md)
  --json               machine-readable output (status)
  -h, --help           this text
  -V, --version        the version

Environment:
  TIDEMARK_LOG_LEVEL   debug | info | warn | error (default info)
  \${VAR} in the config is replaced by the variable's value.

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
`;

export const COMMAND_USAGE: Record<string, string> = {
  start:
    'Usage: tidemark start --config FILE [--data-dir DIR]\n\nRuns every changefeed of FILE; Ctrl-C (SIGINT) or SIGTERM stops them gracefully.\n' +
    '--data-dir holds local state (views); default .tidemark, or $TIDEMARK_DATA_DIR.\n',
  status:
    "Usage: tidemark status --config FILE [--json]\n\nReads each changefeed's state from its databases and prints one line each (or JSON).\n",
  verify:
    'Usage: tidemark verify --config FILE [--changefeed ID] [--chunk-rows N] [--rounds N] [--wait-ms N] [--max-rows N] [--json]\n\n' +
    "Compares each changefeed's downstream (PostgreSQL, MySQL/MariaDB, SQLite) with its PostgreSQL source at\n" +
    'one consistent position: checksums of key ranges on both sides, then the differing rows. The changefeed\n' +
    'must be running (or caught up): verify waits until the downstream checkpoint passes the position of\n' +
    'its source read, and re-reads ranges the source changed meanwhile (docs/operations.md, "Verify").\n' +
    'Exit 0: equal; 1: rows differ (printed); 2: error, or no consistent comparison could be made.\n\n' +
    '  --changefeed ID   only this changefeed of FILE\n' +
    '  --chunk-rows N    rows per key range (default 10000)\n' +
    '  --rounds N        rounds for ranges the source keeps changing (default 5)\n' +
    '  --wait-ms N       how long to wait for the downstream to catch up, per round (default 60000)\n' +
    '  --max-rows N      differing rows printed per table (default 100; all are counted)\n' +
    '  --json            the result as JSON\n',
  demo:
    'Usage: tidemark demo [--sink postgres|sqlite] [--data-dir DIR] [--port N] [--addr HOST:PORT] [--rate N] [--seed N]\n\n' +
    'Starts PostgreSQL (data in DIR/pg, default .tidemark/demo), a sample schema with a live\n' +
    'workload, and a server (dashboard, API) running one changefeed that replicates it, with the\n' +
    'view revenue_by_status, to the `replica` database (or DIR/replica.db). Prints the dashboard\n' +
    'link and a psql line showing the view equal to its tables. Running it again resumes.\n' +
    'Ctrl-C stops everything cleanly.\n\n' +
    '  --port N          PostgreSQL port (default 54320)\n' +
    '  --addr HOST:PORT  dashboard and API (default 127.0.0.1:8300)\n' +
    '  --log-format F    json or pretty (default: pretty on a terminal, json when piped)\n' +
    '  --rate N          workload row changes per second (default 300)\n' +
    '  --seed N          workload random seed (default 1)\n',
};

/** The package version, read from package.json (two levels up from src/cli and dist/cli). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? '0.0.0';
}
