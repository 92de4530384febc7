/**
 * Picks the connector for a source URI by its scheme: one entry per kind of source database. A
 * connector's module (and its driver) is imported when first used, so a process loads only the
 * database it reads; the key of a source is computed without loading it.
 */
import { maskUri } from '../errors/mask.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { SourceConnector } from './connector.ts';
import { parseSourceUri, sourceKeyOf as mysqlSourceKey } from './mysql/source-uri.ts';
import { sourceObjectName } from './postgres/source-names.ts';

/** The URI schemes a source may have (the config loader accepts these). */
export const SOURCE_SCHEMES: readonly string[] = ['postgres', 'postgresql', 'mysql', 'mariadb'];

export interface ConnectorOptions {
  readonly heartbeatIntervalMs: number;
  /** How long a snapshot may wait for the source's running transactions before naming them. */
  readonly snapshotStartTimeoutMs?: number;
  /** Things an operator should know; must not throw. */
  readonly onWarning?: (message: string, fields: Record<string, unknown>) => void;
}

interface ConnectorKind {
  /** The connector's `sourceKey` for `url`, without connecting or loading the connector. */
  key(url: string): string;
  create(url: string, options: ConnectorOptions): Promise<SourceConnector>;
}

const POSTGRES: ConnectorKind = {
  key: (url) => sourceObjectName(url),
  create: async (url, options) =>
    new (await import('./postgres/pg-connector.ts')).PostgresConnector({ url, ...options }),
};
const MYSQL: ConnectorKind = {
  key: (url) => mysqlSourceKey(parseSourceUri(url)),
  create: async (url, options) =>
    new (await import('./mysql/mysql-connector.ts')).MysqlConnector({
      uri: url,
      heartbeatMs: options.heartbeatIntervalMs,
    }),
};
const KINDS: Readonly<Record<string, ConnectorKind>> = {
  postgres: POSTGRES,
  postgresql: POSTGRES,
  mysql: MYSQL,
  mariadb: MYSQL,
};

function kindOf(url: string): ConnectorKind {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
  const kind = Object.hasOwn(KINDS, scheme) ? KINDS[scheme] : undefined;
  if (!kind) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `source ${maskUri(url)}: no connector for scheme "${scheme}" (supported: ${SOURCE_SCHEMES.map((x) => `${x}://`).join(', ')})`,
    });
  }
  return kind;
}

/** Loads and creates the connector for `url`. Connects to nothing yet. */
export async function createConnector(url: string, options: ConnectorOptions): Promise<SourceConnector> {
  return kindOf(url).create(url, options);
}

/** The connector's key for `url` without connecting (one hub per key). */
export function sourceKeyOf(url: string): string {
  return kindOf(url).key(url);
}
