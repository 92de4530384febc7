/**
 * Session settings for every connection that reads or writes row text: snapshot readers, the
 * replication connection (pgoutput prints values with the walsender's settings) and PostgreSQL
 * sinks. With the same settings on both paths, a row read by the snapshot and the same row
 * streamed later are the same bytes — the "decodes identically" guarantee rests on this.
 */
export const SESSION_SETTINGS: Readonly<Record<string, string>> = {
  DateStyle: 'ISO, MDY',
  TimeZone: 'UTC',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  client_encoding: 'UTF8',
  standard_conforming_strings: 'on',
};

/** The settings as a libpq `options` string (`-c name=value …`), escaping spaces. */
export function sessionOptions(): string {
  return Object.entries(SESSION_SETTINGS)
    .map(([k, v]) => `-c ${k}=${v.replace(/([\\ ])/g, '\\$1')}`)
    .join(' ');
}
