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
 * operator's.
 */
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
};

/** The settings as a libpq `options` string (`-c name=value …`), escaping spaces. */
export function sessionOptions(): string {
  return Object.entries(SESSION_SETTINGS)
    .map(([k, v]) => `-c ${k}=${v.replace(/([\\ ])/g, '\\$1')}`)
    .join(' ');
}
