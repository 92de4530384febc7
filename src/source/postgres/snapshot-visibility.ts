/**
 * Which transactions a PostgreSQL snapshot sees, from its text form (`pg_current_snapshot()`,
 * `xmin:xmax:xip,…` as 64-bit xids) and a transaction's 32-bit xid as pgoutput's BEGIN carries it.
 *
 * A committed transaction is visible in snapshot S exactly when its xid precedes xmax(S) and is
 * not in xip(S) (PostgreSQL's XidInMVCCSnapshot, for a top-level xid; a subtransaction's changes
 * arrive under its top-level xid). The stream only ever carries committed transactions. xids are
 * compared modulo 2^32 the way PostgreSQL does (TransactionIdPrecedes): both sides are within
 * 2^31 of each other, since the chunk is read while those transactions are recent.
 */
import { TidemarkError } from '../../errors/tidemark-error.ts';

/** `(xid) => visible in the snapshot`, for a committed transaction's 32-bit xid. */
export function snapshotContains(text: string): (xid: number) => boolean {
  const m = /^(\d+):(\d+):([\d,]*)$/.exec(text.trim());
  if (!m) throw new TidemarkError('SOURCE_PROTOCOL', { detail: `unexpected snapshot text "${text}"` });
  const low32 = (s: string) => Number(BigInt(s) & 0xffffffffn);
  const xmax = low32(m[2]!);
  const xip = new Set(m[3] ? m[3].split(',').map(low32) : []);
  return (xid) => precedes(xid >>> 0, xmax) && !xip.has(xid >>> 0);
}

/** a < b in PostgreSQL's circular xid order (normal xids). */
function precedes(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
