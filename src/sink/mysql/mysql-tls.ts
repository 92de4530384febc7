/**
 * TLS for the MySQL sink: the URI's `ssl-*` parameters (the MySQL client's option names) mapped,
 * in this one place, to the `ssl` option of mysql2.
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

/** The mysql2 `ssl` option for a sink URI, or undefined for a plain connection. CONFIG_INVALID. */
export function mysqlSslOptions(uri: string, u: URL): SslOptions | undefined {
  const given = u.searchParams.get('ssl-mode');
  const mode = (given ?? 'DISABLED').toUpperCase().replaceAll('-', '_');
  if (!(MODES as readonly string[]).includes(mode)) {
    throw invalid(
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
      throw invalid(uri, `${param}=${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  if (mode === 'DISABLED') {
    for (const p of ['ssl-ca', 'ssl-cert', 'ssl-key'])
      if (u.searchParams.has(p)) throw invalid(uri, `${p} is given but ssl-mode is DISABLED`);
    return undefined;
  }
  const ca = file('ssl-ca');
  const cert = file('ssl-cert');
  const key = file('ssl-key');
  if ((cert === undefined) !== (key === undefined)) throw invalid(uri, 'ssl-cert and ssl-key go together');
  return {
    rejectUnauthorized: mode !== 'REQUIRED',
    ...(mode === 'VERIFY_CA' ? { verifyIdentity: false } : {}),
    ...(mode === 'VERIFY_IDENTITY' ? { verifyIdentity: true } : {}),
    ...(ca === undefined || mode === 'REQUIRED' ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

function invalid(uri: string, detail: string): TidemarkError {
  return new TidemarkError('CONFIG_INVALID', {
    detail: `sink URI ${maskUri(uri)}: ${detail}`,
    hint: 'See "TLS" in docs/sinks.md for the ssl-mode, ssl-ca, ssl-cert and ssl-key parameters.',
  });
}
