import { Lsn } from './lsn.ts';

export interface HeartbeatOptions {
  readonly intervalMs: number;
  /** When the stream last carried a transaction (ms since the Unix epoch). */
  readonly lastActivityMs: () => number;
  /** Runs one SQL statement on a normal (non-replication) connection to the source. */
  readonly query: (sql: string) => Promise<{ rows: { lsn?: string }[] }>;
  /** The source's WAL position, read with every beat (for lag in bytes). */
  readonly onWalPosition: (lsn: Lsn) => void;
  readonly stopped: () => boolean;
}

/**
 * Keeps an idle source advancing: when the stream has been quiet for `intervalMs`, writes a
 * transactional `pg_logical_emit_message`, whose commit flows through the slot like any other and
 * moves the checkpoint (and so the slot) forward. Every beat also reads the WAL position.
 * Returns the timer; clear it to stop.
 */
export function startHeartbeat(opts: HeartbeatOptions): NodeJS.Timeout {
  let busy = false;
  const timer = setInterval(
    () => {
      if (busy || opts.stopped()) return;
      busy = true;
      const quiet = Date.now() - opts.lastActivityMs() >= opts.intervalMs;
      const sql = quiet
        ? `SELECT pg_current_wal_lsn()::text AS lsn, pg_logical_emit_message(true, 'tidemark.heartbeat', '')`
        : `SELECT pg_current_wal_lsn()::text AS lsn`;
      opts
        .query(sql)
        .then(({ rows }) => {
          if (rows[0]?.lsn) opts.onWalPosition(Lsn.parse(rows[0].lsn));
        })
        .catch(() => {
          // A failed heartbeat only delays progress; the stream reports real connection loss.
        })
        .finally(() => {
          busy = false;
        });
    },
    Math.max(50, Math.floor(opts.intervalMs / 2)),
  );
  timer.unref();
  return timer;
}
