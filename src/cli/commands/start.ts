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
  return runChangefeeds(config.changefeeds, {
    runtime,
    logger,
    dataDir: isAbsolute(dataDir) ? dataDir : join(ctx.cwd, dataDir),
    live,
    shutdown: ctx.shutdown,
    stderr: ctx.stderr,
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
  for (const cfg of configs) {
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
      continue;
    }
    feeds.push(feed);
    live.track({ status: () => failed.get(feed.id) ?? feed.status() });
    log.info('changefeed started', { tables: cfg.tables.join(', '), views: cfg.views.length });
    // A feed that ends by itself without an error is just stopped; the others go on.
    pending.push(
      feed.done.then(
        () => {},
        (error: unknown) => report(feed.id, error ?? new Error('failed'), feed.status()),
      ),
    );
  }
  live.start();
  const signalled = new Promise<void>((resolve) => {
    if (shutdown.aborted) resolve();
    shutdown.addEventListener('abort', () => resolve(), { once: true });
  });
  const allEnded = Promise.all(pending);
  const first = await Promise.race([signalled.then(() => 'signal' as const), allEnded]);
  if (first === 'signal') logger.info('stopping', { changefeeds: feeds.length });
  const running = feeds.filter((f) => !failed.has(f.id));
  const results = await Promise.allSettled(running.map((f) => f.stop()));
  await allEnded;
  results.forEach((r, i) => {
    const f = running[i];
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
