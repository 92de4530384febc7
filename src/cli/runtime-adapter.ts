import pg from 'pg';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { wrapPgError } from '../source/postgres/pg-errors.ts';
import { replicationNameFor, type ChangefeedConfig } from '../runtime/changefeed-config.ts';
import { initialStatus, type ChangefeedStatus } from '../runtime/changefeed-status.ts';
import type { Logger } from '../runtime/logger.ts';

/**
 * The CLI's only door into the changefeed runtime (`runtime/changefeed.ts`, written alongside).
 * The module is loaded by a computed specifier so the CLI builds before it exists; once it does,
 * this can become a static import with no change to the commands.
 */

/** A running changefeed, as `startChangefeed` returns it. */
export interface Changefeed {
  readonly id: string;
  /** The latest status; callable at any time, cheap. */
  status(): ChangefeedStatus;
  /** Stops gracefully (finishes or abandons the current epoch, releases the slot). Idempotent. */
  stop(): Promise<void>;
  /** Resolves when stopped; rejects with the TidemarkError if it failed. */
  readonly done: Promise<void>;
}

export interface StartChangefeedOptions {
  logger: Logger;
  onStatus?: (s: ChangefeedStatus) => void;
}

export interface ChangefeedRuntime {
  startChangefeed(cfg: ChangefeedConfig, opts: StartChangefeedOptions): Changefeed;
  /** One-shot status read from the databases, for `tidemark status`. */
  queryChangefeedStatus(cfg: ChangefeedConfig): Promise<ChangefeedStatus>;
}

const RUNTIME_MODULE = '../runtime/changefeed.ts';

export async function loadRuntime(): Promise<ChangefeedRuntime> {
  let mod: Partial<ChangefeedRuntime> = {};
  try {
    mod = (await import(RUNTIME_MODULE)) as Partial<ChangefeedRuntime>;
  } catch (err) {
    if (!isModuleNotFound(err)) throw err;
  }
  const start = mod.startChangefeed;
  return {
    startChangefeed(cfg, opts) {
      if (!start) {
        throw new TidemarkError('INTERNAL', {
          detail: 'this build has no changefeed runtime (runtime/changefeed.ts)',
          hint: 'Use a build that includes the runtime.',
        });
      }
      return start(cfg, opts);
    },
    queryChangefeedStatus: mod.queryChangefeedStatus ?? querySlotStatus,
  };
}

function isModuleNotFound(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes('changefeed');
}

/**
 * What the source alone can tell: whether the changefeed's slot exists and is in use, how far it
 * has been acknowledged (the checkpoint) and how much WAL it retains. Used until the runtime
 * provides `queryChangefeedStatus`, which also reads the sink.
 */
export async function querySlotStatus(cfg: ChangefeedConfig): Promise<ChangefeedStatus> {
  const client = new pg.Client({ connectionString: cfg.source, application_name: 'tidemark status' });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{
      active: boolean;
      confirmed: string | null;
      lag_bytes: string | null;
      wal_status: string | null;
    }>(
      `SELECT active, confirmed_flush_lsn::text AS confirmed, wal_status,
              pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag_bytes
         FROM pg_replication_slots WHERE slot_name = $1`,
      [replicationNameFor(cfg.id)],
    );
    const slot = rows[0];
    const status = initialStatus(cfg.id);
    if (!slot) return { ...status, phase: 'stopped' };
    if (slot.wal_status === 'lost') {
      const e = new TidemarkError('SOURCE_SLOT_LOST', { detail: `slot ${replicationNameFor(cfg.id)}` });
      return { ...status, phase: 'failed', error: { code: e.code, message: e.message, hint: e.hint } };
    }
    return {
      ...status,
      phase: slot.active ? 'streaming' : 'stopped',
      checkpoint: slot.confirmed,
      lagBytes: slot.lag_bytes === null ? null : Number(slot.lag_bytes),
    };
  } catch (err) {
    throw wrapPgError(err, { role: 'source', uri: cfg.source, action: 'reading the slot status' });
  } finally {
    await client.end().catch(() => {});
  }
}
