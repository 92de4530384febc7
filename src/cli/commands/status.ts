import { TidemarkError } from '../../errors/tidemark-error.ts';
import { renderStatusLine, type ChangefeedStatus } from '../../runtime/changefeed-status.ts';
import { parseCommandArgs, type CliContext } from '../cli-context.ts';
import { COMMAND_USAGE } from '../help.ts';
import { loadConfig } from '../load-config.ts';

/**
 * `tidemark status --config FILE [--json]`: one status per changefeed, read from its databases.
 * A changefeed whose databases cannot be reached is shown as failed with the error; the exit code
 * is then 1, so scripts can alarm on it.
 */
export async function runStatus(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCommandArgs('status', args, {
    config: { type: 'string', short: 'c' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(COMMAND_USAGE.status ?? '');
    return 0;
  }
  if (!values.config)
    throw new TidemarkError('CLI_USAGE', { detail: 'tidemark status: --config FILE is required' });
  const config = await loadConfig(values.config, { env: ctx.env });
  const runtime = await ctx.loadRuntime();
  const statuses = await Promise.all(
    config.changefeeds.map(async (cfg): Promise<ChangefeedStatus> => {
      try {
        return await runtime.queryChangefeedStatus(cfg);
      } catch (err) {
        const e =
          err instanceof TidemarkError
            ? err
            : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
        return {
          id: cfg.id,
          phase: 'failed',
          rowsPerSec: 0,
          snapshotRows: 0,
          epoch: 0,
          resolved: null,
          checkpoint: null,
          lagMs: null,
          lagBytes: null,
          resolvedLagBytes: null,
          error: { code: e.code, message: e.message, hint: e.hint },
          warnings: [],
        };
      }
    }),
  );
  if (values.json) {
    ctx.stdout.write(JSON.stringify(statuses, null, 2) + '\n');
  } else {
    const idWidth = Math.max(...statuses.map((s) => s.id.length));
    for (const s of statuses) {
      ctx.stdout.write(renderStatusLine(s, { idWidth }) + '\n');
      if (s.error) ctx.stdout.write(`  hint: ${s.error.hint}\n`);
    }
  }
  return statuses.some((s) => s.phase === 'failed') ? 1 : 0;
}
