import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { ApiClient } from '../../api/api-client.ts';
import { findServerToken, readTokenFile } from '../../api/api-token.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { formatBytes, formatCount, formatDurationMs } from '../../core/units.ts';
import type { ChangefeedView } from '../../server/changefeed-manager.ts';
import { parseCommandArgs, type CliContext } from '../cli-context.ts';
import { substituteEnv } from '../env-substitute.ts';

export const CHANGEFEED_USAGE = `Usage: tidemark changefeed SUBCOMMAND --server URL [options]

  create  --id ID --source URI --sink URI --tables a,b [--paused] [--skip-checks]   or   --config FILE
          (the server runs tidemark doctor's checks first and refuses when one fails)
  list
  query   --id ID
  pause   --id ID
  resume  --id ID
  resnapshot --id ID --table T [--table T2 …]   copy tables again online (T: schema.table or a pattern)
  update  --id ID [--source URI] [--sink URI] [--tables a,b] [--config FILE]
  remove  --id ID [--drop-slot]

  --server URL       the tidemark server (default $TIDEMARK_SERVER or http://127.0.0.1:8300)
  --token-file FILE  bearer token; by default TIDEMARK_API_TOKEN, else the token file the
                     server at --server recorded for this user, else .tidemark/server/api-token
  --config FILE      one changefeed in the YAML form (a mapping, or a one-item changefeeds: list);
                     \${VAR} in source and sink is substituted from this command's environment
                     (the server never substitutes)
  --json             print the server's JSON instead of a table

Exit codes: 0 ok, 1 server or runtime error, 2 usage or validation error, 3 not found.
`;

