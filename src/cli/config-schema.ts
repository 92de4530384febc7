/**
 * The keys of `tidemark.yaml`, once: the loader (load-config.ts) reads every changefeed through
 * this table (which keys exist, which are required, their kinds, patterns and defaults), and
 * `configJsonSchema()` generates from it the JSON Schema editors use (`tidemark.schema.json` in
 * the package; `npm run config-schema` writes it, a unit test keeps the committed file equal).
 *
 * The loader stays hand-written over `yaml`'s nodes because its errors name `file:line: key`;
 * the table is what keeps it and the schema saying the same thing.
 */
import { CHANGEFEED_DEFAULTS, CHANGEFEED_ID_PATTERN } from '../runtime/changefeed-config.ts';
import { SOURCE_SCHEMES } from '../source/create-connector.ts';

/** `schema.table`, `table`, or a glob pattern of them. */
export const TABLE_ENTRY = /^[^.\s]+(\.[^.\s]+)?$/;
/** A view's name: an identifier, optionally schema-qualified. */
export const VIEW_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
export { SOURCE_SCHEMES };

export type SettingKind =
  | { readonly type: 'int'; readonly unit: string }
  | { readonly type: 'bytes' }
  | { readonly type: 'choice'; readonly values: readonly string[] };

/** A tuning key of a changefeed, at `path` below it (`epoch.intervalMs`); all are optional. */
export interface Setting {
  readonly path: string;
  readonly kind: SettingKind;
  readonly description: string;
}

const ms = { type: 'int', unit: 'milliseconds' } as const;

export const SETTINGS: readonly Setting[] = [
  {
    path: 'epoch.intervalMs',
    kind: ms,
    description: 'Cut an epoch at the first commit after this much time.',
  },
  {
    path: 'epoch.maxRows',
    kind: { type: 'int', unit: 'rows' },
    description: '… or after this many source row changes.',
  },
  { path: 'epoch.maxBytes', kind: { type: 'bytes' }, description: '… or this many bytes of row text.' },
  {
    path: 'heartbeatIntervalMs',
    kind: ms,
    description: 'Write a heartbeat when the source has been quiet this long.',
  },
  {
    path: 'lagBudgetMs',
    kind: ms,
    description: "Checkpoint lag within which a running changefeed counts as ready (the server's /readyz).",
  },
  {
    path: 'snapshot.parallelism',
    kind: { type: 'int', unit: 'connections' },
    description: 'Connections reading the initial snapshot.',
  },
  {
    path: 'snapshot.chunkRows',
    kind: { type: 'int', unit: 'rows' },
    description: 'Rows per snapshot chunk (key range).',
  },
  {
    path: 'snapshot.startTimeoutMs',
    kind: ms,
    description:
      "How long a snapshot waits for the source's running transactions before failing (retried), naming them.",
  },
  {
    path: 'memoryQuotaBytes',
    kind: { type: 'bytes' },
    description:
      'Bytes of changes held in memory; beyond min(this, epoch.maxBytes) reading pauses; a transaction over a quarter of it goes out in chunks.',
  },
  {
    path: 'changeLog.maxDiskBytes',
    kind: { type: 'bytes' },
    description:
      "Size limit of the source's change log (shared; the first changefeed to start sets it). Default: none.",
  },
  {
    path: 'changeLog.releaseAfterMs',
    kind: ms,
    description:
      "A changefeed not run for this long stops holding the source's log and slot (resuming it then needs a new snapshot).",
  },
  {
    path: 'schemaChanges.dropTable',
    kind: { type: 'choice', values: ['drop', 'keep', 'fail'] },
    description: 'A replicated table dropped in the source: drop it downstream, keep it, or fail.',
  },
  {
    path: 'schemaChanges.renameTable',
    kind: { type: 'choice', values: ['follow', 'fail'] },
    description: 'A replicated table renamed in the source: follow (rename downstream) or fail.',
  },
  {
    path: 'schemaChanges.recopy',
    kind: { type: 'choice', values: ['copy', 'fail'] },
    description:
      'A change whose rows the log does not carry (a rewrite with volatile values): copy (the default: copy the table again online; downstream it keeps its last rows until the copy replaces them whole, in one epoch) or fail (stop, naming the table and the fix). A table a view reads always stops.',
  },
  {
    path: 'onNonEmptyTarget',
    kind: { type: 'choice', values: ['reconcile', 'truncate', 'fail'] },
    description:
      "A target table already holding rows when a new changefeed's initial snapshot starts: reconcile (rewrite only the rows that differ), truncate (empty it in the first epoch), or fail naming it.",
  },
];

/** The keys every changefeed must have, and the other keys that are not settings. */
export const REQUIRED_KEYS = ['id', 'source', 'sink', 'tables'] as const;
const STRUCTURAL_KEYS = [...REQUIRED_KEYS, 'views', 'resnapshot'] as const;

