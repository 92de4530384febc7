/**
 * The server's changefeeds: definitions and desired state in the metadata store, one runner per
 * running changefeed, their recent samples and metrics.
 *
 *   API ─► create/update/pause/resume/remove ─► MetadataStore (desired state, last error)
 *                                  │
 *                                  └─► startChangefeed() per feed ─► onStatus/onEpochCommitted/onError
 *                                                                      ─► samples, metrics, last error
 *
 * Feeds are independent: one failing is marked `failed` with its error and the others go on. The
 * store holds the desired state, so a restarted server brings each feed back as it was. Positions
 * are never stored here; a resumed runner continues from the checkpoint its sink holds.
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { maskUri } from '../errors/mask.ts';
import type { Changefeed, ResnapshotResult } from '../runtime/changefeed.ts';
import type { Engine } from '../control/engine.ts';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import { initialStatus, type ChangefeedStatus } from '../runtime/changefeed-status.ts';
import type { Logger } from '../runtime/logger.ts';
import {
  definitionFromConfig,
  mergeDefinition,
  publicConfig,
  validateDefinition,
  type ChangefeedDefinition,
} from './changefeed-definition.ts';
import type { DesiredState, MetadataStore, StoredError } from './metadata-store.ts';
import { preflight, type PreflightReport } from './preflight.ts';
import { SampleRing, type Sample } from './sample-ring.ts';
import { ServerMetrics, type FeedGauges } from './server-metrics.ts';

/** A changefeed as the API returns it; URIs masked. */
export interface ChangefeedView {
  id: string;
  state: DesiredState;
  config: ChangefeedConfig | null;
  status: ChangefeedStatus;
  lastError: StoredError | null;
  resolvedLagMs: number | null;
  resolvedLagBytes: number | null;
  retainedWalBytes: number | null;
  /**
   * A running changefeed streaming with its checkpoint lag within `lagBudgetMs` (true), one
   * that is not (false: starting, in its snapshot, retrying, behind); null when not running.
   */
  withinLagBudget: boolean | null;
  createdAt: string;
  updatedAt: string;
}

export interface ReadinessEntry {
  id: string;
  state: DesiredState;
  phase: ChangefeedStatus['phase'];
  lagMs: number | null;
  lagBudgetMs: number | null;
  ok: boolean;
  /** The status warnings (degraded, left out): shown, but they do not make the server unready. */
  warnings: string[];
}

export interface ChangefeedManagerOptions {
  store: MetadataStore;
  logger: Logger;
  /** Runs the changefeeds and owns their local state (the sources' change logs, view state). */
  engine: Engine;
  /** Default 1000 ms. */
  sampleIntervalMs?: number;
  /** Samples kept per changefeed; default 600 (ten minutes at 1 s). */
  sampleCapacity?: number;
  /** How often the slot's retained WAL is read from each source; default 10 000 ms. */
  walPollIntervalMs?: number;
}

interface Feed {
  readonly id: string;
  config: ChangefeedConfig | null;
  runner: Changefeed | null;
  status: ChangefeedStatus;
  readonly samples: SampleRing;
  bytesSinceSample: number;
  resolvedBehindSinceMs: number | null;
  retainedWalBytes: number | null;
}

export class ChangefeedManager {
  readonly metrics: ServerMetrics;
  private readonly feeds = new Map<string, Feed>();
  private readonly log: Logger;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  constructor(private readonly opts: ChangefeedManagerOptions) {
    this.log = opts.logger;
    this.metrics = new ServerMetrics(
      () => this.gauges(),
      () => this.opts.engine.hubStats(),
    );
  }

  /**
   * Brings back every stored changefeed in its stored state (running ones are started), then
   * adds the `seed` configs whose id is not stored yet, as running. Call once, before serving.
   */
  async start(seed: readonly ChangefeedConfig[] = []): Promise<void> {
    for (const cfg of seed) {
      if (this.opts.store.insert(cfg.id, definitionFromConfig(cfg), 'running'))
        this.log.info('changefeed seeded from config', { changefeed: cfg.id });
    }
    for (const stored of this.opts.store.list()) {
      const feed = this.track(stored.id);
      feed.status = {
        ...feed.status,
        phase: stored.state === 'running' ? 'starting' : stored.state,
        error: stored.lastError,
      };
      if (stored.state === 'running') this.launch(feed, stored.definition);
      else feed.config = this.tryValidate(stored.definition);
    }
    const sampleMs = this.opts.sampleIntervalMs ?? 1000;
    this.timers.push(setInterval(() => this.sample(sampleMs), sampleMs));
    this.timers.push(setInterval(() => void this.pollRetainedWal(), this.opts.walPollIntervalMs ?? 10_000));
    for (const t of this.timers) t.unref();
    await this.pollRetainedWal();
  }

