import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHANGEFEED_DEFAULTS } from '../runtime/changefeed-config.ts';
import { SETTINGS, configJsonSchema, configSchemaText } from './config-schema.ts';
import { parseConfig } from './load-config.ts';

const head = `changefeeds:
  - id: orders
    source: postgres://app@db:5432/app
    sink: postgres://replica@db2/replica
    tables: [public.orders, "sales.*"]
`;

/** Documents on both sides of every rule; each is judged by the loader and by the schema. */
const CASES: readonly string[] = [
  head,
  `${head}    views: [{ name: totals, sql: "select count(*) from orders" }]\n`,
  `${head}    epoch: { intervalMs: 250, maxRows: "1_000", maxBytes: 8MiB }\n`,
  `${head}    epoch: { intervalMs: 0 }\n`,
  `${head}    epoch: { intervalMs: fast }\n`,
  `${head}    epoch: { intervalMs: 1.5 }\n`,
  `${head}    epoch: { interval: 100 }\n`,
  `${head}    epoch: 100\n`,
  `${head}    memoryQuotaBytes: "1 GiB"\n`,
  `${head}    memoryQuotaBytes: "1 lots"\n`,
  `${head}    changeLog: { maxDiskBytes: 10GiB, releaseAfterMs: 3600000 }\n`,
  `${head}    changeLog: { maxDiskBytes: -1 }\n`,
  `${head}    snapshot: { parallelism: 2, chunkRows: 1000, startTimeoutMs: 5000 }\n`,
  `${head}    snapshot: { parallelism: two }\n`,
  `${head}    schemaChanges: { dropTable: keep, renameTable: fail }\n`,
  `${head}    schemaChanges: { dropTable: vanish }\n`,
  `${head}    lagBudgetMs: 5000\n    heartbeatIntervalMs: 500\n`,
  `${head}    lagBudget: 5000\n`,
  `${head}    views: [{ name: "bad name", sql: "select 1" }]\n`,
  `${head}    views: [{ name: v, sql: "  " }]\n`,
  `${head}    views: [{ name: v }]\n`,
  head.replace('id: orders', 'id: Orders!'),
  head.replace('postgres://app@db:5432/app', 'mysql://app@db/app'),
  head.replace('postgres://app@db:5432/app', '${SRC_URL}'),
  head.replace('[public.orders, "sales.*"]', '[]'),
  head.replace('[public.orders, "sales.*"]', '["a.b.c"]'),
  head.replace('    sink: postgres://replica@db2/replica\n', ''),
  'changefeeds: []\n',
  `${head}extra: 1\n`,
];

function loaderAccepts(text: string): boolean {
  try {
    parseConfig(text, { file: 'tidemark.yaml', env: { SRC_URL: 'postgres://h/db' } });
    return true;
  } catch {
    return false;
  }
}

describe('tidemark.yaml JSON Schema', () => {
  it('is the committed tidemark.schema.json (run `npm run config-schema` after changing a key)', () => {
    const committed = readFileSync(new URL('../../tidemark.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(configSchemaText());
  });

  it('covers every key the runtime has a default for', () => {
    const paths: string[] = [];
    for (const [k, v] of Object.entries(CHANGEFEED_DEFAULTS)) {
      if (k === 'views') continue;
      if (v !== null && typeof v === 'object') for (const sub of Object.keys(v)) paths.push(`${k}.${sub}`);
      else paths.push(k);
    }
    expect(SETTINGS.map((s) => s.path).sort()).toEqual(paths.sort());
  });

  it('accepts and refuses what the loader accepts and refuses (an independent validator, ajv)', () => {
    const validate = new Ajv({ strict: true, allErrors: true }).compile(configJsonSchema());
    const verdicts = CASES.map((text) => ({
      text,
      loader: loaderAccepts(text),
      schema: validate(parse(text)),
    }));
    expect(verdicts.filter((v) => v.loader !== v.schema)).toEqual([]);
    // Both sides are exercised.
    expect(verdicts.filter((v) => v.loader).length).toBeGreaterThan(5);
    expect(verdicts.filter((v) => !v.loader).length).toBeGreaterThan(10);
  });

  it('gives editors the defaults and the allowed values', () => {
    type Node = { default?: unknown; enum?: unknown; properties: Record<string, Node>; items: Node };
    const cf = (configJsonSchema() as unknown as Node).properties.changefeeds!.items.properties;
    expect(cf.epoch!.properties.intervalMs!.default).toBe(CHANGEFEED_DEFAULTS.epoch.intervalMs);
    expect(cf.schemaChanges!.properties.dropTable!.enum).toEqual(['drop', 'keep', 'fail']);
    expect(cf.changeLog!.properties.maxDiskBytes!.default).toBeUndefined();
  });
});
