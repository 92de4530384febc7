/**
 * Helpers for server tests: an in-process `tidemark server` on a fresh data dir, a source with
 * a table and a writer, and bounded waits on the API (polling, never a timed assertion).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { createLogger, type LogStream } from '../../src/runtime/logger.ts';
import { runServer, type TidemarkServer } from '../../src/server/run-server.ts';
import type { ChangefeedView } from '../../src/server/changefeed-manager.ts';
import type { TestDatabase } from '../support/db.ts';

/** Ports 18300–18399 belong to these tests; each test file takes its own block of ten. */
export function testPort(block: number, i: number): number {
  return 18300 + block * 10 + i;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'tidemark-server-'));
}

/** Everything the server logged, for secret checks. */
export class LogCapture implements LogStream {
  text = '';
  write(t: string): boolean {
    this.text += t;
    return true;
  }
}

/** The token of each test server by origin, so `http()` signs mutating calls like the CLI does. */
const tokens = new Map<string, string>();

export async function startTestServer(opts: {
  port: number;
  dataDir?: string;
  /** A fixed token; otherwise `auth` decides (default `auto`: created in the data dir). */
  token?: string;
  auth?: 'auto' | 'none';
  onTokenCreated?: (token: string) => void;
  logs?: LogCapture;
  /** The server's environment (default: the test process's). */
  env?: Record<string, string>;
}): Promise<TidemarkServer & { dataDir: string; token: string | undefined }> {
  const dataDir = opts.dataDir ?? tempDataDir();
  const server = await runServer({
    address: { host: '127.0.0.1', port: opts.port },
    dataDir,
    logger: createLogger({ stream: opts.logs ?? new LogCapture(), format: 'json', level: 'debug' }),
    sampleIntervalMs: 200,
    walPollIntervalMs: 300,
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.auth ? { auth: opts.auth } : {}),
    ...(opts.onTokenCreated ? { onTokenCreated: opts.onTokenCreated } : {}),
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  const token = server.token;
  if (token) tokens.set(new URL(server.url).origin, token);
  let closed = false;
  onTestFinished(async () => {
    if (!closed) await server.close();
  });
  return {
    dataDir,
    token,
    url: server.url,
    manager: server.manager,
    async close() {
      closed = true;
      await server.close();
    },
  };
}

export async function http(
  method: string,
  url: string,
  options: { body?: unknown; rawBody?: string; token?: string | null } = {},
): Promise<{ status: number; text: string; json: () => unknown }> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? tokens.get(new URL(url).origin) : options.token;
  if (token) headers.authorization = `Bearer ${token}`;
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (body !== undefined || method !== 'GET') headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as unknown };
}

/** Polls GET /api/v1/changefeeds/{id} until `ok` holds (bounded). */
export async function waitForFeed(
  serverUrl: string,
  id: string,
  ok: (f: ChangefeedView) => boolean,
  options: { token?: string; timeoutMs?: number } = {},
): Promise<ChangefeedView> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let last: unknown;
  for (;;) {
    const r = await http(
      'GET',
      `${serverUrl}/api/v1/changefeeds/${id}`,
      options.token ? { token: options.token } : {},
    );
    last = r.status === 200 ? r.json() : r.text;
    if (r.status === 200 && ok(last as ChangefeedView)) return last as ChangefeedView;
    if (Date.now() > deadline)
      throw new Error(`changefeed ${id} did not reach the expected state: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A source table `items` with some rows. */
export async function seedItems(src: TestDatabase, rows = 100): Promise<void> {
  await src.query(`CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)`);
  await src.query(`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, $1::int) g`, [rows]);
}

export function definition(id: string, src: TestDatabase, dst: TestDatabase, tables = ['public.items']) {
  return {
    id,
    source: src.url,
    sink: dst.url,
    tables,
    heartbeatIntervalMs: 100,
    epoch: { intervalMs: 50 },
    snapshot: { parallelism: 1, chunkRows: 1000 },
  };
}
