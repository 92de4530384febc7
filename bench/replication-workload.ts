/**
 * The source workload of the replication benchmark, on `public.items`:
 *
 *   inserts  ids 1..rows, in transactions of `txnRows` (INSERT … SELECT generate_series)
 *   updates  `rows` updates over the hot keys 1..hotKeys, `txnRows` distinct keys per transaction
 *   marker   one row with id -1, committed last: consumers are done once they have applied it
 *
 * Deterministic: the same rows and the same transactions in every run.
 */
import type pg from 'pg';
import { sleep } from './bench-cluster.ts';

export const ITEMS_DDL =
  'CREATE TABLE public.items (id bigint PRIMARY KEY, grp int NOT NULL, payload text NOT NULL)';
export const MARKER_ID = -1;

export interface WorkloadShape {
  readonly rows: number;
  readonly hotKeys: number;
  readonly txnRows: number;
}

/** Row changes the consumers must apply: inserts, updates and the marker. */
export function workloadChanges(w: WorkloadShape): number {
  return 2 * w.rows + 1;
}

export async function runWorkload(
  c: pg.Client,
  w: WorkloadShape,
): Promise<{ insertMs: number; updateMs: number }> {
  const t0 = Date.now();
  for (let lo = 1; lo <= w.rows; lo += w.txnRows) {
    const hi = Math.min(w.rows, lo + w.txnRows - 1);
    await c.query(
      'INSERT INTO public.items SELECT g, 0, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g',
      [lo, hi],
    );
  }
  const t1 = Date.now();
  for (let done = 0; done < w.rows; done += w.txnRows) {
    const n = Math.min(w.txnRows, w.rows - done);
    const lo = (done % w.hotKeys) + 1;
    await c.query(
      `UPDATE public.items SET grp = grp + 1, payload = md5(id::text || ':' || (grp + 1)::text)
        WHERE id BETWEEN $1::bigint AND $2::bigint`,
      [lo, lo + n - 1],
    );
  }
  await c.query(`INSERT INTO public.items VALUES (${MARKER_ID}, 0, 'end of workload')`);
  return { insertMs: t1 - t0, updateMs: Date.now() - t1 };
}

export interface PacedRun {
  /** Commit-to-visible latency of each writer transaction, as seen by polling the downstream. */
  readonly latenciesMs: number[];
  /** The same, of the transactions committed after the first `warmupSeconds` (all without it). */
  readonly steadyLatenciesMs: number[];
  /** Rows the writer actually committed per second (it may fall behind the target). */
  readonly achievedRowsPerSec: number;
  /** The last id written. */
  readonly lastId: number;
}

/**
 * Writes `rowsPerSec` new rows for `seconds`, one transaction every `tickMs`, while polling
 * `max(id)` of the downstream copy of `items` every `pollMs`. A transaction's latency is the time
 * from its COMMIT returning to the first poll that sees its last id (so it includes up to one poll
 * interval and one round trip; the same method is used for every consumer).
 */
export async function pacedLatency(options: {
  writer: pg.Client;
  probe: pg.Client;
  firstId: number;
  rowsPerSec: number;
  seconds: number;
  tickMs: number;
  pollMs: number;
  /**
   * Transactions committed in the first seconds count in `latenciesMs` only: both sides start
   * cold (JIT, plan caches, the sink's first statements), and a user's p99 over hours is the
   * steady state's.
   */
  warmupSeconds?: number;
}): Promise<PacedRun> {
  const { writer, probe, tickMs } = options;
  const perTick = Math.max(1, Math.round((options.rowsPerSec * tickMs) / 1000));
  const ticks = Math.round((options.seconds * 1000) / tickMs);
  const pending: { lastId: number; committedAt: number; steady: boolean }[] = [];
  const latenciesMs: number[] = [];
  const steadyLatenciesMs: number[] = [];
  let writing = true;
  let writtenAt = 0;
  const poll = async () => {
    while (writing || pending.length > 0) {
      if (!writing && Date.now() - writtenAt > 60_000) {
        throw new Error(`downstream did not catch up within 60 s after the paced writer stopped`);
      }
      const r = await probe.query<{ m: string | null }>('SELECT max(id)::text AS m FROM public.items');
      const seenAt = Date.now();
      const max = Number(r.rows[0]?.m ?? 0);
      while (pending.length > 0 && pending[0]!.lastId <= max) {
        const t = pending.shift()!;
        latenciesMs.push(Math.max(0, seenAt - t.committedAt));
        if (t.steady) steadyLatenciesMs.push(Math.max(0, seenAt - t.committedAt));
      }
      await sleep(options.pollMs);
    }
  };
  const poller = poll();
  const t0 = Date.now();
  let next = options.firstId;
  try {
    for (let i = 0; i < ticks; i++) {
      const wait = t0 + i * tickMs - Date.now();
      if (wait > 0) await sleep(wait);
      const lastId = next + perTick - 1;
      await writer.query(
        'INSERT INTO public.items SELECT g, 1, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g',
        [next, lastId],
      );
      const committedAt = Date.now();
      pending.push({ lastId, committedAt, steady: committedAt - t0 >= (options.warmupSeconds ?? 0) * 1000 });
      next = lastId + 1;
    }
  } finally {
    writing = false;
    writtenAt = Date.now();
  }
  const elapsedMs = Date.now() - t0;
  await poller;
  return {
    latenciesMs,
    steadyLatenciesMs,
    achievedRowsPerSec: ((next - options.firstId) * 1000) / elapsedMs,
    lastId: next - 1,
  };
}
