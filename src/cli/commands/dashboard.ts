import { findServerToken, readTokenFile } from '../../api/api-token.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { parseCommandArgs, type CliContext } from '../cli-context.ts';

export const DASHBOARD_USAGE = `Usage: tidemark dashboard [--server URL] [--token-file FILE]

Prints the dashboard's link with the API token in its fragment (#token=…): opened in a browser,
the dashboard keeps the token for that tab and can pause, resume, edit and remove changefeeds.
The fragment never reaches the server's logs or other sites. The token is found as for
\`tidemark changefeed\` (TIDEMARK_API_TOKEN, the token file the server recorded for this user, or
.tidemark/server/api-token).
`;

/** `tidemark dashboard`: the signed-in dashboard link of a local server. */
export async function runDashboardCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCommandArgs('dashboard', args, {
    server: { type: 'string', short: 's' },
    'token-file': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(DASHBOARD_USAGE);
    return 0;
  }
  const serverUrl = (values.server ?? ctx.env.TIDEMARK_SERVER ?? 'http://127.0.0.1:8300').replace(/\/+$/, '');
  const token = values['token-file']
    ? readTokenFile(values['token-file'])
    : findServerToken({ serverUrl, env: ctx.env, cwd: ctx.cwd });
  if (!token) {
    throw new TidemarkError('CLI_USAGE', {
      detail: `no API token found for ${serverUrl}`,
      hint: 'Pass --token-file DATA_DIR/api-token (the server prints where it is on its first start).',
    });
  }
  ctx.stdout.write(`${serverUrl}/#token=${encodeURIComponent(token)}\n`);
  return 0;
}
