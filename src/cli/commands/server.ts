import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { parseListenAddress } from '../../api/listen-address.ts';
import { createLogger } from '../../runtime/logger.ts';
import { runServer } from '../../server/run-server.ts';
import { parseCommandArgs, type CliContext } from '../cli-context.ts';
import { loadConfig } from '../load-config.ts';

export const SERVER_USAGE = `Usage: tidemark server [--addr HOST:PORT] [--data-dir DIR] [--config FILE] [--token-file FILE]

Runs changefeeds created through the HTTP API (see docs/operations.md) and keeps their
definitions and states in DIR/tidemark-meta.db; a restart brings each back as it was.

  --addr HOST:PORT     listen address (default 127.0.0.1:8300); a non-loopback address
                       requires a bearer token
  --data-dir DIR       metadata store (default .tidemark/server)
  --config FILE        seeds the changefeeds of FILE whose id is not stored yet
  --token-file FILE    bearer token required on every request but /healthz
                       (or set TIDEMARK_API_TOKEN)

Dashboard at http://HOST:PORT/, metrics at /metrics. SIGINT/SIGTERM stop it gracefully.
`;

/** `tidemark server`: serves until a signal, then stops every changefeed gracefully. */
export async function runServerCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCommandArgs('server', args, {
    addr: { type: 'string' },
    'data-dir': { type: 'string' },
    config: { type: 'string', short: 'c' },
    'token-file': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(SERVER_USAGE);
    return 0;
  }
  const address = parseListenAddress(values.addr ?? '127.0.0.1:8300');
  const token = await readToken(values['token-file'], ctx.env);
  const seed = values.config ? (await loadConfig(values.config, { env: ctx.env })).changefeeds : [];
  const logger = createLogger({ stream: ctx.stderr });
  const server = await runServer({
    address,
    dataDir: resolve(ctx.cwd, values['data-dir'] ?? '.tidemark/server'),
    logger,
    seed,
    env: ctx.env,
    ...(token === undefined ? {} : { token }),
  });
  ctx.stdout.write(`tidemark server listening on ${server.url}\n`);
  await new Promise<void>((done) => {
    if (ctx.shutdown.aborted) done();
    ctx.shutdown.addEventListener('abort', () => done(), { once: true });
  });
  logger.info('stopping server');
  await server.close();
  logger.info('server stopped');
  return 0;
}

async function readToken(file: string | undefined, env: CliContext['env']): Promise<string | undefined> {
  let token = env.TIDEMARK_API_TOKEN;
  if (file !== undefined) {
    try {
      token = await readFile(file, 'utf8');
    } catch (err) {
      throw new TidemarkError('CLI_USAGE', {
        detail: `--token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        cause: err,
      });
    }
  }
  if (token === undefined) return undefined;
  const t = token.trim();
  if (t.length < 16) {
    throw new TidemarkError('CLI_USAGE', {
      detail: 'the API token must have at least 16 characters',
      hint: 'Generate one: openssl rand -hex 32',
    });
  }
  return t;
}
