/**
 * The pullers of this process: one per source database (per log directory), shared by every
 * changefeed of the process that reads that database, started by the first and stopped when the
 * last lets go.
 *
 *   changefeed a ─ acquirePuller(url) ─┐
 *   changefeed b ─ acquirePuller(url) ─┼─► Puller (slot tidemark_src_<hash>, log <dataDir>/log/<slot>)
 *   changefeed c ─ acquirePuller(url) ─┘      refcounted; a puller that failed for good is replaced
 *                                             by the next acquire (which reports its error again)
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TidemarkError } from '../../errors/tidemark-error.ts';
import { ChangeLog, type ChangeLogOptions } from '../../log/change-log.ts';
import { Puller, type PullerStats } from './puller.ts';
import { pullerObjectName } from './puller-names.ts';
import { wrapPgError } from './pg-errors.ts';
import { connectPgClient } from './pg-tls.ts';

export interface AcquirePullerOptions {
  /** Source database URI. The first acquirer's URI (and credentials) is the one connected with. */
  readonly url: string;
  /** The process's data directory; the log lives in `<dataDir>/log/<slot name>`. */
  readonly dataDir: string;
  readonly heartbeatIntervalMs: number;
  /** Applied when this acquire starts the puller; later acquirers share what the first chose. */
  readonly logOptions?: Pick<ChangeLogOptions, 'maxDiskBytes' | 'fsync' | 'writeBatchBytes'>;
  /** Errors of the shared puller (reported to every acquirer that asked); must not throw. */
  readonly onError?: (e: TidemarkError, info: { retrying: boolean }) => void;
}

/** A changefeed's hold on a shared puller. `release` once; the last release stops the puller. */
export interface PullerLease {
  readonly puller: Puller;
  release(): Promise<void>;
}

interface Entry {
  readonly puller: Promise<Puller>;
  /** The puller once started (for synchronous reads: metrics). */
  started: Puller | null;
  refs: number;
  readonly listeners: Set<NonNullable<AcquirePullerOptions['onError']>>;
}

const entries = new Map<string, Entry>();
/** Stops in progress, by log directory: a new puller there waits for the old one to close its log. */
const stopping = new Map<string, Promise<void>>();

/** The log directory of the puller of `url` under `dataDir`. */
export function pullerLogDir(dataDir: string, url: string): string {
  return join(dataDir, 'log', pullerObjectName(url));
}

/**
 * The puller of `options.url`, started if this process has none running (which checks the
 * source and makes the slot and publication when missing; see `Puller.start`). Throws what
 * `Puller.start` throws; nothing stays acquired then.
 */
export async function acquirePuller(options: AcquirePullerOptions): Promise<PullerLease> {
  const dir = pullerLogDir(options.dataDir, options.url);
  let entry = entries.get(dir);
  if (entry) {
    const current = entry;
    const failed = await current.puller.then(
      (p) => p.failure !== null,
      () => true,
    );
    // A puller that stopped for good is replaced: the new one re-checks the slot and reports why.
    if (failed && entries.get(dir) === current) {
      entries.delete(dir);
      if (current.refs === 0) await stopEntry(dir, current);
    }
    entry = entries.get(dir);
  }
  if (!entry) {
    const listeners = new Set<NonNullable<AcquirePullerOptions['onError']>>();
    const started = (async () => {
      await stopping.get(dir);
      return Puller.start({
        url: options.url,
        logDir: dir,
        heartbeatIntervalMs: options.heartbeatIntervalMs,
        ...(options.logOptions ? { logOptions: options.logOptions } : {}),
        onError: (e, info) => {
          for (const l of listeners) l(e, info);
        },
      });
    })();
    const made: Entry = { puller: started, started: null, refs: 0, listeners };
    entry = made;
    entries.set(dir, made);
    started.then(
      (p) => (made.started = p),
      () => {},
    );
    started.catch(() => {
      if (entries.get(dir) === entry) entries.delete(dir);
    });
  }
  const e = entry;
  e.refs++;
  if (options.onError) e.listeners.add(options.onError);
  let puller: Puller;
  try {
    puller = await e.puller;
  } catch (err) {
    e.refs--;
    if (options.onError) e.listeners.delete(options.onError);
    throw err;
  }
  let released = false;
  return {
    puller,
    release: async () => {
      if (released) return;
      released = true;
      if (options.onError) e.listeners.delete(options.onError);
      if (--e.refs > 0) return;
      if (entries.get(dir) === e) entries.delete(dir);
      await stopEntry(dir, e);
    },
  };
}

async function stopEntry(dir: string, e: Entry): Promise<void> {
  const done = (async () => {
    const p = await e.puller.catch(() => null);
    await p?.stop();
  })();
  stopping.set(dir, done);
  try {
    await done;
  } finally {
    if (stopping.get(dir) === done) stopping.delete(dir);
  }
}

/**
 * Unregisters changefeed `id` from the log of `url` (its position no longer holds the log or the
 * slot back). With `dropWhenUnused`, and no other changefeed registered, also drops the shared
 * slot and publication and deletes the log. Works whether or not the puller is running here.
 */
export async function forgetPullerReader(opts: {
  url: string;
  dataDir: string;
  id: string;
  dropWhenUnused?: boolean;
}): Promise<{ remainingReaders: number }> {
  const dir = pullerLogDir(opts.dataDir, opts.url);
  const entry = entries.get(dir);
  let remaining: number;
  if (entry && entry.refs > 0) {
    const p = await entry.puller;
    p.removeReader(opts.id);
    remaining = p.log.readers().size;
  } else {
    await stopping.get(dir);
    if (!existsSync(join(dir, 'data.mdb'))) remaining = 0;
    else {
      const log = ChangeLog.open({ path: dir, ifMissing: 'error' });
      try {
        log.removeReader(opts.id);
        remaining = log.readers().size;
      } finally {
        await log.close();
      }
    }
  }
  if (remaining === 0 && opts.dropWhenUnused && !(entry && entry.refs > 0)) {
    await dropPullerObjects(opts.url);
    rmSync(dir, { recursive: true, force: true });
  }
  return { remainingReaders: remaining };
}

/** Drops the shared slot and publication of `url`'s database, if they exist. */
export async function dropPullerObjects(url: string): Promise<void> {
  const name = pullerObjectName(url);
  const client = await connectPgClient(
    url,
    { application_name: 'tidemark' },
    { role: 'source', action: 'dropping the shared slot' },
  );
  client.on('error', () => {});
  try {
    await client.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`,
      [name],
    );
    await client.query(`DROP PUBLICATION IF EXISTS "${name}"`);
  } catch (err) {
    throw wrapPgError(err, { role: 'source', uri: url, action: 'dropping the shared slot' });
  } finally {
    await client.end().catch(() => {});
  }
}

/** The stats of the puller of `url` running in this process (metrics, tests), or null. */
export async function runningPullerStats(dataDir: string, url: string): Promise<PullerStats | null> {
  const entry = entries.get(pullerLogDir(dataDir, url));
  if (!entry || entry.refs === 0) return null;
  const p = await entry.puller.catch(() => null);
  return p?.stats() ?? null;
}

/** Every started puller of this process with its stats, for metrics (synchronous). */
export function pullerStatsSnapshot(): { slot: string; stats: PullerStats }[] {
  const out: { slot: string; stats: PullerStats }[] = [];
  for (const e of entries.values()) {
    if (e.started && e.refs > 0) out.push({ slot: e.started.slotName, stats: e.started.stats() });
  }
  return out;
}
