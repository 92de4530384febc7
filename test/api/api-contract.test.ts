import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { apiRoutes } from '../../src/api/api-server.ts';
import type { OPENAPI_DOCUMENT } from '../../src/api/openapi.ts';
import type { ChangefeedView } from '../../src/server/changefeed-manager.ts';
import { runServer } from '../../src/server/run-server.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import {
  definition,
  http,
  LogCapture,
  seedItems,
  startTestServer,
  tempDataDir,
  testPort,
  waitForFeed,
} from './server-harness.ts';

const PASSWORD = 'tidemark-test-pw';

describe('HTTP API contract', () => {
  it('documents every route in /api/openapi.json', async () => {
    const server = await startTestServer({ port: testPort(0, 0) });
    const doc = (await http('GET', `${server.url}/api/openapi.json`)).json() as typeof OPENAPI_DOCUMENT;
    expect(doc.openapi).toMatch(/^3\./);
    const paths = doc.paths as Record<string, Record<string, unknown>>;
    for (const r of apiRoutes(server.manager, () => true)) {
      expect(paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined();
    }
    expect((await http('GET', `${server.url}/healthz`)).status).toBe(200);
    expect((await http('GET', `${server.url}/readyz`)).status).toBe(200);
  });

  it('creates, lists, pauses, resumes and removes a changefeed; secrets never leave', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await seedItems(src);
    const logs = new LogCapture();
    const server = await startTestServer({ port: testPort(0, 1), logs });
    const base = `${server.url}/api/v1/changefeeds`;

    const created = await http('POST', base, { body: definition('orders', src, dst) });
    expect(created.status).toBe(201);
    const running = await waitForFeed(server.url, 'orders', (f) => f.status.phase === 'streaming');
    expect(running.state).toBe('running');
    expect(running.status.checkpoint).not.toBeNull();
    expect(running.config?.source).toContain(':***@');

    const list = await http('GET', base);
    expect((list.json() as { changefeeds: ChangefeedView[] }).changefeeds.map((f) => f.id)).toEqual([
      'orders',
    ]);
    for (const text of [created.text, list.text, (await http('GET', `${base}/orders`)).text]) {
      expect(text).not.toContain(PASSWORD);
    }

    const paused = await http('POST', `${base}/orders/pause`);
    expect(paused.status).toBe(200);
    expect((paused.json() as ChangefeedView).state).toBe('paused');
    expect((paused.json() as ChangefeedView).status.phase).toBe('paused');
    await src.query(`INSERT INTO items VALUES (1000, 'while paused')`);
    expect((await http('POST', `${base}/orders/resume`)).status).toBe(200);
    await waitForFeed(server.url, 'orders', (f) => f.status.phase === 'streaming');
    await waitForRow(dst, 1000);

    const removed = await http('DELETE', `${base}/orders?dropSlot=true`);
    expect(removed.status).toBe(200);
    // The source's shared slot goes with its last changefeed.
    const slots = await src.query(
      `SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`,
    );
    expect(slots.rowCount).toBe(0);
    const pubs = await src.query(`SELECT pubname FROM pg_publication WHERE pubname = 'tidemark_orders'`);
    expect(pubs.rowCount).toBe(0);
    expect((await http('GET', `${base}/orders`)).status).toBe(404);
    expect(logs.text).not.toContain(PASSWORD);
  });

  it('answers bad requests with 4xx and the key path', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await seedItems(src);
    const server = await startTestServer({ port: testPort(0, 2) });
    const base = `${server.url}/api/v1/changefeeds`;
    const errorOf = (r: { json: () => unknown }) =>
      (r.json() as { error: { code: string; detail?: string; hint: string } }).error;

    const notJson = await http('POST', base, { rawBody: '{"id": ' });
    expect(notJson.status).toBe(400);
    expect(errorOf(notJson).code).toBe('API_BAD_REQUEST');

    const invalid = await http('POST', base, {
      body: {
        id: 'Bad Id',
        source: 'mongodb://x/y',
        sink: dst.url,
        tables: [],
        epoch: { intervalMs: -5 },
        extra: 1,
      },
    });
    expect(invalid.status).toBe(400);
    const detail = errorOf(invalid).detail ?? '';
    for (const path of ['id:', 'source:', 'tables:', 'epoch.intervalMs:', 'extra:'])
      expect(detail).toContain(path);
    expect(invalid.text).not.toContain(PASSWORD);

    expect((await http('POST', base, { body: [1, 2] })).status).toBe(400);
    expect((await http('POST', base, { body: definition('a', src, dst) })).status).toBe(201);
    const dup = await http('POST', base, { body: definition('a', src, dst) });
    expect(dup.status).toBe(409);
    expect(errorOf(dup).code).toBe('API_CONFLICT');
    expect((await http('PATCH', `${base}/a`, { body: { id: 'b' } })).status).toBe(400);
    expect((await http('PATCH', `${base}/a`, { body: { epoch: { intervalMs: 'soon' } } })).status).toBe(400);
    expect((await http('GET', `${base}/nope`)).status).toBe(404);
    expect((await http('POST', `${base}/nope/pause`)).status).toBe(404);
    expect((await http('PUT', `${base}/a`)).status).toBe(400);
    expect((await http('GET', `${base}/a/samples?sinceMs=yesterday`)).status).toBe(400);
    expect((await http('GET', `${server.url}/api/v2/nothing`)).status).toBe(404);

    // A PATCH that sends the masked URI back keeps the real one; the feed restarts and streams.
    const masked = (await http('GET', `${base}/a`)).json() as ChangefeedView;
    const patched = await http('PATCH', `${base}/a`, {
      body: { source: masked.config?.source, epoch: { intervalMs: 80 } },
    });
    expect(patched.status).toBe(200);
    expect((patched.json() as ChangefeedView).config?.epoch.intervalMs).toBe(80);
    await waitForFeed(server.url, 'a', (f) => f.status.phase === 'streaming');
  });

  it('runs the preflight before a create: refuses with each failed check and its fix (422)', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await src.query(`CREATE TABLE nokey (a int)`);
    await seedItems(src);
    const server = await startTestServer({ port: 0 });
    const base = `${server.url}/api/v1/changefeeds`;
    const bad = definition('nokey', src, dst, ['public.nokey']);
    const report = await http('POST', `${server.url}/api/v1/preflight`, { body: bad });
    expect(report.status).toBe(200);
    const r = report.json() as { ok: boolean; checks: { id: string; status: string; fix?: string }[] };
    expect(r.ok).toBe(false);
    expect(r.checks.find((c) => c.id === 'source.table')).toMatchObject({ status: 'fail' });
    const refused = await http('POST', base, { body: bad });
    expect(refused.status).toBe(422);
    const e = (refused.json() as { error: { code: string; detail: string } }).error;
    expect(e.code).toBe('PREFLIGHT_FAILED');
    expect(e.detail).toMatch(/source\.table: public\.nokey: no primary key.* — fix: .*REPLICA IDENTITY FULL/);
    expect((await http('GET', `${base}/nokey`)).status).toBe(404);
    const good = await http('POST', `${server.url}/api/v1/preflight`, { body: definition('ok', src, dst) });
    expect((good.json() as { ok: boolean }).ok).toBe(true);
    expect(good.text).not.toContain('tidemark-test-pw');
  });

  it('with an operator-chosen token, requires it on every route but /healthz and /readyz', async () => {
    const token = 'a-test-token-0123456789';
    const server = await startTestServer({ port: testPort(0, 3), token });
    const base = `${server.url}/api/v1/changefeeds`;
    expect((await http('GET', `${server.url}/healthz`, { token: null })).status).toBe(200);
    // A process supervisor's probe needs no secret.
    expect((await http('GET', `${server.url}/readyz`, { token: null })).status).toBe(200);
    for (const [method, path] of [
      ['GET', base],
      ['POST', base],
      ['GET', `${server.url}/metrics`],
      ['GET', `${server.url}/api/openapi.json`],
      ['POST', `${base}/x/pause`],
    ] as const) {
      const r = await http(method, path, { token: null });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect((r.json() as { error: { code: string } }).error.code).toBe('API_UNAUTHORIZED');
      expect((await http(method, path, { token: 'wrong-token-0123456789' })).status).toBe(401);
    }
    expect((await http('GET', base, { token })).status).toBe(200);
    expect((await http('GET', `${server.url}/metrics`, { token })).status).toBe(200);
  });

  it('refuses to listen beyond loopback without a token', async () => {
    await expect(
      runServer({
        address: { host: '0.0.0.0', port: testPort(0, 4) },
        dataDir: tempDataDir(),
        logger: silentLogger,
      }),
    ).rejects.toThrow(/SERVER_TOKEN_REQUIRED/);
  });
});

async function waitForRow(
  dst: { query: (sql: string, p?: unknown[]) => Promise<{ rowCount: number | null }> },
  id: number,
) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await dst.query('SELECT 1 FROM items WHERE id = $1', [id]).catch(() => ({ rowCount: 0 }));
    if (r.rowCount === 1) return;
    if (Date.now() > deadline) throw new Error(`row ${id} never reached the sink`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
