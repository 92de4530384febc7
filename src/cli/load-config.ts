import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, type Node } from 'yaml';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { SOURCE_SCHEMES } from '../source/create-connector.ts';
import {
  CHANGEFEED_DEFAULTS,
  CHANGEFEED_ID_PATTERN,
  type ChangefeedConfig,
  type TidemarkConfig,
} from '../runtime/changefeed-config.ts';
import { ConfigReader } from './config-reader.ts';

/**
 * Loads a `tidemark.yaml`: YAML → `${VAR}` substitution → validation → defaults. Every problem is
 * reported as `file:line: key.path: expectation, got X`, all of them in one error.
 *
 *   changefeeds:
 *     - id: orders
 *       source: postgres://app:${PGPASSWORD}@db:5432/app
 *       sink: postgres://replica@db2/replica
 *       tables: [public.orders, "sales.*"]
 */

export interface LoadConfigOptions {
  /** Variables for `${VAR}`; defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Reads and validates the file; CONFIG_NOT_FOUND if it cannot be read. */
export async function loadConfig(path: string, options: LoadConfigOptions = {}): Promise<TidemarkConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new TidemarkError('CONFIG_NOT_FOUND', {
      detail: `${path}${code === 'ENOENT' ? ' does not exist' : `: ${code ?? String(err)}`}`,
      cause: err,
    });
  }
  return parseConfig(text, { file: path, env: options.env ?? process.env });
}

const CHANGEFEED_KEYS = [
  'id',
  'source',
  'sink',
  'tables',
  'views',
  'epoch',
  'heartbeatIntervalMs',
  'snapshot',
  'memoryQuotaBytes',
  'changeLog',
  'schemaChanges',
] as const;

/** Validates config text; `file` only names the file in messages. No I/O. */
export function parseConfig(
  text: string,
  opts: { file: string; env: Readonly<Record<string, string | undefined>> },
): TidemarkConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // Later syntax errors are mostly echoes of the first; three are enough to find it.
    const lines = doc.errors
      .slice(0, 3)
      .map((e) => `${opts.file}:${lineCounter.linePos(e.pos[0]).line}: ${firstLine(e.message)}`);
    throw new TidemarkError('CONFIG_INVALID', { detail: lines.join('\n') });
  }
  const r = new ConfigReader({ file: opts.file, doc, lineCounter, env: opts.env });
  const root = r.resolve(doc.contents);
  const changefeeds: ChangefeedConfig[] = [];
  const top =
    root === null ? undefined : r.map(root, '', { known: ['changefeeds'], required: ['changefeeds'] });
  if (root === null) r.fail(null, '(top level)', 'the file is empty; expected a "changefeeds:" list');
  const items = top?.has('changefeeds')
    ? r.list(top.get('changefeeds') ?? null, 'changefeeds', root)
    : undefined;
  if (items?.length === 0) r.fail(top?.get('changefeeds'), 'changefeeds', 'expected at least one changefeed');
  const firstLineOfId = new Map<string, number>();
  items?.forEach((item, i) => {
    const cf = readChangefeed(r, item, `changefeeds[${i}]`);
    if (!cf) return;
    const first = firstLineOfId.get(cf.config.id);
    if (first !== undefined) {
      r.fail(
        cf.idNode,
        `changefeeds[${i}].id`,
        `duplicate id "${cf.config.id}" (first used at line ${first})`,
      );
      return;
    }
    firstLineOfId.set(cf.config.id, r.line(cf.idNode));
    changefeeds.push(cf.config);
  });
  if (r.errors.length > 0) throw new TidemarkError('CONFIG_INVALID', { detail: r.errors.join('\n') });
  if (r.missingEnv !== undefined) throw new TidemarkError('CONFIG_ENV_MISSING', { detail: r.missingEnv });
  return { changefeeds };
}

