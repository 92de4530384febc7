import { stringify } from 'yaml';
import { maskUri } from '../errors/mask.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { parseConfig } from '../cli/load-config.ts';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';

/**
 * A changefeed as the API receives and stores it: the YAML form of one changefeed (see
 * docs/config-reference.md) as a JSON object. Nothing in it is substituted: a `${VAR}` in a
 * connection field is refused (an API caller must not read the server's environment), anywhere
 * else it is plain text. Changefeeds seeded from the server's config file are stored as the file
 * resolved them.
 */
export type ChangefeedDefinition = Record<string, unknown>;

export interface DefinitionProblem {
  /** Key path inside the changefeed object, e.g. `epoch.intervalMs`. */
  path: string;
  message: string;
}

/**
 * Validates one changefeed object with the config file's rules and applies the defaults.
 * Throws API_BAD_REQUEST whose detail lists every problem as `key.path: expectation, got X`.
 */
export function validateDefinition(input: unknown): ChangefeedConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new TidemarkError('API_BAD_REQUEST', {
      detail: 'expected a JSON object describing one changefeed',
    });
  }
  try {
    const cfg = parseConfig(stringify({ changefeeds: [input] }), {
      file: 'body',
      env: {},
      substitute: false,
    }).changefeeds[0];
    if (!cfg) throw new TidemarkError('API_BAD_REQUEST', { detail: 'expected one changefeed' });
    return cfg;
  } catch (err) {
    if (!(err instanceof TidemarkError) || !err.code.startsWith('CONFIG_')) throw err;
    const problems = definitionProblems(err.detail ?? err.message);
    throw new TidemarkError('API_BAD_REQUEST', {
      detail: problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('\n'),
      hint: 'Fix the keys named above; see docs/config-reference.md.',
      cause: err,
    });
  }
}

/** Turns the config loader's `body:N: changefeeds[0].key: message` lines into problems. */
export function definitionProblems(detail: string): DefinitionProblem[] {
  return detail.split('\n').map((line) => {
    const m = /^body:\d+: (?:changefeeds\[0\]\.?)?([^\s:]*): (.*)$/s.exec(line);
    return m
      ? { path: m[1] ?? '', message: m[2] ?? line }
      : { path: '', message: line.replace(/^body:\d+: /, '') };
  });
}

/**
 * A validated config (defaults applied) as a definition to store: keys whose value is null mean
 * "the default" and are left out, since the definition form has no null (`maxDiskBytes: null` is
 * "no limit", written by omitting the key).
 */
export function definitionFromConfig(cfg: ChangefeedConfig): ChangefeedDefinition {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (!isPlainObject(v)) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = strip(x);
    return out;
  };
  return strip(cfg) as ChangefeedDefinition;
}

/** Merges a PATCH body into a definition: objects one level deep (`epoch`, `snapshot`), the rest replaced. */
export function mergeDefinition(
  base: ChangefeedDefinition,
  patch: ChangefeedDefinition,
): ChangefeedDefinition {
  const out: ChangefeedDefinition = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const old = out[k];
    if (v === null) delete out[k];
    else if (isPlainObject(v) && isPlainObject(old)) out[k] = { ...old, ...v };
    else out[k] = v;
  }
  return out;
}

/** The config as the API shows it: URIs with their credentials masked. */
export function publicConfig(cfg: ChangefeedConfig): ChangefeedConfig {
  return { ...cfg, source: maskUri(cfg.source), sink: maskUri(cfg.sink) };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
