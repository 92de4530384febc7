/**
 * Picks the connector for a source URI by its scheme: one line per kind of source database.
 */
import { maskUri } from '../errors/mask.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { SourceConnector } from './connector.ts';
import { MysqlConnector } from './mysql/mysql-connector.ts';
import { PostgresConnector } from './postgres/pg-connector.ts';

/** The URI schemes a source may have (the config loader accepts these). */
export const SOURCE_SCHEMES: readonly string[] = ['postgres', 'postgresql', 'mysql', 'mariadb'];

export interface ConnectorOptions {
  readonly heartbeatIntervalMs: number;
  /** How long a snapshot may wait for the source's running transactions before naming them. */
  readonly snapshotStartTimeoutMs?: number;
  /** Things an operator should know; must not throw. */
  readonly onWarning?: (message: string, fields: Record<string, unknown>) => void;
}

export function createConnector(url: string, options: ConnectorOptions): SourceConnector {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'postgres':
    case 'postgresql':
      return new PostgresConnector({ url, ...options });
    case 'mysql':
    case 'mariadb':
      return new MysqlConnector({ uri: url, heartbeatMs: options.heartbeatIntervalMs });
    default:
      throw new TidemarkError('CONFIG_INVALID', {
        detail: `source ${maskUri(url)}: no connector for scheme "${scheme ?? ''}" (supported: ${SOURCE_SCHEMES.map((x) => `${x}://`).join(', ')})`,
      });
  }
}

/** The connector's key for `url` without connecting (one hub per key). */
export function sourceKeyOf(url: string): string {
  return createConnector(url, { heartbeatIntervalMs: 1000 }).sourceKey;
}
