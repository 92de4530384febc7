/**
 * One parser for the MySQL URIs of both sides, the source connector and the MySQL sink (which
 * imports it from here, as sink/postgres does source/postgres's TLS): user, password, host, port,
 * database, and TLS from the URI's `ssl-*` parameters (the MySQL client's option names), mapped
 * in this one place to the `ssl` option of mysql2.
 *
 *   mysql://user:pw@host:3306/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/tidemark/mysql-ca.pem
 *
 *   ssl-mode          TLS      verifies                   mysql2 `ssl`
 *   DISABLED (default) never   –                          (none)
 *   REQUIRED          always   nothing                    { rejectUnauthorized: false }
 *   VERIFY_CA         always   chain to ssl-ca            { ca, rejectUnauthorized: true, checkServerIdentity: none }
 *   VERIFY_IDENTITY   always   chain + host name          { ca, rejectUnauthorized: true }
 *
 *   ssl-ca   PEM file of the CA(s); without it VERIFY_* trust the system's roots
 *   ssl-cert, ssl-key   a client certificate and its key
 *
 * PREFERRED (the mysql client's default) is refused: mysql2 cannot fall back to a plain
 * connection, so it would mean REQUIRED against some servers and an error against others.
 */
import { readFileSync } from 'node:fs';
import type { SslOptions } from 'mysql2';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';

const MODES = ['DISABLED', 'REQUIRED', 'VERIFY_CA', 'VERIFY_IDENTITY'] as const;

export type MysqlRole = 'source' | 'sink';

/**
 * Appended to a `SET SESSION …` (source and sink): MariaDB's statement limit and, from 10.3, its
 * idle-transaction limits lifted, in comments only MariaDB runs (MySQL and TiDB have no such
 * variables and skip them). Operators set them against runaway queries and forgotten sessions;
 * a snapshot's reads and writes run long and wait on the other side by design, and inherited they
 * fail the same work on every retry.
 */
export const MARIADB_LIMITS_LIFTED =
  ' /*M!, max_statement_time = 0 */' +
  ' /*M!100300 , idle_transaction_timeout = 0, idle_readonly_transaction_timeout = 0, idle_write_transaction_timeout = 0 */';

export interface MysqlUriParts {
  readonly url: URL;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** The URI's path: the database (null when empty). */
  readonly database: string | null;
  /** mysql2's `ssl` option; undefined: a plain connection. */
  readonly ssl: SslOptions | undefined;
}

/**
 * Splits a `mysql://` URI (a source also takes `mariadb://`); CONFIG_INVALID naming the role and
 * the masked URI when it is not one.
 */
export function mysqlUriParts(uri: string, role: MysqlRole): MysqlUriParts {
  let u: URL;
  try {
    u = new URL(uri);
  } catch (cause) {
    throw new TidemarkError('CONFIG_INVALID', { detail: `${role} URI is not a URI: ${maskUri(uri)}`, cause });
  }
  if (u.protocol !== 'mysql:' && !(role === 'source' && u.protocol === 'mariadb:')) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `${role} URI ${maskUri(uri)}: expected mysql://user:password@host:port/database`,
    });
  }
  return {
    url: u,
    host: u.hostname || '127.0.0.1',
    port: u.port === '' ? 3306 : Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || null,
    ssl: mysqlSslOptions(uri, u, role),
  };
}

/** The mysql2 `ssl` option for a URI, or undefined for a plain connection. CONFIG_INVALID. */
function mysqlSslOptions(uri: string, u: URL, role: MysqlRole): SslOptions | undefined {
  const given = u.searchParams.get('ssl-mode');
  const mode = (given ?? 'DISABLED').toUpperCase().replaceAll('-', '_');
  if (!(MODES as readonly string[]).includes(mode)) {
    throw invalid(
      role,
      uri,
      mode === 'PREFERRED'
        ? 'ssl-mode=PREFERRED is not supported (the driver cannot fall back to a plain connection): use REQUIRED, VERIFY_CA, VERIFY_IDENTITY or DISABLED'
        : `ssl-mode=${given}: expected one of ${MODES.join(', ')}`,
    );
  }
  const file = (param: string) => {
    const path = u.searchParams.get(param);
    if (path === null) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw invalid(role, uri, `${param}=${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  if (mode === 'DISABLED') {
    for (const p of ['ssl-ca', 'ssl-cert', 'ssl-key'])
      if (u.searchParams.has(p)) throw invalid(role, uri, `${p} is given but ssl-mode is DISABLED`);
    return undefined;
  }
  const ca = file('ssl-ca');
  const cert = file('ssl-cert');
  const key = file('ssl-key');
  if ((cert === undefined) !== (key === undefined))
    throw invalid(role, uri, 'ssl-cert and ssl-key go together');
  return {
    rejectUnauthorized: mode !== 'REQUIRED',
    ...(mode === 'VERIFY_CA' ? { verifyIdentity: false } : {}),
    ...(mode === 'VERIFY_IDENTITY' ? { verifyIdentity: true } : {}),
    ...(ca === undefined || mode === 'REQUIRED' ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

function invalid(role: MysqlRole, uri: string, detail: string): TidemarkError {
  return new TidemarkError('CONFIG_INVALID', {
    detail: `${role} URI ${maskUri(uri)}: ${detail}`,
    hint: 'See the mysql:// section of docs/sinks.md for the ssl-mode, ssl-ca, ssl-cert and ssl-key parameters (a MySQL source takes the same).',
  });
}
