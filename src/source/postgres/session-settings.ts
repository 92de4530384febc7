/**
 * Session settings for every connection that reads or writes row text: snapshot readers, the
 * replication connection (pgoutput prints values with the walsender's settings) and PostgreSQL
 * sinks. With the same settings on both paths, a row read by the snapshot and the same row
 * streamed later are the same bytes — the "decodes identically" guarantee rests on this.
 *
 * The two timeouts are off because operators set them (per database or role) to protect a primary
 * from runaway queries and forgotten sessions, and Tidemark's reads are neither: a COPY of a big
 * table runs long by design, and a snapshot's transaction sits idle while a slow sink catches up.
 * Inherited, they would cancel the initial snapshot over and over. `lock_timeout` stays the
 * operator's. What the operator's idle timeout also did — end a session whose client vanished (a
 * host lost, a partition) and release its snapshot, which holds back vacuum — TCP keepalives do
 * for Tidemark's sessions: the server drops a silent peer after about two minutes.
 */
import type pg from 'pg';
import { wrapPgError } from './pg-errors.ts';
import { connectPgClient } from './pg-tls.ts';

export const SESSION_SETTINGS: Readonly<Record<string, string>> = {
  DateStyle: 'ISO, MDY',
  TimeZone: 'UTC',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  client_encoding: 'UTF8',
  standard_conforming_strings: 'on',
  statement_timeout: '0',
  idle_in_transaction_session_timeout: '0',
  tcp_keepalives_idle: '60',
  tcp_keepalives_interval: '10',
  tcp_keepalives_count: '6',
};

/** The settings as a libpq `options` string (`-c name=value …`), escaping spaces. */
export function sessionOptions(): string {
  return Object.entries(SESSION_SETTINGS)
    .map(([k, v]) => `-c ${k}=${v.replace(/([\\ ])/g, '\\$1')}`)
    .join(' ');
}

/**
 * Limits of later servers, which older ones do not know (so not in the startup options, which
 * they would refuse): `idle_session_timeout` (14) would close the catalog session between
 * checks, `transaction_timeout` (17) would cancel a long snapshot transaction on every retry.
 */
const VERSIONED_LIMITS_SQL = `DO $tidemark$ BEGIN
  IF current_setting('server_version_num')::int >= 140000 THEN PERFORM set_config('idle_session_timeout', '0', false); END IF;
  IF current_setting('server_version_num')::int >= 170000 THEN PERFORM set_config('transaction_timeout', '0', false); END IF;
END $tidemark$`;

/**
 * A client for reading the source: the session settings above as startup options, keepalives on
 * the client's side too, and the later servers' limits lifted. May be called at any time; the
 * client is connected and outside any transaction. Errors are wrapped once (role source).
 */
export async function connectSourceClient(
  uri: string,
  extra: Omit<pg.ClientConfig, 'connectionString' | 'ssl' | 'options'>,
  action: string,
): Promise<pg.Client> {
  const c = await connectPgClient(
    uri,
    { ...extra, options: sessionOptions(), keepAlive: true },
    { role: 'source', action },
  );
  try {
    await c.query(VERSIONED_LIMITS_SQL);
  } catch (err) {
    await c.end().catch(() => {});
    throw wrapPgError(err, { role: 'source', uri, action });
  }
  return c;
}
