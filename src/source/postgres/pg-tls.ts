/**
 * TLS for every PostgreSQL connection Tidemark opens, with libpq's `sslmode` semantics, in one
 * place for both clients: our replication connection (`openPgSocket`) and node-postgres
 * (`connectPgClient`, used by the source's SQL connections and the PostgreSQL sink).
 *
 * URI parameters (libpq's names; anything else in the query string is left to the driver):
 *
 *   sslmode      disable · allow · prefer (default, as libpq) · require · verify-ca · verify-full
 *   sslrootcert  PEM file of the CA(s) to trust, or `system` for the system's roots
 *                (default ~/.postgresql/root.crt when it exists, as libpq)
 *   sslcert, sslkey   a client certificate and its key (PEM files)
 *
 *   mode         TLS?                          verifies the certificate     falls back
 *   disable      never                         –                            –
 *   allow        only if the server wants it   no                           plain first, TLS on refusal
 *   prefer       if the server offers it       no                           TLS first, plain if not offered
 *   require      always                        no — but with a root cert    never
 *                                              given it is verify-ca (libpq)
 *   verify-ca    always                        chain to sslrootcert         never
 *   verify-full  always                        chain + host name            never
 *
 * node-postgres parses `sslmode` itself, differently (it takes `require` as `verify-full` and has
 * no `prefer`/`allow` fallback): these parameters are removed from the URI it sees and its `ssl`
 * option is set explicitly from the table above (which also keeps PGSSLMODE from the
 * environment out of it).
 */
import { readFileSync, existsSync } from 'node:fs';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { maskUri } from '../../errors/mask.ts';
import { wrapPgError } from './pg-errors.ts';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'] as const;

/** What a URI asks for, files read. */
export interface PgTlsPlan {
  readonly mode: SslMode;
  /** `none`: encrypt only; `ca`: the chain; `full`: the chain and the host name. */
  readonly verify: 'none' | 'ca' | 'full';
  /** Options for `tls.connect` (servername, ca, cert, key, rejectUnauthorized, identity check). */
  readonly tls: ConnectionOptions;
}

/** True when the connection must be encrypted or fail. */
export function demandsTls(mode: SslMode): boolean {
  return mode === 'require' || mode === 'verify-ca' || mode === 'verify-full';
}

/** Reads the TLS parameters of a postgres:// URI. Throws CONFIG_INVALID naming the parameter. */
export function pgTlsPlan(uri: string): PgTlsPlan {
  const u = parse(uri);
  const p = u.searchParams;
  const given = p.get('sslmode');
  if (given !== null && !(SSL_MODES as readonly string[]).includes(given)) {
    throw invalid(uri, `sslmode=${given}: expected one of ${SSL_MODES.join(', ')}`);
  }
  let mode: SslMode = (given as SslMode | null) ?? 'prefer';
  const host = u.hostname.replace(/^\[|\]$/g, '') || 'localhost';
  const rootParam = p.get('sslrootcert');
  const system = rootParam === 'system';
  if (system && given !== null && mode !== 'verify-full') {
    // libpq 16: the system's roots vouch for any name they signed, so only verify-full is safe.
    throw invalid(uri, `sslrootcert=system needs sslmode=verify-full, got sslmode=${mode}`);
  }
  if (system) mode = 'verify-full';
  const defaultRoot = join(homedir(), '.postgresql', 'root.crt');
  const rootFile = system ? null : (rootParam ?? (existsSync(defaultRoot) ? defaultRoot : null));
  // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
  const verify: PgTlsPlan['verify'] =
    mode === 'verify-full'
      ? 'full'
      : mode === 'verify-ca' || (mode === 'require' && rootFile)
        ? 'ca'
        : 'none';
  if (verify !== 'none' && !system && rootFile === null) {
    throw invalid(
      uri,
      `sslmode=${mode} needs the CA to trust: add sslrootcert=/path/ca.crt (or sslrootcert=system for the system's roots)`,
    );
  }
  const tls: ConnectionOptions = {
    // The name the certificate must carry (verify-full); without it Node checks `localhost`.
    host,
    rejectUnauthorized: verify !== 'none',
    ...(isIP(host) ? {} : { servername: host }),
    ...(verify === 'ca' ? { checkServerIdentity: () => undefined } : {}),
    ...(verify !== 'none' && rootFile ? { ca: readPem(uri, 'sslrootcert', rootFile) } : {}),
  };
  const cert = p.get('sslcert');
  const key = p.get('sslkey');
  if ((cert === null) !== (key === null)) throw invalid(uri, 'sslcert and sslkey go together');
  if (cert !== null && key !== null) {
    tls.cert = readPem(uri, 'sslcert', cert);
    tls.key = readPem(uri, 'sslkey', key);
  }
  return { mode, verify, tls };
}

