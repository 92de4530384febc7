import pg from 'pg';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import { PostgresSource, sourceObjectName } from '../source/postgres/pg-source.ts';

/** Drops the changefeed's replication slot and publication (`tidemark_<id>`) in the source. */
export async function dropSourceObjects(cfg: ChangefeedConfig): Promise<void> {
  const source = new PostgresSource({
    url: cfg.source,
    changefeedId: cfg.id,
    tables: cfg.tables,
    snapshot: cfg.snapshot,
    heartbeatIntervalMs: cfg.heartbeatIntervalMs,
  });
  try {
    await source.dropSlot();
    await source.dropPublication();
  } finally {
    await source.close();
  }
}

/**
 * WAL the changefeed's slot keeps in the source (current WAL − restart_lsn), or null when the
 * slot does not exist or the source cannot be reached (a metric, never an error).
 */
export async function retainedWalBytes(cfg: ChangefeedConfig): Promise<number | null> {
  const client = new pg.Client({ connectionString: cfg.source, application_name: 'tidemark metrics' });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ retained: string | null }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained
         FROM pg_replication_slots WHERE slot_name = $1`,
      [sourceObjectName(cfg.id)],
    );
    const v = rows[0]?.retained;
    return v === undefined || v === null ? null : Number(v);
  } catch {
    return null;
  } finally {
    await client.end().catch(() => {});
  }
}
