/**
 * Helpers for end-to-end changefeed tests: config for a source/sink pair, waiting until the sink
 * has caught up with a source position, and comparing tables row for row (as text).
 */
import { expect } from 'vitest';
import pg from 'pg';
import {
  defineChangefeed,
  type ChangefeedConfig,
  type ChangefeedInput,
} from '../../src/runtime/changefeed-config.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';

export function testConfig(
  input: Partial<ChangefeedInput> & Pick<ChangefeedInput, 'source' | 'sink' | 'tables'>,
): ChangefeedConfig {
  return defineChangefeed({
    id: input.id ?? 'test',
    heartbeatIntervalMs: 100,
    epoch: { intervalMs: 50 },
    snapshot: { parallelism: 2, chunkRows: 1000 },
    ...input,
  });
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function currentLsn(url: string): Promise<Lsn> {
  return withClient(url, async (c) =>
    // The insert position, not pg_current_wal_lsn() (the write position): with
    // synchronous_commit = off the last commits may not be written yet, and a target before them
    // would let a wait for "caught up" return early.
    Lsn.parse((await c.query('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l),
  );
}

/** Reads the changefeed's checkpoint row from a PostgreSQL sink (null if none). */
export async function sinkCheckpoint(
  sinkUrl: string,
  id: string,
): Promise<{ position: string; epoch: number } | null> {
  return withClient(sinkUrl, async (c) => {
    const exists = await c.query(`SELECT to_regclass('tidemark.checkpoints') AS t`);
    if (!exists.rows[0].t) return null;
    const r = await c.query(
      'SELECT position, epoch::int AS epoch FROM tidemark.checkpoints WHERE changefeed = $1',
      [id],
    );
    return r.rows[0] ?? null;
  });
}

/** Waits until the sink's checkpoint passes the source's current WAL position (bounded wait). */
export async function waitForCatchUp(opts: {
  sourceUrl: string;
  sinkUrl: string;
  id: string;
  timeoutMs?: number;
}): Promise<void> {
  const target = await currentLsn(opts.sourceUrl);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const cp = await sinkCheckpoint(opts.sinkUrl, opts.id);
    // A snapshot committed table by table has its checkpoint at its position from the first
    // table's commit on; it is complete once its temporary slot (held for the snapshot) is gone.
    if (cp && Lsn.parse(cp.position).compare(target) >= 0 && !(await snapshotRunning(opts.sourceUrl))) return;
    if (Date.now() > deadline) {
      throw new Error(`sink did not catch up to ${target} (checkpoint ${cp?.position ?? 'none'})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function snapshotRunning(sourceUrl: string): Promise<boolean> {
  return withClient(sourceUrl, async (c) => {
    const r = await c.query(
      `SELECT count(*)::int AS n FROM pg_replication_slots
        WHERE database = current_database() AND temporary AND slot_name LIKE '%\\_snap\\_%'`,
    );
    return (r.rows[0] as { n: number }).n > 0;
  });
}

/** All rows of a table as sorted text, for exact comparison across databases. */
export async function tableText(url: string, table: string): Promise<string[]> {
  return withClient(url, async (c) => {
    await c.query(`SET TimeZone = 'UTC'; SET extra_float_digits = 3`);
    const r = await c.query(`SELECT t::text AS r FROM ${table} t ORDER BY 1`);
    return r.rows.map((x: { r: string }) => x.r);
  });
}

export async function expectSameTables(sourceUrl: string, sinkUrl: string, tables: string[]): Promise<void> {
  for (const t of tables) {
    const [a, b] = await Promise.all([tableText(sourceUrl, t), tableText(sinkUrl, t)]);
    const sinkRows = new Set(b);
    const sourceRows = new Set(a);
    const missing = a.filter((r) => !sinkRows.has(r));
    const extra = b.filter((r) => !sourceRows.has(r));
    const diff = [
      ...missing.slice(0, 5).map((r) => `  only in the source: ${r}`),
      ...extra.slice(0, 5).map((r) => `  only in the sink:   ${r}`),
    ].join('\n');
    expect(b.length, `${t}: row count\n${diff}`).toBe(a.length);
    expect(
      b,
      `${t}: rows (${missing.length} only in the source, ${extra.length} only in the sink)\n${diff}`,
    ).toEqual(a);
  }
}
