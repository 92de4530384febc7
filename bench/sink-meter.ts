/**
 * The sink's side of a Tidemark run into PostgreSQL, for CPU per op and per epoch: the CPU of the
 * sink's backend (found by its last statement: an epoch's query begins with BEGIN or ends with
 * COMMIT) and the epoch number of the changefeed's checkpoint, read together.
 */
import pg from 'pg';
import { cpuMs } from './peak-rss.ts';

export interface SinkReading {
  /** CPU of the sink's backends so far (ms), null when none was found or it exited. */
  readonly cpuMs: number | null;
  /** The epoch of the changefeed's checkpoint downstream. */
  readonly epoch: number;
}

export interface SinkMeter {
  read(): Promise<SinkReading>;
  close(): Promise<void>;
}

/** Call once the changefeed has committed epochs (its sink's last statement is an epoch's). */
export async function sinkMeter(dstUrl: string, feedId: string): Promise<SinkMeter> {
  const c = new pg.Client({ connectionString: dstUrl });
  await c.connect();
  const found = await c.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND (query ~ '^BEGIN;' OR query ~ 'COMMIT$')`,
  );
  const pids = found.rows.map((r) => r.pid);
  return {
    async read() {
      const r = await c.query<{ epoch: string | null }>(
        'SELECT epoch::text FROM tidemark.checkpoints WHERE changefeed = $1',
        [feedId],
      );
      const cpus = pids.map((p) => cpuMs(p));
      const cpu =
        pids.length === 0 || cpus.some((x) => x === null) ? null : cpus.reduce<number>((a, x) => a + x!, 0);
      return { cpuMs: cpu, epoch: Number(r.rows[0]?.epoch ?? 0) };
    },
    close: () => c.end(),
  };
}
