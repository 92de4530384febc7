import type { ErrorCode } from '../../errors/codes.ts';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';

/** Server error numbers that a retry can get past (deadlock, lock wait, TiDB write conflicts). */
const RETRIABLE_ERRNO = new Set([1205, 1213, 2006, 2013, 8002, 8022, 8028, 9007]);
/**
 * Constraint errors (duplicate key, NULL in a NOT NULL column, foreign key, check): the same rows
 * are refused every time, so they are definite (SINK_CONSTRAINT_VIOLATION), never retried.
 */
const CONSTRAINT_ERRNO = new Set([1062, 1586, 1169, 1048, 1451, 1452, 1216, 1217, 3819]);
/** Data errors (too long, out of range, bad value): the input, not the server, must change. */
const VALUE_ERRNO = new Set([1264, 1265, 1366, 1406, 1292, 3140, 4025]);

/** Wraps a mysql2 error exactly once, at the boundary; the URI is masked. */
export function wrapMysqlError(err: unknown, where: { uri: string; action: string }): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = (err ?? {}) as { code?: string; errno?: number; message?: string; sqlMessage?: string };
  // mysql2 puts the SQL statement in neither field; sqlMessage is the server's own text.
  const server = e.sqlMessage ?? e.message ?? String(err);
  const detail = `sink ${maskUri(where.uri)} while ${where.action}: ${server}`;
  const make = (code: ErrorCode, retriable?: boolean) =>
    new TidemarkError(code, { detail, cause: err, ...(retriable === undefined ? {} : { retriable }) });
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
      return make('CONNECT_REFUSED');
    case 'ECONNRESET':
    case 'EPIPE':
    case 'PROTOCOL_CONNECTION_LOST':
      return make('SINK_WRITE_FAILED', true);
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_DBACCESS_DENIED_ERROR':
      return make(e.errno === 1044 ? 'PERMISSION_DENIED' : 'AUTH_FAILED');
    case 'ER_BAD_DB_ERROR':
      return make('DATABASE_NOT_FOUND');
    case 'ER_TABLEACCESS_DENIED_ERROR':
    case 'ER_SPECIFIC_ACCESS_DENIED_ERROR':
      return make('PERMISSION_DENIED');
  }
  if (e.errno !== undefined && VALUE_ERRNO.has(e.errno)) return make('SINK_VALUE_OUT_OF_RANGE');
  if (e.errno !== undefined && CONSTRAINT_ERRNO.has(e.errno)) return make('SINK_CONSTRAINT_VIOLATION');
  if (e.errno !== undefined && RETRIABLE_ERRNO.has(e.errno)) return make('SINK_WRITE_FAILED', true);
  // Other server errors (syntax) repeat on retry; socket-level ones may pass.
  return make('SINK_WRITE_FAILED', e.errno === undefined);
}
