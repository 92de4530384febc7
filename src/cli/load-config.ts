import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, type Node } from 'yaml';
import { TidemarkError } from '../errors/tidemark-error.ts';
import {
  CHANGEFEED_DEFAULTS,
  CHANGEFEED_ID_PATTERN,
  type ChangefeedConfig,
  type TidemarkConfig,
} from '../runtime/changefeed-config.ts';
import { ConfigReader } from './config-reader.ts';
import {
  REQUIRED_KEYS,
  SETTINGS,
  SOURCE_SCHEMES,
  TABLE_ENTRY,
  VIEW_NAME,
  changefeedKeys,
  defaultOf,
  groupKeys,
  type Setting,
} from './config-schema.ts';

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
  /** Variables for `${VAR}` in the connection fields; defaults to `process.env`. */
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

/**
 * Validates config text; `file` only names the file in messages. No I/O. `${VAR}` is substituted
 * only in the connection fields (`source`, `sink`), and not at all with `substitute: false` (API
 * bodies: a caller of the API must not read the server's environment).
 */
export function parseConfig(
  text: string,
  opts: { file: string; env: Readonly<Record<string, string | undefined>>; substitute?: boolean },
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
  const r = new ConfigReader({
    file: opts.file,
    doc,
    lineCounter,
    env: opts.env,
    substitute: opts.substitute ?? true,
  });
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
  const m = r.map(node, path, { known: changefeedKeys(), required: REQUIRED_KEYS });
  if (!m) return undefined;
  const errorsBefore = r.errors.length;
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
  const views = m.has('views')
    ? readViews(r, m.get('views') ?? null, `${path}.views`)
    : [...CHANGEFEED_DEFAULTS.views];
  const resnapshot = m.has('resnapshot')
    ? readResnapshot(r, m.get('resnapshot') ?? null, `${path}.resnapshot`)
    : [...CHANGEFEED_DEFAULTS.resnapshot];
  const settings = readSettings(r, m, path);

  if (r.errors.length > errorsBefore || r.missingEnv !== undefined) return undefined;
  if (!id || !source || !sink || !tables || !views || !resnapshot) return undefined;
  return {
    idNode,
    config: { id: id.value, source, sink, tables, views, resnapshot, ...settings },
  };
}

type Settings = Omit<ChangefeedConfig, 'id' | 'source' | 'sink' | 'tables' | 'views' | 'resnapshot'>;

/** Every setting of the table in config-schema.ts: its default, or the value read and checked. */
function readSettings(r: ConfigReader, m: Map<string, Node | null>, path: string): Settings {
  const out: Record<string, unknown> = {};
  const groups = new Map<string, Map<string, Node | null> | undefined>();
  for (const s of SETTINGS) {
    const [group, key] = s.path.split('.') as [string, string | undefined];
    let value = defaultOf(s.path);
    if (key === undefined) {
      if (m.has(group)) value = readSetting(r, m.get(group) ?? null, `${path}.${s.path}`, s) ?? value;
      out[group] = value;
      continue;
    }
    if (!groups.has(group)) {
      groups.set(
        group,
        m.has(group)
          ? r.map(m.get(group) ?? null, `${path}.${group}`, { known: groupKeys(group), required: [] })
          : undefined,
      );
    }
    const g = groups.get(group);
    if (g?.has(key)) value = readSetting(r, g.get(key) ?? null, `${path}.${s.path}`, s) ?? value;
    ((out[group] ??= {}) as Record<string, unknown>)[key] = value;
  }
  return out as unknown as Settings;
}

function readSetting(r: ConfigReader, node: Node | null, path: string, s: Setting): unknown {
  switch (s.kind.type) {
    case 'int':
      return r.positiveInt(node, path, s.kind.unit);
    case 'bytes':
      return r.bytes(node, path);
    case 'choice': {
      const v = r.string(node, path);
      if (v === undefined) return undefined;
      if (s.kind.values.includes(v.value)) return v.value;
      r.fail(node, path, `expected one of ${s.kind.values.join(', ')}, got "${v.shown}"`);
      return undefined;
    }
  }
}

function readUri(
  r: ConfigReader,
  node: Node | null,
  path: string,
  schemes: readonly string[] | undefined,
): string | undefined {
  const s = r.connectionString(node, path);
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

function readResnapshot(
  r: ConfigReader,
  node: Node | null,
  path: string,
): { table: string; request: string }[] | undefined {
  const items = r.list(node, path);
  if (!items) return undefined;
  const out: { table: string; request: string }[] = [];
  items.forEach((item, i) => {
    const at = `${path}[${i}]`;
    const m = r.map(item, at, { known: ['table', 'request'], required: ['table', 'request'] }, node);
    if (!m?.has('table') || !m.has('request')) return;
    const table = r.string(m.get('table') ?? null, `${at}.table`, item);
    const request = r.string(m.get('request') ?? null, `${at}.request`, item);
    if (!table || !request) return;
    if (!TABLE_ENTRY.test(table.value)) {
      r.fail(
        m.get('table'),
        `${at}.table`,
        `expected "schema.table", "table" or a pattern like "sales.*", got ${JSON.stringify(table.shown)}`,
      );
      return;
    }
    if (request.value.trim() === '') {
      r.fail(m.get('request'), `${at}.request`, 'expected text naming the request, like "2026-12-04"');
      return;
    }
    out.push({ table: table.value, request: request.value });
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
    if (!VIEW_NAME.test(name.value)) {
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
