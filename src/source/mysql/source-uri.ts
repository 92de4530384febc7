/**
 * `mysql://user:password@host:3306/shop` (also `mariadb://`; TLS as for the MySQL sink,
 * `mysql-uri.ts`) → mysql2 connection options, and the connector's `sourceKey`.
 */
import type { ConnectionOptions } from 'mysql2';
import mysql, { type Connection } from 'mysql2/promise';
import { createHash } from 'node:crypto';
import { MARIADB_LIMITS_LIFTED, mysqlUriParts } from './mysql-uri.ts';

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
  const { host, port, user, password, database, ssl } = mysqlUriParts(uri, 'source');
  const config: ConnectionOptions = {
    ...(ssl === undefined ? {} : { ssl }),
    host,
    port,
    user,
    password,
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

/**
 * A connection to the source with the limits operators set against runaway queries and idle
 * sessions lifted for it: a snapshot's chunk reads run long by design and its readers sit idle in
 * their transactions while a slow sink catches up (MariaDB's `max_statement_time`, also set per
 * user, `idle_*transaction_timeout` and `wait_timeout`). Kept, they fail the copy on every retry.
 */
export async function connectSource(source: SourceUri, extra: ConnectionOptions = {}): Promise<Connection> {
  const c = await mysql.createConnection({ ...source.config, ...extra });
  try {
    await c.query(
      `SET SESSION wait_timeout = GREATEST(@@session.wait_timeout, 28800)${MARIADB_LIMITS_LIFTED}`,
    );
  } catch (err) {
    await c.end().catch(() => {});
    throw err;
  }
  return c;
}
