import { TidemarkError, type TidemarkErrorOptions } from '../../errors/tidemark-error.ts';
import type { ErrorCode } from '../../errors/codes.ts';
import { maskUri } from '../../errors/mask.ts';

/** The fields PostgreSQL puts in an ErrorResponse, as node-postgres and our wire client expose them. */
export interface PgServerError {
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
  severity?: string;
  schema?: string;
  table?: string;
  constraint?: string;
}

/**
 * Wraps an error from a PostgreSQL connection (server ErrorResponse or socket error) exactly
 * once, at the boundary, into a TidemarkError with the right code and retriability. `where`
 * says which connection (`source`, `sink`) and `uri` is masked before it is shown.
 */
/**
 * An error reading a table's rows: one that says the table, its schema or a column is no longer
 * under the name it was described with (renamed or dropped meanwhile) is SOURCE_SNAPSHOT_SCHEMA_MOVED
 * — retriable, and an online copy waits for the stream to bring the change — never INTERNAL.
 */
export function wrapReadError(
  err: unknown,
  where: { role: 'source'; uri?: string; action?: string },
): TidemarkError {
  const code = (err as { code?: string } | null)?.code;
  if (code === '42P01' || code === '42703' || code === '3F000') {
    return new TidemarkError('SOURCE_SNAPSHOT_SCHEMA_MOVED', {
      detail: `a table read changed while it was read${where.action ? ` (${where.action})` : ''}: ${(err as Error).message}`,
      cause: err,
    });
  }
  return wrapPgError(err, where);
}

export function wrapPgError(
  err: unknown,
  where: { role: 'source' | 'sink'; uri?: string; action?: string },
): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = (err ?? {}) as PgServerError & { errno?: string; syscall?: string };
  const target = `${where.role}${where.uri ? ` ${maskUri(where.uri)}` : ''}`;
  const action = where.action ? ` while ${where.action}` : '';
  const server = e.message ? `: ${e.message}${e.detail ? ` (${e.detail})` : ''}` : '';
  const detail = `${target}${action}${server}`;
  const opts = (code: ErrorCode, extra: TidemarkErrorOptions = {}) =>
    new TidemarkError(code, { detail, cause: err, ...extra });
  const sysCode = (err as { code?: string })?.code;
  const tls = tlsProblem(sysCode, e.message);
  if (tls) return opts(tls);
  switch (sysCode) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
    case 'ECONNRESET':
    case 'EPIPE':
      return opts('CONNECT_REFUSED', { detail: `${target}${action}: ${sysCode}` });
    case '28P01':
    case '28000':
      return opts('AUTH_FAILED');
    case '3D000':
      return opts('DATABASE_NOT_FOUND');
    case '42501':
      return opts('PERMISSION_DENIED');
    case '55006':
      return opts('SOURCE_SLOT_IN_USE');
    case '57P01': // admin_shutdown
    case '57P02':
    case '57P03': // cannot_connect_now (starting up)
    case '53300': // too_many_connections
    case '08006':
    case '08001':
    case '08003':
    case '40001': // serialization_failure
    case '40P01': // deadlock
      return opts(where.role === 'sink' ? 'SINK_WRITE_FAILED' : 'CONNECT_REFUSED', { retriable: true });
  }
  if (sysCode === '57014' && where.role === 'source') return opts('SOURCE_QUERY_CANCELED');
  if (sysCode === '55P03' && where.role === 'sink') return opts('SINK_LOCK_TIMEOUT');
  if (/wal_level/i.test(e.message ?? '')) return opts('SOURCE_WAL_LEVEL');
  // node-postgres: the server closed the session, or a client whose connection broke was used again.
  if (/Connection terminated|connection lost|socket hang up|not queryable/i.test(e.message ?? '')) {
    return opts(where.role === 'sink' ? 'SINK_WRITE_FAILED' : 'SOURCE_STREAM_ENDED', { retriable: true });
  }
  if (where.role === 'sink' && sysCode?.startsWith('23')) {
    // Two sessions creating the same catalog object at once collide on a catalog index: a race
    // that the retry resolves (it finds the object).
    if (e.schema === 'pg_catalog' || e.constraint?.startsWith('pg_'))
      return opts('SINK_WRITE_FAILED', { retriable: true });
    // Any other constraint (class 23) refuses the same rows every time: retrying cannot heal it,
    // and each retry would redo the epoch (or the snapshot) only to fail again.
    const names = [e.table && `table ${e.table}`, e.constraint && `constraint ${e.constraint}`].filter(
      Boolean,
    );
    return opts('SINK_CONSTRAINT_VIOLATION', {
      detail: `${detail}${names.length > 0 ? ` [${names.join(', ')}]` : ''}`,
    });
  }
  // Objects someone created downstream depend on what a DDL drops or retypes (2BP01; a column
  // under a view, 0A000): the same DDL fails every time until the objects are gone.
  if (
    where.role === 'sink' &&
    (sysCode === '2BP01' || (sysCode === '0A000' && /view|rule/i.test(e.message ?? '')))
  )
    return opts('SINK_DEPENDENT_OBJECTS');
  // Bad values (22), schema errors (42) and unsupported features (0A) fail the same way every time.
  if (where.role === 'sink')
    return opts('SINK_WRITE_FAILED', { retriable: !sysCode || !/^(22|42|0A)/.test(sysCode) });
  return opts('INTERNAL', { retriable: false });
}

/** Node's certificate verification failures (tls.connect), and the servers' answers about TLS. */
const CERTIFICATE_ERRORS = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
]);

function tlsProblem(code: string | undefined, message: string | undefined): ErrorCode | undefined {
  if (code !== undefined && CERTIFICATE_ERRORS.has(code)) return 'TLS_CERTIFICATE_REJECTED';
  // node-postgres, when the server answers N to SSLRequest.
  if (/server does not support SSL connections/i.test(message ?? '')) return 'TLS_NOT_OFFERED';
  // pg_hba.conf has only hostssl lines for this client: "…, no encryption".
  if (code === '28000' && /no encryption/i.test(message ?? '')) return 'TLS_REQUIRED_BY_SERVER';
  return undefined;
}