/** Every key a changefeed may have, in the order the reference lists them. */
export function changefeedKeys(): string[] {
  return [...STRUCTURAL_KEYS, ...new Set(SETTINGS.map((s) => s.path.split('.')[0]!))];
}

/** The keys of a nested group (`epoch` → intervalMs, maxRows, maxBytes); empty for a scalar key. */
export function groupKeys(group: string): string[] {
  return SETTINGS.filter((s) => s.path.startsWith(`${group}.`)).map((s) => s.path.slice(group.length + 1));
}

/** The default of a setting, from CHANGEFEED_DEFAULTS (null: none). */
export function defaultOf(path: string): unknown {
  let v: unknown = CHANGEFEED_DEFAULTS;
  for (const k of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[k];
  return v ?? null;
}

type JsonSchema = Record<string, unknown>;

const POSITIVE_INT_TEXT = '^\\s*(?=[\\d_]*[1-9])\\d[\\d_]*\\s*$';
const SIZE_TEXT = '^\\s*(?=[\\d_.]*[1-9])\\d[\\d_]*(\\.[\\d_]+)?\\s*([bB]|[kKmMgG][iI]?[bB])?\\s*$';

function settingSchema(s: Setting): JsonSchema {
  const d = defaultOf(s.path);
  const common = { description: s.description, ...(d === null ? {} : { default: d }) };
  switch (s.kind.type) {
    case 'int':
      return {
        ...common,
        description: `${s.description} In ${s.kind.unit}.`,
        anyOf: [
          { type: 'integer', minimum: 1 },
          { type: 'string', pattern: POSITIVE_INT_TEXT },
        ],
      };
    case 'bytes':
      return {
        ...common,
        anyOf: [
          { type: 'integer', minimum: 1 },
          { type: 'string', pattern: SIZE_TEXT, examples: ['64MiB', '512 KB', '1GiB'] },
        ],
      };
    case 'choice':
      return { ...common, type: 'string', enum: [...s.kind.values] };
  }
}

/** The JSON Schema (draft-07) of `tidemark.yaml`, generated from the table above. */
export function configJsonSchema(): JsonSchema {
  const properties: Record<string, JsonSchema> = {
    id: {
      type: 'string',
      pattern: CHANGEFEED_ID_PATTERN.source,
      description:
        'Names the changefeed, its publication and its checkpoint row: a-z, 0-9, "_" or "-", 1–41 characters.',
    },
    source: {
      type: 'string',
      pattern: `^(${SOURCE_SCHEMES.join('|')})://|\\$\\{`,
      description:
        'postgres:// URI of the source database; ${VAR} and ${VAR:-default} are read from the environment.',
    },
    sink: {
      type: 'string',
      minLength: 1,
      description:
        'URI of the downstream; the scheme picks the sink (postgres, mysql, sqlite, nats, file); ${VAR} is read from the environment.',
    },
    tables: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: TABLE_ENTRY.source },
      description: 'schema.table, table (= public.table), or glob patterns with * and ? (sales.*).',
    },
    views: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'sql'],
        properties: {
          name: {
            type: 'string',
            pattern: VIEW_NAME.source,
            description: 'The view table written downstream.',
          },
          sql: { type: 'string', pattern: '\\S', description: 'A SELECT over the replicated tables.' },
        },
      },
      description: 'Views maintained incrementally, committed with the tables they read.',
    },
    resnapshot: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['table', 'request'],
        properties: {
          table: {
            type: 'string',
            pattern: TABLE_ENTRY.source,
            description: 'schema.table, table (= public.table) or a pattern of replicated tables.',
          },
          request: {
            type: 'string',
            pattern: '\\S',
            description:
              'Any text naming this request (a date, a ticket): the copy runs once per request; write a new one to copy again.',
          },
        },
      },
      description:
        'Tables to copy again online while the others stream (each into a shadow swapped in whole, in one epoch); taken when the changefeed starts or its configuration is reloaded (SIGHUP).',
    },
  };
  for (const s of SETTINGS) {
    const [group, key] = s.path.split('.') as [string, string | undefined];
    if (key === undefined) {
      properties[group] = settingSchema(s);
      continue;
    }
    const g = (properties[group] ??= { type: 'object', additionalProperties: false, properties: {} });
    (g.properties as Record<string, JsonSchema>)[key] = settingSchema(s);
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'tidemark.yaml',
    description:
      'Changefeeds of Tidemark: a PostgreSQL source, the tables and views it replicates, one sink.',
    type: 'object',
    additionalProperties: false,
    required: ['changefeeds'],
    properties: {
      changefeeds: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          additionalProperties: false,
          required: [...REQUIRED_KEYS],
          properties,
        },
      },
    },
  };
}

/** The schema as `tidemark.schema.json` holds it (prettier's layout of JSON: two spaces). */
export function configSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