  list(): ChangefeedView[] {
    return this.opts.store.list().map((s) => this.view(s.id));
  }

  /** Throws API_NOT_FOUND. */
  get(id: string): ChangefeedView {
    return this.view(id);
  }

  /**
   * Validates, runs the preflight (`tidemark doctor`'s checks) unless `skipChecks`, stores and
   * starts a new changefeed. Throws API_BAD_REQUEST, API_CONFLICT, PREFLIGHT_FAILED (each failed
   * check with its fix in the detail).
   */
  async create(
    body: unknown,
    options: { paused?: boolean; skipChecks?: boolean } = {},
  ): Promise<ChangefeedView> {
    const cfg = validateDefinition(body);
    const state: DesiredState = options.paused ? 'paused' : 'running';
    if (this.opts.store.get(cfg.id)) {
      throw new TidemarkError('API_CONFLICT', { detail: `changefeed "${cfg.id}" already exists` });
    }
    if (!options.skipChecks) {
      const report = await preflight(cfg, { dataDir: this.opts.engine.dataDir });
      if (!report.ok) {
        throw new TidemarkError('PREFLIGHT_FAILED', {
          detail: report.checks
            .filter((c) => c.status === 'fail')
            .map((c) => `${c.id}: ${c.detail}${c.fix ? ` — fix: ${c.fix}` : ''}`)
            .join('\n'),
        });
      }
    }
    if (!this.opts.store.insert(cfg.id, body as ChangefeedDefinition, state)) {
      throw new TidemarkError('API_CONFLICT', { detail: `changefeed "${cfg.id}" already exists` });
    }
    const feed = this.track(cfg.id);
    feed.config = cfg;
    if (state === 'running') this.launch(feed, body as ChangefeedDefinition);
    else feed.status = { ...feed.status, phase: 'paused' };
    this.log.info('changefeed created', { changefeed: cfg.id, state });
    return this.view(cfg.id);
  }

  /** The preflight report of a definition, without creating anything. Throws API_BAD_REQUEST. */
  async preflight(body: unknown): Promise<PreflightReport> {
    return preflight(validateDefinition(body), { dataDir: this.opts.engine.dataDir });
  }

