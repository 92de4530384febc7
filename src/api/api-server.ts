/**
 * The HTTP face of `tidemark server` (node:http, JSON): the changefeed API under /api/v1, health
 * and readiness, Prometheus metrics, the OpenAPI document and the dashboard's static files.
 *
 * Every request first passes `guardRequest` (Host, Origin, JSON content type: see
 * request-guard.ts). Auth: mutating calls always carry `Authorization: Bearer <token>` (unless the
 * operator opted out with `--no-auth`, loopback only); with `protectReads` every other route but
 * /healthz, /readyz and the dashboard's static files (code, no data) needs it too.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ChangefeedManager } from '../server/changefeed-manager.ts';
import { readJson, sendError, sendJson, sendText } from './http-util.ts';
import { isLoopback, type ListenAddress } from './listen-address.ts';
import { OPENAPI_DOCUMENT } from './openapi.ts';
import { guardRequest, MUTATING_METHODS } from './request-guard.ts';
import { serveStatic } from './static-files.ts';

export interface ApiServerOptions {
  manager: ChangefeedManager;
  logger: Logger;
  address: ListenAddress;
  /**
   * The bearer token; null only when the operator opted out (`--no-auth`), which is refused
   * beyond loopback.
   */
  token: string | null;
  /** Reads need the token too; default: when not listening on loopback. */
  protectReads?: boolean;
  /** Host names besides loopback ones the server answers to (a reverse proxy's name). */
  allowedHosts?: readonly string[];
  /** The built dashboard (`dist/ui`); the dashboard routes answer 404 without it. */
  uiDir?: string;
  /** False until the manager has restored the stored changefeeds: /readyz answers 503. */
  isReady: () => boolean;
}

type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: { id: string; query: URLSearchParams },
) => Promise<void>;

interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** OpenAPI path template. */
  path: string;
  handler: Handler;
}

