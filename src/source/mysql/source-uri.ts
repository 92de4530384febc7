/**
 * `mysql://user:password@host:3306/shop` (also `mariadb://`) → mysql2 connection options, and
 * the connector's `sourceKey`. Server errors are wrapped once here, with the URI masked.
 */
import type { ConnectionOptions } from 'mysql2';
import { createHash } from 'node:crypto';
import type { ErrorCode } from '../../errors/codes.ts';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';

export interface SourceUri {
  readonly uri: string;
  readonly host: string;
  readonly port: number;
  /** The URI's database: where bare table names are looked up. */
  readonly database: string | null;
  /**
   * Connection options without a default database: every query names its schema, and a user
   * without rights on that database still gets as far as the privilege checks.
   */
  readonly config: ConnectionOptions;
}

export function parseSourceUri(uri: string): SourceUri {
  let u: URL;
  try {
    u = new URL(uri);
  } catch (cause) {
    throw new TidemarkError('CONFIG_INVALID', { detail: `source URI is not a URI: ${maskUri(uri)}`, cause });
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `source URI ${maskUri(uri)}: expected mysql://user:password@host:port/database`,
    });
  }
  const host = u.hostname || '127.0.0.1';
  const port = u.port === '' ? 3306 : Number(u.port);
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || null;
  const config: ConnectionOptions = {
    host,
    port,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    charset: 'utf8mb4_unicode_ci',
    timezone: 'Z',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    multipleStatements: false,
    connectTimeout: 10_000,
  };
  return { uri, host, port, database, config };
}

/** Stable, credential-free, file-name-safe key of a source server. */
export function sourceKeyOf(s: SourceUri): string {
  const hash = createHash('sha256').update(`${s.host}:${s.port}`).digest('hex').slice(0, 12);
  return `mysql-${s.host.replace(/[^A-Za-z0-9.-]/g, '_')}-${s.port}-${hash}`;
}

/** Wraps a mysql2 (or socket) error once, at the boundary. */
export function wrapSourceError(err: unknown, where: { uri: string; action: string }): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = (err ?? {}) as { code?: string; errno?: number; message?: string; sqlMessage?: string };
  const server = e.sqlMessage ?? e.message ?? String(err);
  const detail = `source ${maskUri(where.uri)} while ${where.action}: ${server}`;
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
      return make('SOURCE_STREAM_ENDED');
    case 'ER_ACCESS_DENIED_ERROR':
      return make('AUTH_FAILED');
    case 'ER_DBACCESS_DENIED_ERROR':
    case 'ER_TABLEACCESS_DENIED_ERROR':
    case 'ER_SPECIFIC_ACCESS_DENIED_ERROR':
    case 'ER_COLUMNACCESS_DENIED_ERROR':
      return make('PERMISSION_DENIED');
    case 'ER_BAD_DB_ERROR':
      return make('DATABASE_NOT_FOUND');
    case 'ER_TABLE_DEF_CHANGED':
      return make('SOURCE_SNAPSHOT_SCHEMA_MOVED');
    case 'ER_NO_SUCH_TABLE':
      return make('SOURCE_TABLE_NOT_FOUND');
  }
  if (e.errno === 1227) return make('PERMISSION_DENIED');
  return make('SOURCE_STREAM_ENDED', e.errno === undefined);
}