  /**
   * Merges `patch` into the definition, validates and stores it; a running changefeed is
   * stopped gracefully and started again with the new definition (from its sink checkpoint).
   */
  async update(id: string, patch: unknown): Promise<ChangefeedView> {
    const stored = this.mustGet(id);
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
      throw new TidemarkError('API_BAD_REQUEST', {
        detail: 'expected a JSON object with the keys to change',
      });
    }
    const p = { ...(patch as ChangefeedDefinition) };
    if ('id' in p && p.id !== id)
      throw new TidemarkError('API_BAD_REQUEST', { detail: 'id: cannot be changed' });
    const current = this.feeds.get(id)?.config;
    // A masked URI sent back unchanged (read, edit something else, write) keeps the real one.
    for (const k of ['source', 'sink'] as const) {
      if (current && typeof p[k] === 'string' && p[k] === maskUri(current[k])) delete p[k];
    }
    const definition = mergeDefinition(stored.definition, p);
    const cfg = validateDefinition(definition);
    this.opts.store.setDefinition(id, definition);
    const feed = this.track(id);
    feed.config = cfg;
    if (stored.state === 'running') {
      await this.halt(feed);
      this.launch(feed, definition);
    }
    this.log.info('changefeed updated', { changefeed: id });
    return this.view(id);
  }

  /** Stops the runner gracefully and stores `paused`. Idempotent. */
  async pause(id: string): Promise<ChangefeedView> {
    this.mustGet(id);
    this.opts.store.setState(id, 'paused');
    const feed = this.track(id);
    await this.halt(feed);
    feed.status = { ...feed.status, phase: 'paused', rowsPerSec: 0 };
    this.log.info('changefeed paused', { changefeed: id });
    return this.view(id);
  }

  /**
   * Copies tables of a running changefeed again online (`Changefeed.resnapshot`); resolves once
   * the copies started. Throws API_BAD_REQUEST for a body without `tables`, API_CONFLICT when the
   * changefeed is not running, RESNAPSHOT_REFUSED naming a table it cannot copy.
   */
  async resnapshot(id: string, body: unknown): Promise<ResnapshotResult> {
    this.mustGet(id);
    const tables = (body as { tables?: unknown } | null)?.tables;
    if (
      !Array.isArray(tables) ||
      tables.length === 0 ||
      !tables.every((t) => typeof t === 'string' && t !== '')
    ) {
      throw new TidemarkError('API_BAD_REQUEST', {
        detail: 'expected {"tables": ["schema.table", …]} (names or patterns of replicated tables)',
      });
    }
    const runner = this.feeds.get(id)?.runner;
    if (!runner) {
      throw new TidemarkError('API_CONFLICT', {
        detail: `changefeed "${id}" is not running: resume it, then ask again`,
      });
    }
    const result = await runner.resnapshot(tables as string[]);
    this.log.info('tables copied again on request', { changefeed: id, ...result });
    return result;
  }

  /** Starts a paused or failed changefeed again; it continues from its sink checkpoint. */
  resume(id: string): ChangefeedView {
    const stored = this.mustGet(id);
    const feed = this.track(id);
    if (stored.state !== 'running' || !feed.runner) {
      this.opts.store.setState(id, 'running', null);
      this.launch(feed, stored.definition);
      this.log.info('changefeed resumed', { changefeed: id });
    }
    return this.view(id);
  }

  /**
   * Stops and forgets the changefeed (its position stops holding back the source's log and
   * slot); with `dropSlot` also drops its publication, and the source's shared slot when no other
   * changefeed is registered on it.
   */
  async remove(id: string, options: { dropSlot?: boolean } = {}): Promise<void> {
    const stored = this.mustGet(id);
    const feed = this.track(id);
    await this.halt(feed);
    const cfg = feed.config ?? this.tryValidate(stored.definition);
    if (options.dropSlot) this.opts.store.setState(id, 'paused');
    // Its position no longer holds back the source's shared log and slot; with dropSlot, the
    // changefeed's publication goes too, and the shared slot once no changefeed uses it.
    if (cfg) await this.opts.engine.removeSubscription(cfg, { dropSourceObjects: options.dropSlot === true });
    this.opts.store.delete(id);
    this.feeds.delete(id);
    this.metrics.forget(id);
    this.log.info('changefeed removed', { changefeed: id, droppedSlot: options.dropSlot === true });
  }

  /**
   * Ready: the stored changefeeds are restored, none has failed, and every running one streams
   * within its lag budget. `changefeeds` says which is not, for the operator.
   */
  readiness(): { ready: boolean; changefeeds: ReadinessEntry[] } {
    const changefeeds = this.list().map((v) => ({
      id: v.id,
      state: v.state,
      phase: v.status.phase,
      lagMs: v.status.lagMs,
      lagBudgetMs: v.config?.lagBudgetMs ?? null,
      ok: v.state === 'paused' || (v.state === 'running' && v.withinLagBudget === true),
      warnings: v.status.warnings,
    }));
    return { ready: !this.closed && changefeeds.every((c) => c.ok), changefeeds };
  }

  /** The samples of the last minutes, oldest first. Throws API_NOT_FOUND. */
  samples(id: string, sinceMs?: number): Sample[] {
    this.mustGet(id);
    return this.track(id).samples.toArray(sinceMs);
  }

  /** Stops every runner gracefully; stored states are kept, so a restart resumes them. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all([...this.feeds.values()].map((f) => this.halt(f)));
  }

  private mustGet(id: string) {
    const stored = this.opts.store.get(id);
    if (!stored) throw new TidemarkError('API_NOT_FOUND', { detail: `no changefeed "${id}"` });
    return stored;
  }

  private track(id: string): Feed {
    let f = this.feeds.get(id);
    if (!f) {
      f = {
        id,
        config: null,
        runner: null,
        status: initialStatus(id),
        samples: new SampleRing(this.opts.sampleCapacity ?? 600),
        bytesSinceSample: 0,
        resolvedBehindSinceMs: null,
        retainedWalBytes: null,
      };
      this.feeds.set(id, f);
    }
    return f;
  }

  private tryValidate(definition: ChangefeedDefinition): ChangefeedConfig | null {
    try {
      return validateDefinition(definition);
    } catch {
      return null;
    }
  }

  private launch(feed: Feed, definition: ChangefeedDefinition): void {
    if (this.closed) return;
    let runner: Changefeed;
    try {
      const cfg = validateDefinition(definition);
      feed.config = cfg;
      feed.status = { ...initialStatus(feed.id), error: null };
      runner = this.opts.engine.startChangefeed(cfg, {
        logger: this.log,
        onStatus: (s) => {
          if (feed.runner === runner) feed.status = s;
        },
        onEpochCommitted: (e, info) => {
          feed.bytesSinceSample += info.bytes;
          this.metrics.epochCommitted(feed.id, e, info);
        },
        onError: (e, { retrying }) => {
          this.metrics.error(feed.id, e.code);
          if (retrying && feed.runner === runner) this.opts.store.setLastError(feed.id, errorOf(e));
        },
      });
    } catch (err) {
      this.fail(feed, err);
      return;
    }
    feed.runner = runner;
    runner.done.then(
      () => {
        if (feed.runner === runner) feed.runner = null;
      },
      (err: unknown) => {
        if (feed.runner !== runner) return;
        feed.runner = null;
        this.fail(feed, err);
      },
    );
  }

  private fail(feed: Feed, err: unknown): void {
    const e =
      err instanceof TidemarkError ? err : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
    if (!this.feeds.has(feed.id) || this.closed) return;
    this.metrics.error(feed.id, e.code);
    this.opts.store.setState(feed.id, 'failed', errorOf(e));
    feed.status = { ...feed.status, phase: 'failed', rowsPerSec: 0, error: errorOf(e) };
    this.log.error('changefeed failed', { changefeed: feed.id, error: e });
  }

  /** Stops the runner, if any, gracefully; its done-handler will not mark the feed failed. */
  private async halt(feed: Feed): Promise<void> {
    const r = feed.runner;
    feed.runner = null;
    if (!r) return;
    await r.stop();
    feed.status = { ...r.status(), phase: 'stopped' };
  }

  private view(id: string): ChangefeedView {
    const stored = this.mustGet(id);
    const feed = this.track(id);
    const status = { ...feed.status };
    if (stored.state !== 'running') {
      status.phase = stored.state;
      status.rowsPerSec = 0;
    }
    const resolvedLagBytes = resolvedLag(status);
    return {
      id,
      state: stored.state,
      config: feed.config && publicConfig(feed.config),
      status,
      lastError: stored.lastError,
      resolvedLagMs:
        resolvedLagBytes === null
          ? null
          : feed.resolvedBehindSinceMs === null
            ? 0
            : Date.now() - feed.resolvedBehindSinceMs,
      resolvedLagBytes,
      retainedWalBytes: feed.retainedWalBytes,
      withinLagBudget:
        stored.state !== 'running'
          ? null
          : feed.runner !== null &&
            status.phase === 'streaming' &&
            status.lagMs !== null &&
            status.lagMs <= (feed.config?.lagBudgetMs ?? Infinity),
      createdAt: stored.createdAt,
      updatedAt: stored.updatedAt,
    };
  }

  private gauges(): FeedGauges[] {
    return this.list().map((v) => ({
      id: v.id,
      state: v.state,
      epoch: v.status.epoch,
      rowsPerSec: v.status.rowsPerSec,
      snapshotRows: v.status.snapshotRows,
      checkpointLagMs: v.status.lagMs,
      checkpointLagBytes: v.status.lagBytes,
      resolvedLagMs: v.resolvedLagMs,
      resolvedLagBytes: v.resolvedLagBytes,
      retainedWalBytes: v.retainedWalBytes,
      withinLagBudget: v.withinLagBudget,
    }));
  }

  private sample(intervalMs: number): void {
    const now = Date.now();
    for (const feed of this.feeds.values()) {
      const s = feed.status;
      const behind = resolvedLag(s);
      if (behind !== null && behind > 0) feed.resolvedBehindSinceMs ??= now;
      else feed.resolvedBehindSinceMs = null;
      const running = feed.runner !== null;
      feed.samples.push({
        tMs: now,
        lagMs: running ? s.lagMs : null,
        lagBytes: running ? s.lagBytes : null,
        rowsPerSec: running ? s.rowsPerSec : 0,
        bytesPerSec: Math.round((feed.bytesSinceSample * 1000) / intervalMs),
      });
      feed.bytesSinceSample = 0;
    }
  }

  private async pollRetainedWal(): Promise<void> {
    await Promise.all(
      [...this.feeds.values()].map(async (f) => {
        if (f.config) f.retainedWalBytes = await this.opts.engine.retainedBytes(f.config).catch(() => null);
      }),
    );
  }
}

function errorOf(e: TidemarkError): StoredError {
  return { code: e.code, message: e.message, hint: e.hint, at: new Date().toISOString() };
}

/** Source log end − resolved position, never negative (null when unknown). */
function resolvedLag(s: ChangefeedStatus): number | null {
  return s.resolvedLagBytes;
}
