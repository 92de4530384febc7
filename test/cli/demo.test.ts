/**
 * What a newcomer sees from `npm start` (= `tidemark demo`), run as a user runs it (issue 10,
 * item 21): the dashboard's address, a view committed with its tables and a `psql` line that
 * shows it — pasted into a shell here, exactly as printed.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/pg-cluster.ts';

const PSQL_DIR = '/usr/lib/postgresql/15/bin';

async function waitFor<T>(
  what: string,
  probe: () => T | undefined,
  output: () => string,
  alive: () => boolean,
): Promise<T> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline || !alive()) throw new Error(`no ${what} in:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('tidemark demo', () => {
  it('shows the dashboard and a psql line whose view always equals its tables', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-demo-'));
    chmodSync(dir, 0o755); // as root, the demo's PostgreSQL runs as another user
    const port = await freePort(Number(process.env.TIDEMARK_TEST_PG_PORT ?? 54329) + 70);
    const child = spawn(
      process.execPath,
      [
        'bin/tidemark.js',
        'demo',
        '--data-dir',
        dir,
        '--port',
        String(port),
        '--addr',
        '127.0.0.1:0',
        '--rate',
        '100',
      ],
      {
        cwd: process.cwd(),
        env: { ...process.env, TIDEMARK_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    onTestFinished(async () => {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    });
    const both = () => `${out}\n--- stderr ---\n${err}`;
    const alive = () => child.exitCode === null;

    const dashboard = await waitFor(
      'dashboard link',
      () => /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)\S*/.exec(out) ?? undefined,
      both,
      alive,
    );
    const psqlLine = await waitFor('psql line', () => /^\s*(psql .+)$/m.exec(out)?.[1], both, alive);
    await waitFor('streaming', () => (/demo\s+streaming/.test(out) ? true : undefined), both, alive);

    // The dashboard is served and shows the demo changefeed with its view.
    const page = await fetch(dashboard[1] ?? '');
    expect(page.status).toBe(200);
    const feeds = (await (await fetch(`${dashboard[1]}api/v1/changefeeds`)).json()) as {
      changefeeds: { id: string; config: { views: { name: string }[] } }[];
    };
    expect(feeds.changefeeds.map((f) => f.id)).toEqual(['demo']);
    expect(feeds.changefeeds[0]?.config.views.map((v) => v.name)).toEqual(['revenue_by_status']);

    // Pasted into a shell, the printed line works, and the view equals the same aggregate over
    // the replicated table in every snapshot, while the workload writes.
    for (let i = 0; i < 3; i++) {
      const text = execFileSync('sh', ['-c', psqlLine], {
        env: { ...process.env, PATH: `${PSQL_DIR}:${process.env.PATH ?? ''}` },
        encoding: 'utf8',
      });
      const rows = text
        .split('\n')
        .filter((l) => /^\s*(new|paid|shipped|cancelled)\s*\|/.test(l))
        .map((l) => l.split('|').map((c) => c.trim()));
      expect(rows.length, text).toBeGreaterThan(0);
      for (const [, viewOrders, tableOrders, viewRevenue, tableRevenue, same] of rows) {
        expect(viewOrders, text).toBe(tableOrders);
        expect(viewRevenue, text).toBe(tableRevenue);
        expect(same, text).toBe('t');
      }
      await new Promise((r) => setTimeout(r, 300));
    }

    // Piped, logs are JSON lines on stderr and nothing else is mixed into them.
    const logLines = err.split('\n').filter((l) => l.trim() !== '');
    expect(logLines.length).toBeGreaterThan(0);
    for (const l of logLines) expect(() => JSON.parse(l), l).not.toThrow();

    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });
});
