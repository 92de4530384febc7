/**
 * The engine: one instance per process and data directory, owning everything that outlives a
 * single changefeed. The CLI and the server create one; an embedding program will.
 *
 *   Engine.open(dataDir) ── lock (one process per data directory)
 *     ├─ hubs: one ChangeHub per source (connector.sourceKey), started by the first changefeed
 *     │        that needs it, shared, stopped when the last lets go
 *     └─ startChangefeed(cfg) ─► pipeline (runtime/changefeed.ts), given `acquireHub`
 *
 * Nothing here is module state: two engines (tests) never share a hub, a registry or a lock.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TidemarkError } from '../errors/tidemark-error.ts';
import { ChangeHub, type HubStats, type SubscriptionInfo } from '../log/hub.ts';
import { createConnector, sourceKeyOf } from '../source/create-connector.ts';
import type { SourceConnector } from '../source/connector.ts';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import {
  ChangefeedRunner,
  type Changefeed,
  type ChangefeedEnvironment,
  type HubLease,
  type StartChangefeedOptions,
} from '../runtime/changefeed.ts';
import type { Logger } from '../runtime/logger.ts';
import { CopyProgressStore } from '../runtime/copy-progress.ts';
import { lockDataDir, type DataDirLock } from './data-dir-lock.ts';

const DAY_MS = 24 * 3600_000;

export interface EngineOptions {
  /** Local state: change logs (`log/<source>`), view state (`state/<changefeed>`). */
  readonly dataDir: string;
  readonly logger: Logger;
}

interface HubEntry {
  readonly hub: Promise<ChangeHub>;
  started: ChangeHub | null;
  refs: number;
  readonly listeners: Set<(e: TidemarkError, info: { retrying: boolean }) => void>;
}

export class Engine implements ChangefeedEnvironment {
  readonly dataDir: string;
  private readonly hubs = new Map<string, HubEntry>();
  /** Stops in progress, by source key: a new hub there waits for the old one to close its log. */
  private readonly stopping = new Map<string, Promise<void>>();
  private closed = false;

  private constructor(
    private readonly lock: DataDirLock,
    private readonly logger: Logger,
  ) {
    this.dataDir = lock.dataDir;
  }

  /** Locks `options.dataDir` (DATA_DIR_LOCKED when another process holds it) and opens the engine. */
  static async open(options: EngineOptions): Promise<Engine> {
    const lock = await lockDataDir(options.dataDir);
    return new Engine(lock, options.logger);
  }

  /** Starts one changefeed on this engine; it runs until `stop()` or a non-retriable error. */
  startChangefeed(cfg: ChangefeedConfig, opts: StartChangefeedOptions): Changefeed {
    return new ChangefeedRunner(cfg, opts, this);
  }

  /** Where the hub of the source with `sourceKey` keeps its log and subscriptions. */
  hubDir(sourceKey: string): string {
    return join(this.dataDir, 'log', sourceKey);
  }

  /**
   * The hub of `cfg.source`, started when none runs here (the first acquirer's options — log
   * limits, heartbeat — are the hub's). Throws what opening it throws; nothing stays acquired.
   */
  async acquireHub(
    cfg: ChangefeedConfig,
    onError?: (e: TidemarkError, info: { retrying: boolean }) => void,
  ): Promise<HubLease> {
    if (this.closed) throw new Error('engine closed');
    const key = sourceKeyOf(cfg.source);
    let entry = this.hubs.get(key);
    if (entry) {
      const current = entry;
      const failed = await current.hub.then(
        (h) => h.failure !== null,
        () => true,
      );
      // A hub that stopped for good is replaced: the new one re-checks the source and says why.
      if (failed && this.hubs.get(key) === current) {
        this.hubs.delete(key);
        if (current.refs === 0) await this.stopEntry(key, current);
      }
      entry = this.hubs.get(key);
    }
    if (!entry) {
      const listeners = new Set<(e: TidemarkError, info: { retrying: boolean }) => void>();
      const log = this.logger.child({ source: key });
      const hub = (async () => {
        await this.stopping.get(key);
        const connector = await this.connectorFor(cfg);
        try {
          return ChangeHub.open({
            connector,
            dir: this.hubDir(key),
            logOptions:
              cfg.changeLog.maxDiskBytes !== null ? { maxDiskBytes: cfg.changeLog.maxDiskBytes } : {},
            releaseAfterMs: cfg.changeLog.releaseAfterMs ?? DAY_MS,
            onError: (e, info) => {
              for (const l of listeners) l(e, info);
            },
            onWarning: (message, fields) => log.warn(message, fields),
          });
        } catch (err) {
          await connector.close().catch(() => {});
          throw err;
        }
      })();
      const made: HubEntry = { hub, started: null, refs: 0, listeners };
      entry = made;
      this.hubs.set(key, made);
      hub.then(
        (h) => (made.started = h),
        () => {
          if (this.hubs.get(key) === made) this.hubs.delete(key);
        },
      );
    }
    const e = entry;
    e.refs++;
    if (onError) e.listeners.add(onError);
    let hub: ChangeHub;
    try {
      hub = await e.hub;
    } catch (err) {
      e.refs--;
      if (onError) e.listeners.delete(onError);
      throw err;
    }
    let released = false;
    // Held while the changefeed runs here, reading or not (a sink outage, a long snapshot):
    // never released as stale.
    const unhold = hub.hold(cfg.id);
    return {
      hub,
      release: async () => {
        if (released) return;
        released = true;
        unhold();
        if (onError) e.listeners.delete(onError);
        if (--e.refs > 0) return;
        if (this.hubs.get(key) === e) this.hubs.delete(key);
        await this.stopEntry(key, e);
      },
    };
  }

