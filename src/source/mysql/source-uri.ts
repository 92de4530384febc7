/**
 * `mysql://user:password@host:3306/shop` (also `mariadb://`; TLS as for the MySQL sink,
 * `mysql-uri.ts`) → mysql2 connection options, and the connector's `sourceKey`.
 */
import type { ConnectionOptions } from 'mysql2';
import { createHash } from 'node:crypto';
import { mysqlUriParts } from './mysql-uri.ts';

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