/** Every API route; `openapi.json` documents each (checked by a test). */
export function apiRoutes(m: ChangefeedManager, isReady: () => boolean): Route[] {
  return [
    {
      method: 'GET',
      path: '/healthz',
      // Alive: the process answers and its metadata store can be read.
      handler: async (_q, res) => {
        m.list();
        sendJson(res, 200, { status: 'ok' });
      },
    },
    {
      method: 'GET',
      path: '/readyz',
      handler: async (_q, res) => {
        if (!isReady()) return sendJson(res, 503, { status: 'starting', changefeeds: [] });
        const r = m.readiness();
        sendJson(res, r.ready ? 200 : 503, {
          status: r.ready ? 'ready' : 'not ready',
          changefeeds: r.changefeeds,
        });
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async (_q, res) => {
        const { text, contentType } = await m.metrics.render();
        sendText(res, 200, contentType, text);
      },
    },
    {
      method: 'GET',
      path: '/api/openapi.json',
      handler: async (_q, res) => sendJson(res, 200, OPENAPI_DOCUMENT),
    },
    {
      method: 'GET',
      path: '/api/v1/changefeeds',
      handler: async (_q, res) => sendJson(res, 200, { changefeeds: m.list() }),
    },
    {
      method: 'POST',
      path: '/api/v1/changefeeds',
      handler: async (req, res, { query }) =>
        sendJson(
          res,
          201,
          await m.create(await readJson(req), {
            paused: query.get('paused') === 'true',
            skipChecks: query.get('skipChecks') === 'true',
          }),
        ),
    },
    {
      method: 'POST',
      path: '/api/v1/preflight',
      handler: async (req, res) => sendJson(res, 200, await m.preflight(await readJson(req))),
    },
    {
      method: 'GET',
      path: '/api/v1/changefeeds/{id}',
      handler: async (_q, res, { id }) => sendJson(res, 200, m.get(id)),
    },
    {
      method: 'PATCH',
      path: '/api/v1/changefeeds/{id}',
      handler: async (req, res, { id }) => sendJson(res, 200, await m.update(id, await readJson(req))),
    },
    {
      method: 'DELETE',
      path: '/api/v1/changefeeds/{id}',
      handler: async (_q, res, { id, query }) => {
        const dropSlot = query.get('dropSlot') === 'true';
        await m.remove(id, { dropSlot });
        sendJson(res, 200, { id, removed: true, droppedSlot: dropSlot });
      },
    },
    {
      method: 'POST',
      path: '/api/v1/changefeeds/{id}/pause',
      handler: async (_q, res, { id }) => sendJson(res, 200, await m.pause(id)),
    },
    {
      method: 'POST',
      path: '/api/v1/changefeeds/{id}/resnapshot',
      handler: async (req, res, { id }) => sendJson(res, 200, await m.resnapshot(id, await readJson(req))),
    },
    {
      method: 'POST',
      path: '/api/v1/changefeeds/{id}/resume',
      handler: async (_q, res, { id }) => sendJson(res, 200, m.resume(id)),
    },
    {
      method: 'GET',
      path: '/api/v1/changefeeds/{id}/samples',
      handler: async (_q, res, { id, query }) => {
        const since = query.get('sinceMs');
        if (since !== null && !/^\d+$/.test(since)) {
          throw new TidemarkError('API_BAD_REQUEST', {
            detail: `sinceMs: expected milliseconds since the Unix epoch, got ${JSON.stringify(since)}`,
          });
        }
        sendJson(res, 200, { samples: m.samples(id, since === null ? undefined : Number(since)) });
      },
    },
  ];
}

export interface RunningApiServer {
  readonly server: Server;
  /** `http://host:port` as bound (the real port when 0 was asked). */
  readonly url: string;
  /** Stops accepting requests and closes open connections. */
  close(): Promise<void>;
}

/** Listens; throws SERVER_TOKEN_REQUIRED before binding a non-loopback address without a token. */
export async function startApiServer(opts: ApiServerOptions): Promise<RunningApiServer> {
  const loopback = isLoopback(opts.address.host);
  if (!loopback && !opts.token) {
    throw new TidemarkError('SERVER_TOKEN_REQUIRED', {
      detail: `--addr ${opts.address.host}:${opts.address.port}`,
    });
  }
  const routes = apiRoutes(opts.manager, opts.isReady);
  const expected = opts.token === null ? undefined : Buffer.from(`Bearer ${opts.token}`);
  const protectReads = opts.protectReads ?? !loopback;
  const guard = { loopback, allowedHosts: (opts.allowedHosts ?? []).map((h) => h.toLowerCase()) };
  const log = opts.logger.child({ component: 'api' });

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      const e =
        err instanceof TidemarkError
          ? err
          : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
      if (e.code === 'INTERNAL') log.error('request failed', { method: req.method, path: req.url, error: e });
      else if (e.code === 'API_FORBIDDEN')
        log.warn('request refused', { method: req.method, path: req.url, detail: e.detail });
      if (!res.headersSent) sendError(res, e);
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    guardRequest(method, req.headers, guard);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    log.debug('request', { method, path });
    const matched = match(routes, method, path);
    const isStatic = !matched && !path.startsWith('/api/') && method === 'GET';
    const open = path === '/healthz' || path === '/readyz' || isStatic;
    const needsToken = MUTATING_METHODS.has(method) || (protectReads && !open);
    if (expected && needsToken) {
      const got = Buffer.from(req.headers.authorization ?? '');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        throw new TidemarkError('API_UNAUTHORIZED');
      }
    }
    if (matched === 'method') {
      throw new TidemarkError('API_BAD_REQUEST', { detail: `${method} is not allowed on ${path}` });
    }
    if (matched) return matched.route.handler(req, res, { id: matched.id, query: url.searchParams });
    if (isStatic && opts.uiDir && (await serveStatic(res, opts.uiDir, path))) return;
    throw new TidemarkError('API_NOT_FOUND', { detail: `no route ${method} ${path}` });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new TidemarkError('SERVER_LISTEN_FAILED', {
          detail: `${opts.address.host}:${opts.address.port}: ${err.message}`,
          cause: err,
        }),
      ),
    );
    server.listen(opts.address.port, opts.address.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    server,
    url: `http://${host}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function match(
  routes: Route[],
  method: string,
  path: string,
): { route: Route; id: string } | 'method' | undefined {
  let pathMatched = false;
  for (const route of routes) {
    const id = matchPath(route.path, path);
    if (id === undefined) continue;
    pathMatched = true;
    if (route.method === method) return { route, id };
  }
  return pathMatched ? 'method' : undefined;
}

/** The `{id}` of a template match ('' when there is none), undefined when the path does not match. */
function matchPath(template: string, path: string): string | undefined {
  const t = template.split('/');
  const p = path.split('/');
  if (t.length !== p.length) return undefined;
  let id = '';
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '{id}') {
      try {
        id = decodeURIComponent(p[i] ?? '');
      } catch {
        return undefined;
      }
    } else if (t[i] !== p[i]) return undefined;
  }
  return id;
}
