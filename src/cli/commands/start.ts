import { isAbsolute, join, resolve } from 'node:path';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { LiveStatus } from '../../runtime/changefeed-status.ts';
import { createLogger, type Logger } from '../../runtime/logger.ts';
import { parseCommandArgs, type CliContext } from '../cli-context.ts';
import { COMMAND_USAGE } from '../help.ts';
import { loadConfig } from '../load-config.ts';
import type { Changefeed, ChangefeedRuntime } from '../runtime-adapter.ts';
import type { ChangefeedConfig } from '../../runtime/changefeed-config.ts';

/** `tidemark start --config FILE`: runs every changefeed until a signal or a failure. */
export async function runStart(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCommandArgs('start', args, {
    config: { type: 'string', short: 'c' },
    'data-dir': { type: 'string' },
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
  const logger = createLogger({ stream: live.interleave(ctx.stderr) });
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
 * Starts the changefeeds, shows their status, and waits. A signal stops all of them gracefully
 * (exit 0); the first failure is reported and stops the others (exit 1). Shared with `demo`.
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
  let failure: { id: string; error: unknown } | undefined;
  try {
    for (const cfg of configs) {
      const log = logger.child({ changefeed: cfg.id });
      const feed = runtime.startChangefeed(cfg, {
        logger: log,
        onStatus: (s) => live.update(s),
        dataDir: deps.dataDir ?? resolve('.tidemark'),
      });
      feeds.push(feed);
      live.track(feed);
      log.info('changefeed started', { tables: cfg.tables.join(', '), views: cfg.views.length });
    }
  } catch (err) {
    failure = { id: configs[feeds.length]?.id ?? '?', error: err };
  }
  live.start();
  if (!failure) {
    const signalled = new Promise<'signal'>((resolve) => {
      if (shutdown.aborted) resolve('signal');
      shutdown.addEventListener('abort', () => resolve('signal'), { once: true });
    });
    // A feed that ends by itself without an error is just stopped; keep waiting for the others.
    const pending = new Map(
      feeds.map((f, i) => [
        i,
        f.done.then(
          () => ({ i, id: f.id, error: undefined as unknown }),
          (error: unknown) => ({ i, id: f.id, error: error ?? new Error('failed') }),
        ),
      ]),
    );
    while (pending.size > 0) {
      const first = await Promise.race([signalled, ...pending.values()]);
      if (first === 'signal') {
        logger.info('stopping', { changefeeds: feeds.length });
        break;
      }
      pending.delete(first.i);
      if (first.error !== undefined) {
        failure = { id: first.id, error: first.error };
        break;
      }
    }
  }
  const stopErrors = await stopAll(feeds, failure?.id);
  await runtime.close();
  live.stop();
  failure ??= stopErrors[0];
  if (!failure) {
    logger.info('stopped', { changefeeds: feeds.length });
    return 0;
  }
  const err = failure.error;
  logger.error('changefeed failed', { changefeed: failure.id, error: err });
  const text = err instanceof TidemarkError ? err.format() : String(err);
  deps.stderr.write(`changefeed ${failure.id} failed: ${text}\n`);
  return 1;
}

async function stopAll(
  feeds: readonly Changefeed[],
  failedId: string | undefined,
): Promise<{ id: string; error: unknown }[]> {
  const results = await Promise.allSettled(feeds.map((f) => f.stop()));
  const errors: { id: string; error: unknown }[] = [];
  results.forEach((r, i) => {
    const id = feeds[i]?.id ?? '?';
    if (r.status === 'rejected' && id !== failedId) errors.push({ id, error: r.reason });
  });
  return errors;
}