  /**
   * Forgets changefeed `id` of `cfg.source`: it no longer holds the log or the source. With
   * `dropSourceObjects` and no other subscription left, also drops the source's slot,
   * publication and schema capture, and deletes the log. Works whether or not the hub runs.
   */
  async removeSubscription(
    cfg: ChangefeedConfig,
    opts: { dropSourceObjects?: boolean } = {},
  ): Promise<{ remainingSubscriptions: number }> {
    const lease = await this.acquireHub(cfg).catch(() => null);
    let remaining = 0;
    try {
      if (lease) {
        lease.hub.unsubscribe(cfg.id);
        remaining = lease.hub.subscriptions().length;
      }
    } finally {
      await lease?.release();
    }
    // Its spilled keyless reads, if it stopped in one (the file of a table without a key).
    rmSync(CopyProgressStore.spillDirFor(this.dataDir, cfg.id), { recursive: true, force: true });
    if (remaining === 0 && opts.dropSourceObjects && !this.hubs.has(sourceKeyOf(cfg.source))) {
      const connector = await this.connectorFor(cfg);
      try {
        await connector.dropSourceObjects();
      } finally {
        await connector.close();
      }
      const dir = this.hubDir(connector.sourceKey);
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    }
    return { remainingSubscriptions: remaining };
  }

  /** Bytes of its log the source of `cfg` keeps for this engine's changefeeds (null: unknown). */
  async retainedBytes(cfg: ChangefeedConfig): Promise<number | null> {
    const e = this.hubs.get(sourceKeyOf(cfg.source));
    const hub = e?.started;
    if (hub) return hub.connector.retainedBytes();
    const connector = await this.connectorFor(cfg);
    try {
      return await connector.retainedBytes();
    } finally {
      await connector.close();
    }
  }

  /** The running hubs with their stats and subscriptions (metrics, status). */
  hubStats(): { sourceKey: string; stats: HubStats; subscriptions: SubscriptionInfo[] }[] {
    const out: { sourceKey: string; stats: HubStats; subscriptions: SubscriptionInfo[] }[] = [];
    for (const [key, e] of this.hubs) {
      if (e.started && e.refs > 0) {
        out.push({ sourceKey: key, stats: e.started.stats(), subscriptions: e.started.subscriptions() });
      }
    }
    return out;
  }

  /** The stats of the hub of `cfg.source` running here, or null. */
  async hubStatsFor(cfg: ChangefeedConfig): Promise<HubStats | null> {
    const e = this.hubs.get(sourceKeyOf(cfg.source));
    if (!e || e.refs === 0) return null;
    const h = await e.hub.catch(() => null);
    return h?.stats() ?? null;
  }

  /** Stops every hub (changefeeds should be stopped first) and releases the data directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.hubs.entries()].map(([k, e]) => this.stopEntry(k, e)));
    this.hubs.clear();
    await Promise.all(this.stopping.values());
    await this.lock.release();
  }

  private connectorFor(cfg: ChangefeedConfig): Promise<SourceConnector> {
    return createConnector(cfg.source, {
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
      snapshotStartTimeoutMs: cfg.snapshot.startTimeoutMs,
      onWarning: (message, fields) => this.logger.warn(message, fields),
    });
  }

  private async stopEntry(key: string, e: HubEntry): Promise<void> {
    const done = (async () => {
      const h = await e.hub.catch(() => null);
      await h?.stop();
      await h?.connector.close();
    })();
    this.stopping.set(key, done);
    try {
      await done;
    } finally {
      if (this.stopping.get(key) === done) this.stopping.delete(key);
    }
  }
}
