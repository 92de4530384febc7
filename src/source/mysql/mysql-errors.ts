/**
 * The one wrapper of mysql2 errors, for both sides (the MySQL sink imports it from here): the
 * connection's errors mean the same to a source and a sink; the server's errors of statements
 * differ (a source reads, a sink writes). Wrapped once, at the boundary; the URI masked.
 */
import type { ErrorCode } from '../../errors/codes.ts';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { MysqlRole } from './mysql-uri.ts';

/** Server error numbers that a retry can get past (deadlock, lock wait, TiDB write conflicts). */
const RETRIABLE_ERRNO = new Set([1205, 1213, 2006, 2013, 8002, 8022, 8028, 9007]);
/**
 * Constraint errors (duplicate key, NULL in a NOT NULL column, foreign key, check): the same rows
 * are refused every time, so they are definite (SINK_CONSTRAINT_VIOLATION), never retried.
 */
const CONSTRAINT_ERRNO = new Set([1062, 1586, 1169, 1048, 1451, 1452, 1216, 1217, 3819]);
/** Data errors (too long, out of range, bad value): the input, not the server, must change. */
const VALUE_ERRNO = new Set([1264, 1265, 1366, 1406, 1292, 3140, 4025]);

export function wrapMysqlError(
  err: unknown,
  where: { role: MysqlRole; uri: string; action: string },
): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = (err ?? {}) as { code?: string; errno?: number; message?: string; sqlMessage?: string };
  // mysql2 puts the SQL statement in neither field; sqlMessage is the server's own text.
  const server = e.sqlMessage ?? e.message ?? String(err);
  const detail = `${where.role} ${maskUri(where.uri)} while ${where.action}: ${server}`;
  const make = (code: ErrorCode, retriable?: boolean) =>
    new TidemarkError(code, { detail, cause: err, ...(retriable === undefined ? {} : { retriable }) });
  const source = where.role === 'source';
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
      return make('CONNECT_REFUSED');
    case 'ECONNRESET':
    case 'EPIPE':
    case 'PROTOCOL_CONNECTION_LOST':
      return source ? make('SOURCE_STREAM_ENDED') : make('SINK_WRITE_FAILED', true);
    case 'ER_ACCESS_DENIED_ERROR':
      return make('AUTH_FAILED');
    case 'ER_DBACCESS_DENIED_ERROR':
    case 'ER_TABLEACCESS_DENIED_ERROR':
    case 'ER_SPECIFIC_ACCESS_DENIED_ERROR':
    case 'ER_COLUMNACCESS_DENIED_ERROR':
      return make('PERMISSION_DENIED');
    case 'ER_BAD_DB_ERROR':
      return make('DATABASE_NOT_FOUND');
  }
  if (e.errno === 1227) return make('PERMISSION_DENIED');
  if (source) {
    if (e.code === 'ER_TABLE_DEF_CHANGED') return make('SOURCE_SNAPSHOT_SCHEMA_MOVED');
    if (e.code === 'ER_NO_SUCH_TABLE') return make('SOURCE_TABLE_NOT_FOUND');
    // A query killed (KILL QUERY) or past a statement limit: transient, Tidemark lifts the limits.
    if (e.errno === 1317 || e.errno === 1969) return make('SOURCE_QUERY_CANCELED');
    // The session killed (KILL CONNECTION, ER_CONNECTION_KILLED): a new one heals it.
    if (e.errno === 1927) return make('SOURCE_STREAM_ENDED', true);
    return make('SOURCE_STREAM_ENDED', e.errno === undefined);
  }
  if (e.errno !== undefined && VALUE_ERRNO.has(e.errno)) return make('SINK_VALUE_OUT_OF_RANGE');
  if (e.errno !== undefined && CONSTRAINT_ERRNO.has(e.errno)) return make('SINK_CONSTRAINT_VIOLATION');
  // A lock wait past its timeout: a metadata lock (lock_wait_timeout, which the sink bounds) or a row lock.
  if (e.errno === 1205) return make('SINK_LOCK_TIMEOUT');
  if (e.errno !== undefined && RETRIABLE_ERRNO.has(e.errno)) return make('SINK_WRITE_FAILED', true);
  // Other server errors (syntax) repeat on retry; socket-level ones may pass.
  return make('SINK_WRITE_FAILED', e.errno === undefined);
}