function readChangefeed(
  r: ConfigReader,
  node: Node,
  path: string,
): { config: ChangefeedConfig; idNode: Node | null } | undefined {
  const m = r.map(node, path, { known: CHANGEFEED_KEYS, required: ['id', 'source', 'sink', 'tables'] });
  if (!m) return undefined;
  const errorsBefore = r.errors.length;
  const d = CHANGEFEED_DEFAULTS;
  const idNode = m.get('id') ?? null;
  const id = m.has('id') ? r.string(idNode, `${path}.id`, node) : undefined;
  if (id && !CHANGEFEED_ID_PATTERN.test(id.value)) {
    r.fail(
      idNode,
      `${path}.id`,
      `expected 1–41 characters of a-z, 0-9, "_" or "-", starting with a letter or digit, got ${JSON.stringify(id.shown)}`,
    );
  }
  const source = m.has('source')
    ? readUri(r, m.get('source') ?? null, `${path}.source`, SOURCE_SCHEMES)
    : undefined;
  const sink = m.has('sink') ? readUri(r, m.get('sink') ?? null, `${path}.sink`, undefined) : undefined;
  const tables = m.has('tables') ? readTables(r, m.get('tables') ?? null, `${path}.tables`) : undefined;
  const views = m.has('views') ? readViews(r, m.get('views') ?? null, `${path}.views`) : [...d.views];

  const epoch: ChangefeedConfig['epoch'] = { ...d.epoch };
  if (m.has('epoch')) {
    const e = r.map(m.get('epoch') ?? null, `${path}.epoch`, {
      known: ['intervalMs', 'maxRows', 'maxBytes'],
      required: [],
    });
    const n = e?.get('intervalMs');
    if (e?.has('intervalMs'))
      epoch.intervalMs = r.positiveInt(n ?? null, `${path}.epoch.intervalMs`, 'milliseconds') ?? 0;
    if (e?.has('maxRows'))
      epoch.maxRows = r.positiveInt(e.get('maxRows') ?? null, `${path}.epoch.maxRows`, 'rows') ?? 0;
    if (e?.has('maxBytes'))
      epoch.maxBytes = r.bytes(e.get('maxBytes') ?? null, `${path}.epoch.maxBytes`) ?? 0;
  }
  const snapshot: ChangefeedConfig['snapshot'] = { ...d.snapshot };
  if (m.has('snapshot')) {
    const s = r.map(m.get('snapshot') ?? null, `${path}.snapshot`, {
      known: ['parallelism', 'chunkRows', 'startTimeoutMs'],
      required: [],
    });
    if (s?.has('startTimeoutMs'))
      snapshot.startTimeoutMs =
        r.positiveInt(s.get('startTimeoutMs') ?? null, `${path}.snapshot.startTimeoutMs`, 'milliseconds') ??
        0;
    if (s?.has('parallelism')) {
      snapshot.parallelism =
        r.positiveInt(s.get('parallelism') ?? null, `${path}.snapshot.parallelism`, 'connections') ?? 0;
    }
    if (s?.has('chunkRows'))
      snapshot.chunkRows =
        r.positiveInt(s.get('chunkRows') ?? null, `${path}.snapshot.chunkRows`, 'rows') ?? 0;
  }
  const heartbeatIntervalMs = m.has('heartbeatIntervalMs')
    ? r.positiveInt(m.get('heartbeatIntervalMs') ?? null, `${path}.heartbeatIntervalMs`, 'milliseconds')
    : d.heartbeatIntervalMs;
  const memoryQuotaBytes = m.has('memoryQuotaBytes')
    ? r.bytes(m.get('memoryQuotaBytes') ?? null, `${path}.memoryQuotaBytes`)
    : d.memoryQuotaBytes;
  const changeLog: ChangefeedConfig['changeLog'] = { ...d.changeLog };
  if (m.has('changeLog')) {
    const c = r.map(m.get('changeLog') ?? null, `${path}.changeLog`, {
      known: ['maxDiskBytes', 'releaseAfterMs'],
      required: [],
    });
    if (c?.has('releaseAfterMs'))
      changeLog.releaseAfterMs =
        r.positiveInt(c.get('releaseAfterMs') ?? null, `${path}.changeLog.releaseAfterMs`, 'milliseconds') ??
        null;
    if (c?.has('maxDiskBytes'))
      changeLog.maxDiskBytes = r.bytes(c.get('maxDiskBytes') ?? null, `${path}.changeLog.maxDiskBytes`) ?? 0;
  }

  const schemaChanges: ChangefeedConfig['schemaChanges'] = { ...d.schemaChanges };
  if (m.has('schemaChanges')) {
    const c = r.map(m.get('schemaChanges') ?? null, `${path}.schemaChanges`, {
      known: ['dropTable', 'renameTable'],
      required: [],
    });
    const choice = <T extends string>(key: string, allowed: readonly T[]): T | undefined => {
      const node = c?.get(key) ?? null;
      const v = r.string(node, `${path}.schemaChanges.${key}`);
      if (v === undefined) return undefined;
      if ((allowed as readonly string[]).includes(v.value)) return v.value as T;
      r.fail(node, `${path}.schemaChanges.${key}`, `expected one of ${allowed.join(', ')}, got "${v.shown}"`);
      return undefined;
    };
    if (c?.has('dropTable'))
      schemaChanges.dropTable = choice('dropTable', ['drop', 'keep', 'fail'] as const) ?? 'drop';
    if (c?.has('renameTable'))
      schemaChanges.renameTable = choice('renameTable', ['follow', 'fail'] as const) ?? 'follow';
  }

  if (r.errors.length > errorsBefore || r.missingEnv !== undefined) return undefined;
  if (!id || !source || !sink || !tables || !views || !heartbeatIntervalMs || !memoryQuotaBytes)
    return undefined;
  return {
    idNode,
    config: {
      id: id.value,
      source,
      sink,
      tables,
      views,
      epoch,
      heartbeatIntervalMs,
      snapshot,
      memoryQuotaBytes,
      changeLog,
      schemaChanges,
    },
  };
}