const SUBCOMMANDS = ['create', 'list', 'query', 'pause', 'resume', 'resnapshot', 'update', 'remove'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

/** `tidemark changefeed …`: a client of the server's HTTP API. Handles its own exit codes. */
export async function runChangefeedCommand(args: string[], ctx: CliContext): Promise<number> {
  try {
    return await run(args, ctx);
  } catch (err) {
    if (!(err instanceof TidemarkError)) throw err;
    ctx.stderr.write(`error: ${err.format()}\n`);
    return exitCodeOf(err);
  }
}

/** 2 for usage and validation, 3 for not found, 1 for the rest. */
export function exitCodeOf(e: TidemarkError): number {
  if (e.code === 'API_NOT_FOUND') return 3;
  if (
    e.code === 'CLI_USAGE' ||
    e.code === 'API_BAD_REQUEST' ||
    e.code === 'API_CONFLICT' ||
    e.code === 'PREFLIGHT_FAILED' ||
    e.code === 'RESNAPSHOT_REFUSED' ||
    e.code.startsWith('CONFIG_')
  )
    return 2;
  return 1;
}

async function run(args: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    ctx.stdout.write(CHANGEFEED_USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new TidemarkError('CLI_USAGE', {
      detail: `tidemark changefeed: unknown subcommand "${sub}" (expected ${SUBCOMMANDS.join(', ')})`,
    });
  }
  const { values } = parseCommandArgs(`changefeed ${sub}`, rest, {
    server: { type: 'string', short: 's' },
    'token-file': { type: 'string' },
    id: { type: 'string' },
    source: { type: 'string' },
    sink: { type: 'string' },
    tables: { type: 'string' },
    config: { type: 'string', short: 'c' },
    paused: { type: 'boolean' },
    table: { type: 'string', multiple: true },
    'skip-checks': { type: 'boolean' },
    'drop-slot': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    ctx.stdout.write(CHANGEFEED_USAGE);
    return 0;
  }
  const serverUrl = values.server ?? ctx.env.TIDEMARK_SERVER ?? 'http://127.0.0.1:8300';
  const token = values['token-file']
    ? readTokenFile(values['token-file'])
    : findServerToken({ serverUrl, env: ctx.env, cwd: ctx.cwd });
  const client = new ApiClient({ serverUrl, ...(token ? { token } : {}) });
  const command = sub as Subcommand;
  const needId = () => {
    if (!values.id)
      throw new TidemarkError('CLI_USAGE', { detail: `tidemark changefeed ${command}: --id ID is required` });
    return values.id;
  };
  const flags = (): Record<string, unknown> => ({
    ...(values.source === undefined ? {} : { source: values.source }),
    ...(values.sink === undefined ? {} : { sink: values.sink }),
    ...(values.tables === undefined
      ? {}
      : {
          tables: values.tables
            .split(',')
            .map((t) => t.trim())
            .filter((t) => t !== ''),
        }),
  });
  const out = (v: unknown, human: () => string) =>
    ctx.stdout.write(values.json ? JSON.stringify(v, null, 2) + '\n' : human());

  switch (command) {
    case 'list': {
      const feeds = await client.list();
      out(feeds, () => renderTable(feeds));
      return 0;
    }
    case 'query': {
      const f = await client.get(needId());
      out(f, () => renderDetail(f));
      return 0;
    }
    case 'create': {
      const definition = values.config
        ? {
            ...(await readDefinition(values.config, ctx.env)),
            ...(values.id ? { id: values.id } : {}),
            ...flags(),
          }
        : { ...(values.id ? { id: values.id } : {}), ...flags() };
      if (!values.config) {
        const missing = ['id', 'source', 'sink', 'tables'].filter((k) => !(k in definition));
        if (missing.length > 0) {
          throw new TidemarkError('CLI_USAGE', {
            detail: `tidemark changefeed create: missing ${missing.map((k) => `--${k}`).join(', ')} (or pass --config FILE)`,
          });
        }
      }
      const f = await client.create(definition, {
        paused: values.paused === true,
        skipChecks: values['skip-checks'] === true,
      });
      out(f, () => `created changefeed ${f.id} (${f.state})\n`);
      return 0;
    }
    case 'update': {
      const id = needId();
      const patch = { ...(values.config ? await readDefinition(values.config, ctx.env) : {}), ...flags() };
      if (Object.keys(patch).length === 0) {
        throw new TidemarkError('CLI_USAGE', {
          detail:
            'tidemark changefeed update: nothing to change (pass --source, --sink, --tables or --config)',
        });
      }
      const f = await client.update(id, patch);
      out(f, () => `updated changefeed ${f.id} (${f.state})\n`);
      return 0;
    }
    case 'pause': {
      const f = await client.pause(needId());
      out(f, () => `paused changefeed ${f.id}\n`);
      return 0;
    }
    case 'resume': {
      const f = await client.resume(needId());
      out(f, () => `resumed changefeed ${f.id}\n`);
      return 0;
    }
    case 'resnapshot': {
      const id = needId();
      const tables = values.table ?? [];
      if (tables.length === 0) {
        throw new TidemarkError('CLI_USAGE', {
          detail: 'tidemark changefeed resnapshot: --table T is required (schema.table or a pattern)',
        });
      }
      const r = await client.resnapshot(id, tables);
      out(r, () =>
        [
          ...r.started.map((t) => `copying ${t} again (see tidemark changefeed query --id ${id})\n`),
          ...r.alreadyCopying.map((t) => `${t} is already being copied\n`),
        ].join(''),
      );
      return 0;
    }
    case 'remove': {
      const r = await client.remove(needId(), { dropSlot: values['drop-slot'] === true });
      out(
        r,
        () => `removed changefeed ${r.id}${r.droppedSlot ? ' and dropped its slot and publication' : ''}\n`,
      );
      return 0;
    }
  }
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new TidemarkError('CLI_USAGE', {
      detail: `${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      cause: err,
    });
  }
}

/**
 * One changefeed from YAML: a mapping of its keys, or `changefeeds:` holding exactly one, with
 * `${VAR}` substituted in its connection fields from the caller's environment, as the config
 * loader does for `tidemark start`.
 */
async function readDefinition(path: string, env: CliContext['env']): Promise<Record<string, unknown>> {
  const definition = await readDefinitionAsWritten(path);
  for (const key of ['source', 'sink'] as const) {
    const v = definition[key];
    if (typeof v !== 'string') continue;
    const r = substituteEnv(v, env);
    if (r.ok) definition[key] = r.value;
    else
      throw new TidemarkError('missing' in r ? 'CONFIG_ENV_MISSING' : 'CONFIG_INVALID', {
        detail: `${path}: ${key}: ${'missing' in r ? `\${${r.missing}} is not set` : `malformed variable reference ${r.malformed}`}`,
      });
  }
  return definition;
}

async function readDefinitionAsWritten(path: string): Promise<Record<string, unknown>> {
  let doc: unknown;
  try {
    doc = parse(await readText(path, '--config'));
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `${path}: ${(err as Error).message.split('\n')[0]}`,
      cause: err,
    });
  }
  const isMap = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isMap(doc) && Array.isArray(doc.changefeeds)) {
    const [only, ...more] = doc.changefeeds as unknown[];
    if (!isMap(only) || more.length > 0) {
      throw new TidemarkError('CONFIG_INVALID', {
        detail: `${path}: changefeeds: expected exactly one changefeed`,
      });
    }
    return { ...only };
  }
  if (!isMap(doc))
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `${path}: expected a mapping with id, source, sink, tables`,
    });
  return { ...doc };
}

function lagText(f: ChangefeedView): string {
  const s = f.status;
  if (f.state !== 'running') return '–';
  return `${s.lagMs === null ? '–' : formatDurationMs(s.lagMs)} · ${s.lagBytes === null ? '–' : formatBytes(s.lagBytes)}`;
}

/** `ID  STATE  PHASE  EPOCH  CHECKPOINT  LAG  ROWS/S  ERROR`, columns padded. */
export function renderTable(feeds: readonly ChangefeedView[]): string {
  if (feeds.length === 0) return 'no changefeeds\n';
  const rows = [
    ['ID', 'STATE', 'PHASE', 'EPOCH', 'CHECKPOINT', 'LAG', 'ROWS/S', 'ERROR'],
    ...feeds.map((f) => [
      f.id,
      f.state,
      f.status.phase,
      String(f.status.epoch),
      f.status.checkpoint ?? '–',
      lagText(f),
      formatCount(f.status.rowsPerSec),
      f.lastError?.code ?? '',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

export function renderDetail(f: ChangefeedView): string {
  const s = f.status;
  const lines: [string, string][] = [
    ['id', f.id],
    ['state', f.state],
    ['phase', s.phase],
    ['source', f.config?.source ?? '–'],
    ['sink', f.config?.sink ?? '–'],
    ['tables', f.config?.tables.join(', ') ?? '–'],
    ['epoch', String(s.epoch)],
    ['resolved', s.resolved ?? '–'],
    ['checkpoint', s.checkpoint ?? '–'],
    ['lag', lagText(f)],
    ['rows/s', formatCount(s.rowsPerSec)],
    ['retained WAL', f.retainedWalBytes === null ? '–' : formatBytes(f.retainedWalBytes)],
  ];
  if (f.lastError) {
    lines.push(['last error', f.lastError.message]);
    lines.push(['hint', f.lastError.hint]);
  }
  return lines.map(([k, v]) => `${(k + ':').padEnd(14)}${v}`).join('\n') + '\n';
}
