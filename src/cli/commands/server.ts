import { resolve } from 'node:path';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { checkToken, readTokenFile } from '../../api/api-token.ts';
import { isLoopback, parseListenAddress } from '../../api/listen-address.ts';
import { createLogger } from '../../runtime/logger.ts';
import { runServer } from '../../server/run-server.ts';
import { logFormatOption, parseCommandArgs, type CliContext } from '../cli-context.ts';
import { loadConfig } from '../load-config.ts';

export const SERVER_USAGE = `Usage: tidemark server [--addr HOST:PORT] [--data-dir DIR] [--config FILE] [--token-file FILE | --no-auth]

Runs changefeeds created through the HTTP API (see docs/operations.md) and keeps their
definitions and states in DIR/tidemark-meta.db; a restart brings each back as it was.

  --addr HOST:PORT     listen address (default 127.0.0.1:8300); a non-loopback address
                       requires --token-file or TIDEMARK_API_TOKEN
  --data-dir DIR       metadata store and API token (default .tidemark/server)
  --config FILE        seeds the changefeeds of FILE whose id is not stored yet
  --token-file FILE    bearer token required on every request but /healthz, /readyz and the
                       dashboard's files (or set TIDEMARK_API_TOKEN)
  --no-auth            no token at all (loopback only): any local process, and any web page
                       able to reach the port with the right Host, may change changefeeds
  --allowed-host NAME  another host name the server answers to (behind a reverse proxy);
                       repeatable

Without --token-file, the server creates a random token in DIR/api-token (mode 0600) on its
first start and prints it once; mutating calls need it. The tidemark CLI of the same user on
this machine finds it by itself; \`tidemark dashboard\` prints a link that signs the dashboard in.

Dashboard at http://HOST:PORT/, metrics at /metrics. SIGINT/SIGTERM stop it gracefully.
`;

/** `tidemark server`: serves until a signal, then stops every changefeed gracefully. */
export async function runServerCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCommandArgs('server', args, {
    addr: { type: 'string' },
    'data-dir': { type: 'string' },
    config: { type: 'string', short: 'c' },
    'token-file': { type: 'string' },
    'no-auth': { type: 'boolean' },
    'allowed-host': { type: 'string', multiple: true },
    'log-format': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(SERVER_USAGE);
    return 0;
  }
  const address = parseListenAddress(values.addr ?? '127.0.0.1:8300');
  const tokenFile = values['token-file'] === undefined ? undefined : resolve(ctx.cwd, values['token-file']);
  const token =
    tokenFile !== undefined
      ? readTokenFile(tokenFile)
      : ctx.env.TIDEMARK_API_TOKEN
        ? checkToken(ctx.env.TIDEMARK_API_TOKEN, 'TIDEMARK_API_TOKEN')
        : undefined;
  if (values['no-auth'] && token !== undefined) {
    throw new TidemarkError('CLI_USAGE', {
      detail: 'tidemark server: --no-auth cannot be combined with a token',
    });
  }
  if (values['no-auth'] && !isLoopback(address.host)) {
    throw new TidemarkError('SERVER_TOKEN_REQUIRED', {
      detail: `--no-auth with --addr ${address.host}:${address.port}`,
    });
  }
  const seed = values.config ? (await loadConfig(values.config, { env: ctx.env })).changefeeds : [];
  const format = logFormatOption(values['log-format']);
  const logger = createLogger({ stream: ctx.stderr, ...(format ? { format } : {}) });
  const dataDir = resolve(ctx.cwd, values['data-dir'] ?? '.tidemark/server');
  const server = await runServer({
    address,
    dataDir,
    logger,
    seed,
    env: ctx.env,
    ...(token === undefined ? {} : { token }),
    ...(tokenFile === undefined ? {} : { tokenFile }),
    ...(values['no-auth'] ? { auth: 'none' as const } : {}),
    ...(values['allowed-host'] ? { allowedHosts: values['allowed-host'] } : {}),
    onTokenCreated: (t, file) =>
      ctx.stdout.write(
        `API token created in ${file} (mode 0600); it is shown this once:\n  ${t}\n` +
          `The tidemark CLI on this machine finds it by itself; \`tidemark dashboard\` prints a signed-in link.\n`,
      ),
  });
  ctx.stdout.write(`tidemark server listening on ${server.url}\n`);
  ctx.stdout.write(`dashboard: ${server.url}/  (sign in: tidemark dashboard --server ${server.url})\n`);
  await new Promise<void>((done) => {
    if (ctx.shutdown.aborted) done();
    ctx.shutdown.addEventListener('abort', () => done(), { once: true });
  });
  logger.info('stopping server');
  await server.close();
  logger.info('server stopped');
  return 0;
}
