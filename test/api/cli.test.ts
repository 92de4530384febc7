import { describe, expect, it, onTestFinished } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshDatabase } from '../support/db.ts';
import { runCli, type CliProcess } from '../support/cli-process.ts';
import { seedItems, tempDataDir, testPort, waitForFeed } from './server-harness.ts';

const PASSWORD = 'tidemark-test-pw';

/** Runs one `tidemark …` to its end: exit code and everything it printed. */
async function tidemark(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | string; out: string }> {
  const p = runCli(args, { env });
  const code = await p.exited;
  return { code, out: p.output() };
}

async function waitForOutput(p: CliProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = pattern.exec(p.output());
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('tidemark changefeed … against a live tidemark server', () => {
  it('creates, lists, queries, pauses, resumes, updates and removes, with trustworthy exit codes', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    const dst2 = await freshDatabase('dst2');
    await seedItems(src);
    await src.query(`CREATE TABLE more (k text PRIMARY KEY)`);
    const dataDir = tempDataDir();
    const addr = `127.0.0.1:${testPort(3, 0)}`;
    const server = runCli(['server', '--addr', addr, '--data-dir', dataDir]);
    onTestFinished(async () => {
      server.child.kill('SIGTERM');
      await server.exited;
    });
    await waitForOutput(server, /listening on (http:\/\/\S+)/);
    const url = `http://${addr}`;
    const s = ['--server', url];

    const created = await tidemark([
      'changefeed',
      'create',
      ...s,
      '--id',
      'cli-feed',
      '--source',
      src.url,
      '--sink',
      dst.url,
      '--tables',
      'public.items,public.more',
    ]);
    expect(created.out).toContain('created changefeed cli-feed');
    expect(created.code).toBe(0);
    // The CLI above found the token by itself (no --token-file): the one the server created in
    // its data dir on first start, printed once.
    const token = readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
    expect(server.output()).toContain(`API token created in ${join(dataDir, 'api-token')}`);
    expect(server.output().split(token).length - 1).toBe(1);
    const link = await tidemark(['dashboard', ...s]);
    expect(link.out.trim()).toBe(`${url}/#token=${token}`);
    await waitForFeed(url, 'cli-feed', (f) => f.status.phase === 'streaming');

    const yamlFile = join(dataDir, 'one.yaml');
    writeFileSync(
      yamlFile,
      // ${VAR} in a connection field is substituted by the CLI from its own environment.
      `changefeeds:\n  - id: from-yaml\n    source: ${src.url.replace(PASSWORD, '${CLI_TEST_PW}')}\n    sink: ${dst2.url}\n    tables: [items]\n    epoch: { intervalMs: 50 }\n`,
    );
    const fromYaml = await tidemark(['changefeed', 'create', ...s, '--config', yamlFile, '--paused'], {
      CLI_TEST_PW: PASSWORD,
    });
    expect(fromYaml.code, fromYaml.out).toBe(0);

    const list = await tidemark(['changefeed', 'list', ...s]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^ID\s+STATE\s+PHASE/m);
    expect(list.out).toMatch(/^cli-feed\s+running\s+streaming/m);
    expect(list.out).toMatch(/^from-yaml\s+paused\s+paused/m);

    const json = await tidemark(['changefeed', 'list', ...s, '--json']);
    expect(json.code).toBe(0);
    const feeds = JSON.parse(json.out) as { id: string; config: { source: string } }[];
    expect(feeds.map((f) => f.id)).toEqual(['cli-feed', 'from-yaml']);

    const query = await tidemark(['changefeed', 'query', ...s, '--id', 'cli-feed']);
    expect(query.code).toBe(0);
    expect(query.out).toMatch(/checkpoint:\s+[0-9A-F]+\/[0-9A-F]+/);
    for (const out of [created.out, list.out, json.out, query.out]) expect(out).not.toContain(PASSWORD);

    // A table copied again online while the changefeed runs; a name that selects nothing is refused.
    const again = await tidemark(['changefeed', 'resnapshot', ...s, '--id', 'cli-feed', '--table', 'items']);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain('copying public.items again');
    await waitForFeed(url, 'cli-feed', (f) =>
      (f.status.tables ?? []).some((t) => t.name === 'public.items' && t.phase === 'streaming'),
    );
    const refusedCopy = await tidemark([
      'changefeed',
      'resnapshot',
      ...s,
      '--id',
      'cli-feed',
      '--table',
      'nosuch',
    ]);
    expect(refusedCopy.code, refusedCopy.out).toBe(2);
    expect(refusedCopy.out).toContain('RESNAPSHOT_REFUSED');
    expect(refusedCopy.out).toContain('nosuch: no table of changefeed cli-feed');
    expect((await tidemark(['changefeed', 'pause', ...s, '--id', 'cli-feed'])).code).toBe(0);
    expect((await tidemark(['changefeed', 'query', ...s, '--id', 'cli-feed'])).out).toMatch(
      /state:\s+paused/,
    );
    expect((await tidemark(['changefeed', 'resume', ...s, '--id', 'from-yaml'])).code).toBe(0);
    await waitForFeed(url, 'from-yaml', (f) => f.status.phase === 'streaming');
    const updated = await tidemark([
      'changefeed',
      'update',
      ...s,
      '--id',
      'from-yaml',
      '--tables',
      'public.items,public.more',
    ]);
    expect(updated.code).toBe(0);

    // Exit codes: 2 usage and validation, 3 not found, 1 server unreachable.
    expect((await tidemark(['changefeed', 'query', ...s, '--id', 'nope'])).code).toBe(3);
    expect((await tidemark(['changefeed', 'pause', ...s])).code).toBe(2);
    expect((await tidemark(['changefeed', 'frobnicate', ...s])).code).toBe(2);
    const invalid = await tidemark([
      'changefeed',
      'create',
      ...s,
      '--id',
      'BAD ID',
      '--source',
      src.url,
      '--sink',
      dst.url,
      '--tables',
      'items',
    ]);
    expect(invalid.code).toBe(2);
    expect(invalid.out).toContain('id:');
    expect(invalid.out).not.toContain(PASSWORD);
    expect(
      (
        await tidemark([
          'changefeed',
          'create',
          ...s,
          '--id',
          'cli-feed',
          '--source',
          src.url,
          '--sink',
          dst.url,
          '--tables',
          'items',
        ])
      ).code,
    ).toBe(2);
    expect(
      (await tidemark(['changefeed', 'list', '--server', `http://127.0.0.1:${testPort(3, 9)}`])).code,
    ).toBe(1);

    const removed = await tidemark(['changefeed', 'remove', ...s, '--id', 'cli-feed', '--drop-slot']);
    expect(removed.code).toBe(0);
    // Its publication goes; the source's shared slot stays for from-yaml, still registered on it.
    expect(
      (await src.query(`SELECT 1 FROM pg_publication WHERE pubname = 'tidemark_cli_feed'`)).rowCount,
    ).toBe(0);
    expect(
      (await src.query(`SELECT 1 FROM pg_replication_slots WHERE database = current_database()`)).rowCount,
    ).toBe(1);
    expect((await tidemark(['changefeed', 'remove', ...s, '--id', 'cli-feed'])).code).toBe(3);
    expect(server.output()).not.toContain(PASSWORD);
  });
});
