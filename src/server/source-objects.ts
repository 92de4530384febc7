import type pg from 'pg';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import { PostgresSource } from '../source/postgres/pg-source.ts';
import { connectPgClient } from '../source/postgres/pg-tls.ts';
import { pullerObjectName } from '../source/postgres/puller-names.ts';
import { forgetPullerReader } from '../source/postgres/puller-registry.ts';

/**
 * Unregisters a removed changefeed from its source's change log. With `dropSlot`: also drops its
 * publication (`tidemark_<id>`, the record of its selection), any slot of its own, and the
 * shared slot, publication and log of the source once no changefeed is registered there.
 */
export async function dropSourceObjects(
  cfg: ChangefeedConfig,
  opts: { dataDir: string; dropSlot: boolean },
): Promise<void> {
  await forgetPullerReader({
    url: cfg.source,
    dataDir: opts.dataDir,
    id: cfg.id,
    dropWhenUnused: opts.dropSlot,
  });
  if (!opts.dropSlot) return;
  const source = PostgresSource.forChangefeed(cfg);
  try {
    await source.dropSlot();
    await source.dropPublication();
  } finally {
    await source.close();
  }
}

/**
 * WAL the source's shared slot keeps (current WAL − restart_lsn), or null when the slot does not
 * exist or the source cannot be reached (a metric, never an error). A slow changefeed holds it
 * back for every changefeed on the source, so each reports it.
 */
export async function retainedWalBytes(source: string): Promise<number | null> {
  let client: pg.Client | undefined;
  try {
    client = await connectPgClient(source, { application_name: 'tidemark metrics' }, { role: 'source' });
    client.on('error', () => {});
    const { rows } = await client.query<{ retained: string | null }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained
         FROM pg_replication_slots WHERE slot_name = $1`,
      [pullerObjectName(source)],
    );
    const v = rows[0]?.retained;
    return v === undefined || v === null ? null : Number(v);
  } catch {
    return null;
  } finally {
    await client?.end().catch(() => {});
  }
}
