import { TidemarkError } from '../../errors/tidemark-error.ts';
import { parseCommandArgs, type CliContext } from '../cli-context.ts';
import { COMMAND_USAGE } from '../help.ts';
import { loadConfig } from '../load-config.ts';

/**
 * `tidemark verify --config FILE [--changefeed ID] …`: compares each changefeed's downstream with
 * its source at one consistent position (`verify/verify-tables.ts`). Exit 0 when every table is
 * equal, 1 when some row differs, 2 on an error — including a comparison that could not be made
 * consistent (downstream not caught up, source rows changing in every round) and usage errors.
 */
export async function runVerify(args: string[], ctx: CliContext): Promise<number> {
  try {
    const { values } = parseCommandArgs('verify', args, {
      config: { type: 'string', short: 'c' },
      changefeed: { type: 'string' },
      'chunk-rows': { type: 'string' },
      rounds: { type: 'string' },
      'wait-ms': { type: 'string' },
      'max-rows': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      ctx.stdout.write(COMMAND_USAGE.verify ?? '');
      return 0;
    }
    if (!values.config)
      throw new TidemarkError('CLI_USAGE', { detail: 'tidemark verify: --config FILE is required' });
    const config = await loadConfig(values.config, { env: ctx.env });
    const feeds = values.changefeed
      ? config.changefeeds.filter((c) => c.id === values.changefeed)
      : config.changefeeds;
    if (feeds.length === 0) {
      throw new TidemarkError('CLI_USAGE', {
        detail: `tidemark verify: no changefeed "${values.changefeed ?? ''}" in ${values.config} (it has ${config.changefeeds.map((c) => c.id).join(', ')})`,
      });
    }
    const opts = {
      chunkRows: positive('chunk-rows', values['chunk-rows'], 10_000),
      rounds: positive('rounds', values.rounds, 5),
      waitMs: positive('wait-ms', values['wait-ms'], 60_000),
      signal: ctx.shutdown,
    };
    const maxRows = positive('max-rows', values['max-rows'], 100);
    const { verifyChangefeed } = await import('../../verify/verify-changefeed.ts');
    const { renderVerifyReport, verifyResultJson } = await import('../../verify/render-report.ts');
    let equal = true;
    const results: unknown[] = [];
    for (const cfg of feeds) {
      const r = await verifyChangefeed(cfg, {
        ...opts,
        onProgress: (m) => {
          if (!values.json) ctx.stderr.write(`${cfg.id}: ${m}\n`);
        },
      });
      equal &&= r.equal;
      if (values.json) results.push(verifyResultJson(cfg.id, r));
      else ctx.stdout.write(renderVerifyReport(cfg.id, r, maxRows));
    }
    if (values.json) ctx.stdout.write(JSON.stringify(results, null, 2) + '\n');
    return equal ? 0 : 1;
  } catch (err) {
    const e =
      err instanceof TidemarkError ? err : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
    ctx.stderr.write(`error: ${e.format()}\n`);
    return 2;
  }
}

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[1-9]\d*$/.test(text))
    throw new TidemarkError('CLI_USAGE', {
      detail: `tidemark verify: --${name} expects a positive integer, got "${text}"`,
    });
  return Number(text);
}
