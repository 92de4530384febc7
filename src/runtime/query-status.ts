import type { ChangefeedConfig } from './changefeed-config.ts';
import { initialStatus, type ChangefeedStatus } from './changefeed-status.ts';
import { createSink } from '../sink/create-sink.ts';
import { createConnector } from '../source/create-connector.ts';
import type { SourceConnector } from '../source/connector.ts';
import type { Sink } from '../sink/sink.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

/**
 * A one-shot status read from the databases (for `tidemark status`): the checkpoint from the
 * sink, and from the source its log end and its shared replication. Phase is `streaming` when
 * some process streams the source, `stopped` when none does, `starting` when the sink holds no
 * checkpoint yet.
 */
export async function queryChangefeedStatus(cfg: ChangefeedConfig): Promise<ChangefeedStatus> {
  const st = initialStatus(cfg.id);
  let sink: Sink | null = null;
  let connector: SourceConnector | null = null;
  try {
    sink = await createSink(cfg.sink, { changefeedId: cfg.id });
    connector = await createConnector(cfg.source, { heartbeatIntervalMs: cfg.heartbeatIntervalMs });
    const checkpoint = await sink.open();
    const p = await connector.progress();
    st.phase = checkpoint === null ? 'starting' : p.streaming ? 'streaming' : 'stopped';
    if (checkpoint) {
      const at = connector.positions.parse(checkpoint.position);
      st.checkpoint = checkpoint.position;
      st.resolved = p.acknowledged?.toString() ?? null;
      st.epoch = checkpoint.epoch;
      const d = p.end ? connector.positions.distanceBytes(at, p.end) : null;
      st.lagBytes = d === null ? null : Math.max(0, d);
    }
    return st;
  } catch (err) {
    const e =
      err instanceof TidemarkError ? err : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
    return { ...st, phase: 'failed', error: { code: e.code, message: e.message, hint: e.hint } };
  } finally {
    await sink?.close();
    await connector?.close();
  }
}
