import { isAbsolute, join } from 'node:path';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { parseListenAddress } from '../../api/listen-address.ts';
import { logFormatOption, parseCommandArgs, type CliContext } from '../cli-context.ts';
import { runDemo } from '../demo/run-demo.ts';
import { COMMAND_USAGE } from '../help.ts';

/** `tidemark demo [--sink postgres|sqlite] [--data-dir DIR] [--port N] [--addr HOST:PORT] [--rate N] [--seed N]`. */
export async function runDemoCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCommandArgs('demo', args, {
    sink: { type: 'string', default: 'postgres' },
    'data-dir': { type: 'string', default: join('.tidemark', 'demo') },
    port: { type: 'string', default: '54320' },
    rate: { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
    addr: { type: 'string', default: '127.0.0.1:8300' },
    'log-format': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(COMMAND_USAGE.demo ?? '');
    return 0;
  }
  if (values.sink !== 'postgres' && values.sink !== 'sqlite') {
    throw new TidemarkError('CLI_USAGE', {
      detail: `tidemark demo: --sink must be postgres or sqlite, got "${values.sink}"`,
    });
  }
  const dataDir = values['data-dir'];
  const logFormat = logFormatOption(values['log-format']);
  return runDemo(
    {
      sink: values.sink,
      dataDir: isAbsolute(dataDir) ? dataDir : join(ctx.cwd, dataDir),
      port: intOption('port', values.port, { min: 1, max: 65535 }),
      changesPerSec: intOption('rate', values.rate, { min: 1, max: 1_000_000 }),
      seed: intOption('seed', values.seed, { min: 0, max: 2 ** 31 }),
      addr: parseListenAddress(values.addr),
      ...(logFormat ? { logFormat } : {}),
    },
    ctx,
  );
}

function intOption(name: string, text: string, range: { min: number; max: number }): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < range.min || n > range.max) {
    throw new TidemarkError('CLI_USAGE', {
      detail: `tidemark demo: --${name} must be an integer from ${range.min} to ${range.max}, got "${text}"`,
    });
  }
  return n;
}
