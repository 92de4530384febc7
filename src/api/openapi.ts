/**
 * The OpenAPI 3.0 document served at /api/openapi.json, written by hand next to the routes in
 * `api-server.ts`; a test checks that every route is documented here.
 */
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });
const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,40}$' },
};
const common = {
  '401': errorResponse('Missing or wrong bearer token (API_UNAUTHORIZED).'),
  '404': errorResponse('No such changefeed (API_NOT_FOUND).'),
  '500': errorResponse('Server or runtime error.'),
};
const feedResponse = (description: string) => ({ description, content: json(ref('Changefeed')) });

export const OPENAPI_DOCUMENT = {
  openapi: '3.0.3',
  info: {
    title: 'Tidemark server API',
    version: '1',
    description:
      'Changefeeds of `tidemark server`. URIs are returned with credentials masked. With a token, every route but /healthz needs `Authorization: Bearer <token>`.',
  },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': {
      get: {
        summary: 'Liveness: the process answers.',
        security: [],
        responses: { '200': { description: 'Alive.', content: json({ type: 'object' }) } },
      },
    },
    '/readyz': {
      get: {
        summary: 'Readiness: stored changefeeds are restored and the API serves.',
        responses: {
          '200': { description: 'Ready.', content: json({ type: 'object' }) },
          '503': { description: 'Still starting.' },
        },
      },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics (text format 0.0.4); see docs/operations.md.',
        responses: {
          '200': { description: 'Exposition.', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
    '/api/openapi.json': {
      get: {
        summary: 'This document.',
        responses: { '200': { description: 'OpenAPI 3 document.', content: json({ type: 'object' }) } },
      },
    },
    '/api/v1/changefeeds': {
      get: {
        summary: 'Lists the changefeeds.',
        responses: {
          '200': {
            description: 'All changefeeds.',
            content: json({
              type: 'object',
              properties: { changefeeds: { type: 'array', items: ref('Changefeed') } },
            }),
          },
          '401': common['401'],
        },
      },
      post: {
        summary:
          'Runs the preflight (tidemark doctor), then creates a changefeed and starts it (or stores it paused with ?paused=true).',
        parameters: [
          { name: 'paused', in: 'query', schema: { type: 'boolean' } },
          { name: 'skipChecks', in: 'query', schema: { type: 'boolean' } },
        ],
        requestBody: { required: true, content: json(ref('ChangefeedDefinition')) },
        responses: {
          '201': feedResponse('Created.'),
          '400': errorResponse('Invalid definition; the detail names each key path (API_BAD_REQUEST).'),
          '401': common['401'],
          '409': errorResponse('The id exists (API_CONFLICT).'),
          '422': errorResponse(
            'A preflight check failed; the detail lists each with its fix (PREFLIGHT_FAILED).',
          ),
        },
      },
    },
    '/api/v1/preflight': {
      post: {
        summary: "The preflight report of a definition (tidemark doctor's checks); creates nothing.",
        requestBody: { required: true, content: json(ref('ChangefeedDefinition')) },
        responses: {
          '200': {
            description: 'ok: safe to start; checks: every check with status ok, warn or fail, and a fix.',
            content: json({
              type: 'object',
              properties: {
                changefeed: { type: 'string' },
                ok: { type: 'boolean' },
                checks: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      id: { type: 'string' },
                      status: { type: 'string', enum: ['ok', 'warn', 'fail'] },
                      detail: { type: 'string' },
                      fix: { type: 'string' },
                    },
                  },
                },
              },
            }),
          },
          '400': errorResponse('Invalid definition (API_BAD_REQUEST).'),
          '401': common['401'],
        },
      },
    },
    '/api/v1/changefeeds/{id}': {
      parameters: [idParam],
      get: {
        summary: 'Definition, state, positions, lag and last error.',
        responses: { '200': feedResponse('The changefeed.'), ...common },
      },
      patch: {
        summary:
          'Changes keys of the definition (objects merged one level deep, null removes a key); a running changefeed restarts from its checkpoint.',
        requestBody: { required: true, content: json(ref('ChangefeedDefinition')) },
        responses: { '200': feedResponse('Updated.'), '400': errorResponse('Invalid change.'), ...common },
      },
      delete: {
        summary:
          'Stops and removes the changefeed; with dropSlot=true also drops its replication slot and publication.',
        parameters: [{ name: 'dropSlot', in: 'query', schema: { type: 'boolean' } }],
        responses: {
          '200': {
            description: 'Removed.',
            content: json({
              type: 'object',
              properties: {
                id: { type: 'string' },
                removed: { type: 'boolean' },
                droppedSlot: { type: 'boolean' },
              },
            }),
          },
          ...common,
        },
      },
    },
    '/api/v1/changefeeds/{id}/pause': {
      parameters: [idParam],
      post: {
        summary: 'Stops the changefeed gracefully and keeps it paused, across restarts.',
        responses: { '200': feedResponse('Paused.'), ...common },
      },
    },
    '/api/v1/changefeeds/{id}/resnapshot': {
      parameters: [idParam],
      post: {
        summary:
          'Copies tables again online while the others stream: each into a shadow that replaces it whole in one epoch. Answers once the copies started; their progress is in the status (tables[].phase, rows, percent).',
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['tables'],
            properties: { tables: { type: 'array', minItems: 1, items: { type: 'string' } } },
          }),
        },
        responses: {
          '200': {
            description: 'Started.',
            content: json({
              type: 'object',
              properties: {
                started: { type: 'array', items: { type: 'string' } },
                alreadyCopying: { type: 'array', items: { type: 'string' } },
              },
            }),
          },
          ...common,
        },
      },
    },
    '/api/v1/changefeeds/{id}/resume': {
      parameters: [idParam],
      post: {
        summary: 'Starts a paused or failed changefeed again, from its sink checkpoint.',
        responses: { '200': feedResponse('Running.'), ...common },
      },
    },
    '/api/v1/changefeeds/{id}/samples': {
      parameters: [idParam, { name: 'sinceMs', in: 'query', schema: { type: 'integer' } }],
      get: {
        summary: 'Lag and throughput samples of the last minutes (one per second, oldest first).',
        responses: {
          '200': {
            description: 'Samples.',
            content: json({
              type: 'object',
              properties: { samples: { type: 'array', items: ref('Sample') } },
            }),
          },
          ...common,
        },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message', 'hint'],
            properties: {
              code: { type: 'string' },
              message: { type: 'string' },
              detail: { type: 'string' },
              hint: { type: 'string' },
            },
          },
        },
      },
      ChangefeedDefinition: {
        type: 'object',
        description:
          'One changefeed in the YAML config form (docs/config-reference.md). The API substitutes no ${VAR}: write the values (credentials are masked in every answer), or let `tidemark changefeed create --config FILE` substitute them from your environment.',
        required: ['id', 'source', 'sink', 'tables'],
        properties: {
          id: { type: 'string' },
          source: { type: 'string', description: 'postgres:// URI' },
          sink: { type: 'string', description: 'URI; the scheme picks the sink' },
          tables: { type: 'array', items: { type: 'string' } },
          views: {
            type: 'array',
            items: { type: 'object', properties: { name: { type: 'string' }, sql: { type: 'string' } } },
          },
          epoch: {
            type: 'object',
            properties: {
              intervalMs: { type: 'integer' },
              maxRows: { type: 'integer' },
              maxBytes: { oneOf: [{ type: 'integer' }, { type: 'string' }] },
            },
          },
          heartbeatIntervalMs: { type: 'integer' },
          snapshot: {
            type: 'object',
            properties: { parallelism: { type: 'integer' }, chunkRows: { type: 'integer' } },
          },
          memoryQuotaBytes: { oneOf: [{ type: 'integer' }, { type: 'string' }] },
        },
      },
      Status: {
        type: 'object',
        properties: {
          phase: {
            type: 'string',
            enum: ['starting', 'snapshot', 'streaming', 'paused', 'stopping', 'stopped', 'failed'],
          },
          rowsPerSec: { type: 'number' },
          snapshotRows: { type: 'integer' },
          epoch: { type: 'integer' },
          resolved: { type: 'string', nullable: true },
          checkpoint: { type: 'string', nullable: true },
          lagMs: { type: 'number', nullable: true },
          lagBytes: { type: 'number', nullable: true, description: 'Source log end − checkpoint.' },
          resolvedLagBytes: {
            type: 'number',
            nullable: true,
            description: 'Source log end − resolved position: what is yet to be read.',
          },
          error: {
            type: 'object',
            nullable: true,
            description: 'The error the changefeed is retrying or failed with.',
            properties: { code: { type: 'string' }, message: { type: 'string' }, hint: { type: 'string' } },
          },
          tables: {
            type: 'array',
            description:
              "The tables replicated (patterns resolved, tables left out not listed) and the views, with the rows this run's snapshot copied into each.",
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                rows: { type: 'integer' },
                phase: {
                  type: 'string',
                  enum: ['copying', 'streaming'],
                  description:
                    'copying: an online copy fills a shadow downstream (readers do not see the table until it is swapped in whole); streaming (or absent): the table follows the stream.',
                },
                copied: { type: 'integer', description: 'Rows the online copy applied so far.' },
                estimated: {
                  type: 'integer',
                  nullable: true,
                  description: "The source's estimate of the table's rows.",
                },
                percent: { type: 'number', nullable: true, description: 'copied / estimated, in percent.' },
                etaSeconds: {
                  type: 'integer',
                  nullable: true,
                  description: "Seconds left at the copy's rate so far.",
                },
              },
            },
          },
          views: {
            type: 'array',
            description:
              "Each view's plan in words, from the tables up to the view, once the changefeed planned its views.",
            items: {
              type: 'object',
              properties: { name: { type: 'string' }, plan: { type: 'array', items: { type: 'string' } } },
            },
          },
          warnings: {
            type: 'array',
            items: { type: 'string' },
            description:
              'What runs degraded or was left out (tables a pattern matched that cannot be replicated, schema changes seen without the DDL capture). Warnings do not affect /readyz.',
          },
        },
      },
      Changefeed: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          state: { type: 'string', enum: ['running', 'paused', 'failed'] },
          config: {
            allOf: [ref('ChangefeedDefinition')],
            nullable: true,
            description: 'With defaults applied and credentials masked.',
          },
          status: ref('Status'),
          lastError: {
            type: 'object',
            nullable: true,
            properties: {
              code: { type: 'string' },
              message: { type: 'string' },
              hint: { type: 'string' },
              at: { type: 'string', format: 'date-time' },
            },
          },
          resolvedLagMs: { type: 'number', nullable: true },
          resolvedLagBytes: { type: 'number', nullable: true },
          retainedWalBytes: { type: 'number', nullable: true },
          withinLagBudget: {
            type: 'boolean',
            nullable: true,
            description:
              'Running, streaming and within lagBudgetMs (what /readyz checks); null when not running.',
          },
          createdAt: { type: 'string', format: 'date-time' },
          updatedAt: { type: 'string', format: 'date-time' },
        },
      },
      Sample: {
        type: 'object',
        properties: {
          tMs: { type: 'integer' },
          lagMs: { type: 'number', nullable: true },
          lagBytes: { type: 'number', nullable: true },
          rowsPerSec: { type: 'number' },
          bytesPerSec: { type: 'number' },
        },
      },
    },
  },
} as const;
