import { isAbsolute, join } from 'node:path';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { preflight, renderPreflight } from '../../server/preflight.ts';
import { parseCommandArgs, type CliContext } from '../cli-context.ts';
import { loadConfig } from '../load-config.ts';

export const DOCTOR_USAGE = `Usage: tidemark doctor --config FILE [--data-dir DIR] [--json]

Checks every prerequisite of every changefeed in FILE, without changing anything: the source
(reachable, TLS as asked, PostgreSQL version and its known logical-replication bugs, wal_level,
replication privilege, free replication slots and WAL senders, existing slots and the WAL they
hold, prepared transactions, each selected table's replica identity and key, partitioned tables,
publication rights), the sink (reachable, TLS, permissions) and the disk for the change log.
Each problem comes with a fix.

Exit code: 0 safe to start (warnings allowed), 1 not safe, 2 usage or config error.
`;

/** `tidemark doctor`: the preflight report; the exit code says whether it is safe to start. */
export async function runDoctorCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseCommandArgs('doctor', args, {
    config: { type: 'string', short: 'c' },
    'data-dir': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  if (!values.config)
    throw new TidemarkError('CLI_USAGE', { detail: 'tidemark doctor: --config FILE is required' });
  const config = await loadConfig(values.config, { env: ctx.env });
  const dataDir = values['data-dir'] ?? ctx.env.TIDEMARK_DATA_DIR ?? '.tidemark';
  const reports = await Promise.all(
    config.changefeeds.map((cfg) =>
      preflight(cfg, { dataDir: isAbsolute(dataDir) ? dataDir : join(ctx.cwd, dataDir) }),
    ),
  );
  ctx.stdout.write(values.json ? JSON.stringify({ reports }, null, 2) + '\n' : renderPreflight(reports));
  return reports.every((r) => r.ok) ? 0 : 1;
}
