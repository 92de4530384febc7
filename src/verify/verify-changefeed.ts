/**
 * `tidemark verify` for one changefeed: its source's tables (as its selection names them now)
 * against its downstream, through the connector's and the sink's read sessions. Views are not
 * compared (their contents are derived; verify the tables they read).
 */
import { createConnector } from '../source/create-connector.ts';
import { createSink } from '../sink/create-sink.ts';
import { maskUri } from '../errors/mask.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import { verifyTables, type VerifyResult } from './verify-tables.ts';

export interface VerifyChangefeedOptions {
  readonly chunkRows: number;
  readonly rounds: number;
  readonly waitMs: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (message: string) => void;
}

export async function verifyChangefeed(
  cfg: ChangefeedConfig,
  opts: VerifyChangefeedOptions,
): Promise<VerifyResult> {
  const connector = await createConnector(cfg.source, { heartbeatIntervalMs: cfg.heartbeatIntervalMs });
  const sink = await createSink(cfg.sink, { changefeedId: cfg.id }).catch(async (err: unknown) => {
    await connector.close();
    throw err;
  });
  try {
    if (!connector.openRead) {
      throw new TidemarkError('VERIFY_UNSUPPORTED', {
        detail: `changefeed ${cfg.id}: its ${connector.kind} source cannot be read for verify yet`,
      });
    }
    if (!sink.openRead) {
      throw new TidemarkError('VERIFY_UNSUPPORTED', {
        detail: `changefeed ${cfg.id}: its sink ${maskUri(cfg.sink)} cannot be read back by key (only SQL sinks can be verified)`,
      });
    }
    const { tables } = await connector.describe(cfg.tables);
    const openSource = connector.openRead.bind(connector);
    const openTarget = sink.openRead.bind(sink);
    return await verifyTables(
      { openSource, openTarget, parsePosition: (text) => connector.positions.parse(text) },
      { tables, ...opts },
    );
  } finally {
    await sink.close();
    await connector.close();
  }
}