/** The URI without the TLS parameters, for a driver that would read them its own way. */
export function withoutTlsParams(uri: string): string {
  const u = parse(uri);
  for (const k of TLS_PARAMS) u.searchParams.delete(k);
  return u.toString();
}

/**
 * A node-postgres client, connected, with TLS as the URI's sslmode says (see the table above;
 * `allow` and `prefer` fall back by connecting again, as libpq does). Errors are wrapped once
 * (`wrapPgError`, role as given). `extra` adds client options (application_name, types, …).
 */
export async function connectPgClient(
  uri: string,
  extra: Omit<pg.ClientConfig, 'connectionString' | 'ssl'>,
  where: { role: 'source' | 'sink'; action?: string },
): Promise<pg.Client> {
  const plan = pgTlsPlan(uri);
  const connectionString = withoutTlsParams(uri);
  const attempt = async (ssl: false | ConnectionOptions) => {
    const client = new pg.Client({ ...extra, connectionString, ssl });
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => {});
      throw wrapPgError(err, { ...where, uri });
    }
  };
  const first: false | ConnectionOptions =
    plan.mode === 'disable' || plan.mode === 'allow' ? false : plan.tls;
  try {
    return await attempt(first);
  } catch (err) {
    const code = (err as TidemarkError).code;
    if (plan.mode === 'prefer' && code === 'TLS_NOT_OFFERED') return attempt(false);
    if (plan.mode === 'allow' && code === 'TLS_REQUIRED_BY_SERVER') return attempt(plan.tls);
    throw err;
  }
}

/**
 * A socket to the server, encrypted as the plan says, ready for the StartupMessage: sends
 * SSLRequest unless `disable` (or `allow`'s first, plain try), and upgrades on `S`. `encrypted`
 * tells the startup handshake whether a cleartext password may be sent.
 */
export async function openPgSocket(opts: {
  host: string;
  port: number;
  plan: PgTlsPlan;
  /** Force a plain (false) or TLS (true) try; default: the plan's first choice. */
  tls?: boolean;
  uri: string;
}): Promise<{ socket: Socket; encrypted: boolean }> {
  const wantTls = opts.tls ?? !(opts.plan.mode === 'disable' || opts.plan.mode === 'allow');
  const socket = netConnect({ host: opts.host, port: opts.port });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    if (!wantTls) return { socket, encrypted: false };
    const answer = await sslRequest(socket);
    if (answer === 'N') {
      if (demandsTls(opts.plan.mode)) throw notOffered(opts.uri);
      return { socket, encrypted: false };
    }
    const secure = tlsConnect({ ...opts.plan.tls, socket });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    secure.removeAllListeners('error');
    return { socket: secure, encrypted: true };
  } catch (err) {
    socket.destroy();
    throw err instanceof TidemarkError ? err : wrapPgError(err, { role: 'source', uri: opts.uri });
  }
}

/** SSLRequest (int32 8, int32 80877103) → the server's one-byte answer, `S` or `N`. */
function sslRequest(socket: Socket): Promise<'S' | 'N'> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      socket.off('data', onData);
      socket.off('error', reject);
      const c = String.fromCharCode(chunk[0] ?? 0);
      // Bytes after the answer would be read as if they came over TLS (CVE-2021-23222).
      if (chunk.length !== 1 || (c !== 'S' && c !== 'N')) {
        reject(
          new TidemarkError('SOURCE_PROTOCOL', {
            detail: `unexpected answer to SSLRequest (${chunk.length} bytes, first ${JSON.stringify(c)})`,
          }),
        );
        return;
      }
      resolve(c);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(80877103, 4);
    socket.write(request);
  });
}

function notOffered(uri: string): TidemarkError {
  return new TidemarkError('TLS_NOT_OFFERED', {
    detail: `${maskUri(uri)}: the server does not offer TLS, and sslmode=${pgTlsPlan(uri).mode} demands it; nothing was sent`,
  });
}

function parse(uri: string): URL {
  try {
    return new URL(uri);
  } catch (err) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `not a connection URI: ${maskUri(uri)}`,
      cause: err,
    });
  }
}

function readPem(uri: string, param: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw invalid(uri, `${param}=${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function invalid(uri: string, detail: string): TidemarkError {
  return new TidemarkError('CONFIG_INVALID', {
    detail: `${maskUri(uri)}: ${detail}`,
    hint: 'See "TLS" in docs/config-reference.md for sslmode, sslrootcert, sslcert and sslkey.',
  });
}
