/**
 * One prerequisite checked before a changefeed starts (`tidemark doctor`, and the server before
 * it creates a changefeed): what was checked, what was found, and how to fix it.
 *
 * `fail`: starting would not work, or would harm the source or lose data; `warn`: it works, but
 * an operator should know (WAL held by an idle slot, little disk); `ok`: checked and fine.
 */
export interface DoctorCheck {
  /** Stable id, e.g. `source.wal_level`, `sink.reachable`. */
  readonly id: string;
  readonly status: 'ok' | 'warn' | 'fail';
  /** One line: what was found. Credentials masked. */
  readonly detail: string;
  /** What to do, for `warn` and `fail`. */
  readonly fix?: string;
}
