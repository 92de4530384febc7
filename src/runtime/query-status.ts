import type pg from 'pg';
import type { ChangefeedConfig } from './changefeed-config.ts';
import { initialStatus, type ChangefeedStatus } from './changefeed-status.ts';
import { createSink } from '../sink/create-sink.ts';
import { pullerObjectName } from '../source/postgres/puller-names.ts';
import { wrapPgError } from '../source/postgres/pg-errors.ts';
import { connectPgClient } from '../source/postgres/pg-tls.ts';
import { Lsn } from '../source/postgres/lsn.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

/**
 * A one-shot status read from the databases (for `tidemark status`): the checkpoint from the
 * sink, the source's shared slot and the WAL end. Phase is `streaming` when the slot is in use
 * (by some process pulling that database), `stopped` when it is not, `starting` when there is no
 * checkpoint yet.
 */
export async function queryChangefeedStatus(cfg: ChangefeedConfig): Promise<ChangefeedStatus> {
  const st = initialStatus(cfg.id);
  const sink = createSink(cfg.sink, { changefeedId: cfg.id });
  let client: pg.Client | undefined;
  try {
    const checkpoint = await sink.open();
    client = await connectPgClient(
      cfg.source,
      { application_name: 'tidemark status' },
      { role: 'source', action: 'connecting' },
    );
    client.on('error', () => {});
    const { rows } = await client.query<{
      active: boolean;
      wal: string;
      confirmed: string | null;
      ts: Date | null;
    }>(
      `SELECT pg_current_wal_lsn()::text AS wal,
              (SELECT active FROM pg_replication_slots WHERE slot_name = $1) AS active,
              (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1) AS confirmed`,
      [pullerObjectName(cfg.source)],
    );
    const r = rows[0]!;
    st.phase = checkpoint === null ? 'starting' : r.active ? 'streaming' : 'stopped';
    if (checkpoint) {
      st.checkpoint = checkpoint.position;
      st.resolved = r.confirmed;
      st.epoch = checkpoint.epoch;
      st.lagBytes = Math.max(0, Number(Lsn.parse(r.wal).minus(Lsn.parse(checkpoint.position))));
    }
    return st;
  } catch (err) {
    const e = err instanceof TidemarkError ? err : wrapPgError(err, { role: 'source', uri: cfg.source });
    return { ...st, phase: 'failed', error: { code: e.code, message: e.message, hint: e.hint } };
  } finally {
    await sink.close();
    await client?.end().catch(() => {});
  }
}