function readUri(
  r: ConfigReader,
  node: Node | null,
  path: string,
  schemes: readonly string[] | undefined,
): string | undefined {
  const s = r.string(node, path);
  if (!s) return undefined;
  let url: URL;
  try {
    url = new URL(s.value);
  } catch {
    r.fail(
      node,
      path,
      `expected a URI like ${schemes ? 'postgres://user@host:5432/db' : 'postgres://host/db or sqlite:///path/file.db'}, got ${JSON.stringify(s.shown)}`,
    );
    return undefined;
  }
  const scheme = url.protocol.replace(/:$/, '');
  if (schemes && !schemes.includes(scheme)) {
    r.fail(
      node,
      path,
      `expected a ${schemes.map((x) => `${x}://`).join(' or ')} URI, got scheme "${scheme}"`,
    );
    return undefined;
  }
  return s.value;
}

const TABLE_ENTRY = /^[^.\s]+(\.[^.\s]+)?$/;

function readTables(r: ConfigReader, node: Node | null, path: string): string[] | undefined {
  const items = r.list(node, path);
  if (!items) return undefined;
  if (items.length === 0) r.fail(node, path, 'expected at least one table or pattern');
  const out: string[] = [];
  items.forEach((item, i) => {
    const s = r.string(item, `${path}[${i}]`, node);
    if (!s) return;
    if (!TABLE_ENTRY.test(s.value)) {
      r.fail(
        item,
        `${path}[${i}]`,
        `expected "schema.table", "table" or a pattern like "sales.*", got ${JSON.stringify(s.shown)}`,
      );
      return;
    }
    out.push(s.value);
  });
  return out;
}

function readViews(
  r: ConfigReader,
  node: Node | null,
  path: string,
): { name: string; sql: string }[] | undefined {
  const items = r.list(node, path);
  if (!items) return undefined;
  const out: { name: string; sql: string }[] = [];
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const m = r.map(item, `${path}[${i}]`, { known: ['name', 'sql'], required: ['name', 'sql'] }, node);
    if (!m?.has('name') || !m.has('sql')) return;
    const name = r.string(m.get('name') ?? null, `${path}[${i}].name`, item);
    const sql = r.string(m.get('sql') ?? null, `${path}[${i}].sql`, item);
    if (!name || !sql) return;
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(name.value)) {
      r.fail(
        m.get('name'),
        `${path}[${i}].name`,
        `expected an identifier like "order_totals" or "reports.daily", got ${JSON.stringify(name.shown)}`,
      );
      return;
    }
    if (seen.has(name.value)) {
      r.fail(m.get('name'), `${path}[${i}].name`, `duplicate view name "${name.value}"`);
      return;
    }
    if (sql.value.trim() === '') {
      r.fail(m.get('sql'), `${path}[${i}].sql`, 'expected a SELECT statement, got an empty string');
      return;
    }
    seen.add(name.value);
    out.push({ name: name.value, sql: sql.value });
  });
  return out;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
