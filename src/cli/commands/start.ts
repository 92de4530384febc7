import { isAbsolute, join, resolve } from 'node:path';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { LiveStatus, initialStatus, type ChangefeedStatus } from '../../runtime/changefeed-status.ts';
import { createLogger, type Logger } from '../../runtime/logger.ts';
import { logFormatOption, parseCommandArgs, type CliContext } from '../cli-context.ts';
import { COMMAND_USAGE } from '../help.ts';
import { loadConfig } from '../load-config.ts';
import type { Changefeed, ChangefeedRuntime } from '../runtime-adapter.ts';
import type { ChangefeedConfig } from '../../runtime/changefeed-config.ts';

/** `tidemark start --config FILE`: runs every changefeed until a signal or a failure. */
export async function runStart(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCommandArgs('start', args, {
    config: { type: 'string', short: 'c' },
    'data-dir': { type: 'string' },
    'log-format': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(COMMAND_USAGE.start ?? '');
    return 0;
  }
  if (!values.config)
    throw new TidemarkError('CLI_USAGE', { detail: 'tidemark start: --config FILE is required' });
  const config = await loadConfig(values.config, { env: ctx.env });
  const runtime = await ctx.loadRuntime();
  const live = new LiveStatus({ out: ctx.stdout });
  const format = logFormatOption(values['log-format']);
  const logger = createLogger({ stream: live.interleave(ctx.stderr), ...(format ? { format } : {}) });
  const dataDir = values['data-dir'] ?? ctx.env.TIDEMARK_DATA_DIR ?? '.tidemark';
  const configPath = values.config;
  return runChangefeeds(config.changefeeds, {
    runtime,
    logger,
    dataDir: isAbsolute(dataDir) ? dataDir : join(ctx.cwd, dataDir),
    live,
    shutdown: ctx.shutdown,
    stderr: ctx.stderr,
    ...(ctx.reload
      ? {
          reload: {
            on: (fn: () => void) => (ctx.reload!.handler = fn),
            load: async () => (await loadConfig(configPath, { env: ctx.env })).changefeeds,
          },
        }
      : {}),
  });
}

/**
 * Starts the changefeeds, shows their status, and waits for a signal, which stops all of them
 * gracefully. Failures are isolated: a changefeed that fails is reported at once (error and hint),
 * stays failed in the status lines, and the others go on. Returns 0 when none failed, 1 when any
 * did (or when all of them failed, at once). Shared with `demo`.
 */
export async function runChangefeeds(
  configs: readonly ChangefeedConfig[],
  deps: {
    runtime: ChangefeedRuntime;
    logger: Logger;
    live: LiveStatus;
    shutdown: AbortSignal;
    stderr: { write(text: string): unknown };
    /** Local state (change logs, view state): the engine's data directory; default `./.tidemark`. */
    dataDir?: string;
    /**
     * SIGHUP reloads the config: a changefeed whose definition changed is restarted with it (a
     * table added to `tables` is then copied online while it streams the others), a new one
     * started, a removed one stopped; the others run on untouched. A config that does not load
     * is reported and changes nothing.
     */
    reload?: {
      on(handler: () => void): void;
      load(): Promise<readonly ChangefeedConfig[]>;
    };
  },
): Promise<number> {
  const { runtime, logger, live, shutdown } = deps;
  const feeds: Changefeed[] = [];
  const failed = new Map<string, ChangefeedStatus>();
  const report = (id: string, error: unknown, last: ChangefeedStatus) => {
    const e =
      error instanceof TidemarkError ? error : new TidemarkError('INTERNAL', { detail: String(error) });
    failed.set(id, {
      ...last,
      phase: 'failed',
      rowsPerSec: 0,
      error: { code: e.code, message: e.message, hint: e.hint },
    });
    logger.error('changefeed failed', { changefeed: id, error: e });
    deps.stderr.write(`changefeed ${id} failed: ${e.format()}\n`);
  };
  const pending: Promise<void>[] = [];
  const running = new Map<string, { cfg: ChangefeedConfig; feed: Changefeed }>();
  const launch = (cfg: ChangefeedConfig) => {
    const log = logger.child({ changefeed: cfg.id });
    let feed: Changefeed;
    try {
      feed = runtime.startChangefeed(cfg, {
        logger: log,
        onStatus: (s) => live.update(s),
        dataDir: deps.dataDir ?? resolve('.tidemark'),
      });
    } catch (err) {
      report(cfg.id, err, initialStatus(cfg.id));
      live.track({ status: () => failed.get(cfg.id) ?? initialStatus(cfg.id) });
      return;
    }
    feeds.push(feed);
    running.set(cfg.id, { cfg, feed });
    live.track({
      status: () => (running.get(feed.id)?.feed === feed ? (failed.get(feed.id) ?? feed.status()) : null),
    });
    log.info('changefeed started', { tables: cfg.tables.join(', '), views: cfg.views.length });
    // A feed that ends by itself without an error is just stopped; the others go on.
    pending.push(
      feed.done.then(
        () => {},
        (error: unknown) => report(feed.id, error ?? new Error('failed'), feed.status()),
      ),
    );
  };
  for (const cfg of configs) launch(cfg);
  let reloaded: () => void = () => {};
  let reloading = Promise.resolve();
  deps.reload?.on(() => {
    reloading = reloading.then(async () => {
      let next: readonly ChangefeedConfig[];
      try {
        next = await deps.reload!.load();
      } catch (err) {
        logger.error('config not reloaded: it does not load', { error: err });
        return;
      }
      const ids = new Set(next.map((c) => c.id));
      for (const [id, r] of [...running]) {
        const cfg = next.find((c) => c.id === id);
        if (cfg && JSON.stringify(cfg) === JSON.stringify(r.cfg)) continue;
        running.delete(id);
        failed.delete(id);
        await r.feed.stop().catch(() => {});
        if (!ids.has(id)) logger.info('changefeed removed from the config: stopped', { changefeed: id });
      }
      for (const cfg of next) if (!running.has(cfg.id)) launch(cfg);
      logger.info('config reloaded', { changefeeds: next.length });
      reloaded();
    });
  });
  live.start();
  const signalled = new Promise<void>((resolve) => {
    if (shutdown.aborted) resolve();
    shutdown.addEventListener('abort', () => resolve(), { once: true });
  });
  // Until a signal, or until every changefeed ended (a reload stops some and starts others: after
  // one, what ended is counted again).
  for (;;) {
    const reload = new Promise<'reload'>((r) => (reloaded = () => r('reload')));
    const count = pending.length;
    const first = await Promise.race([
      signalled.then(() => 'signal' as const),
      Promise.all(pending).then(() => 'ended' as const),
      reload,
    ]);
    if (first === 'reload') continue;
    if (first === 'ended') {
      await reloading;
      if (pending.length !== count) continue;
    }
    if (first === 'signal') logger.info('stopping', { changefeeds: running.size });
    break;
  }
  deps.reload?.on(() => {});
  await reloading;
  const live2 = [...running.values()].map((r) => r.feed).filter((f) => !failed.has(f.id));
  const results = await Promise.allSettled(live2.map((f) => f.stop()));
  await Promise.all(pending);
  results.forEach((r, i) => {
    const f = live2[i];
    if (r.status === 'rejected' && f && !failed.has(f.id)) report(f.id, r.reason, f.status());
  });
  await runtime.close();
  live.stop();
  if (failed.size === 0) {
    logger.info('stopped', { changefeeds: feeds.length });
    return 0;
  }
  logger.info('stopped', { changefeeds: feeds.length, failed: [...failed.keys()].join(', ') });
  return 1;
}
