/**
 * A private PostgreSQL 15 cluster for one benchmark, on the first free port from 55400 (clear of
 * the test ports), with the harness's durability-off settings so disk speed does not dominate.
 */
import pg from 'pg';
import { freePort, startCluster, type PgCluster } from '../test/support/pg-cluster.ts';
import { PG_BIN_DIR } from './machine.ts';

export const BENCH_PORT_FROM = 55400;

export async function startBenchCluster(): Promise<PgCluster> {
  const port = await freePort(BENCH_PORT_FROM);
  return startCluster({
    port,
    binDir: PG_BIN_DIR,
    settings: { max_worker_processes: 16, max_logical_replication_workers: 8, autovacuum: 'on' },
  });
}

/** Runs `fn` with a connected client and closes it whatever happens. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function createDatabase(cluster: PgCluster, name: string): Promise<string> {
  await withClient(cluster.url('postgres'), (c) => c.query(`CREATE DATABASE "${name}"`));
  return cluster.url(name);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The value at quantile `q` (0..1) of `xs`, nearest-rank; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
