import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';

/** The built CLI (`bin/tidemark.js` → dist/), as a user runs it, with stdout and stderr apart. */
interface Run {
  readonly code: Promise<number | null>;
  readonly stdout: () => string;
  readonly stderr: () => string;
  signal(s: NodeJS.Signals): void;
}

function tidemark(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['bin/tidemark.js', ...args], {
    cwd: process.cwd(),
    env: { ...process.env, TIDEMARK_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return {
    code: new Promise((resolve) => child.on('close', (c) => resolve(c))),
    stdout: () => out,
    stderr: () => err,
    signal: (s) => child.kill(s),
  };
}

function configFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-cli-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'tidemark.yaml');
  writeFileSync(file, text);
  return file;
}

/** The source URI with its password replaced by a variable reference, and that variable. */
function withPasswordVar(url: string): { uri: string; env: Record<string, string> } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = 'PW_PLACEHOLDER';
  return { uri: u.toString().replace('PW_PLACEHOLDER', '${TM_TEST_PW}'), env: { TM_TEST_PW: password } };
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

async function countRows(db: TestDatabase, table: string): Promise<number> {
  try {
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
    return Number(rows[0]?.n);
  } catch {
    return -1; // not created yet
  }
}

describe('tidemark CLI', () => {
  it('prints help and version', async () => {
    const help = tidemark(['--help']);
    expect(await help.code).toBe(0);
    expect(help.stdout()).toContain('tidemark start --config FILE');
    const version = tidemark(['--version']);
    expect(await version.code).toBe(0);
    expect(version.stdout()).toMatch(/^tidemark \d+\.\d+\.\d+/);
  });

  it('exits 2 with file:line for a bad config', async () => {
    const file = configFile(
      'changefeeds:\n  - id: x\n    source: postgres://u@127.0.0.1/db\n    sink: postgres://h/db\n    tables: [t]\n    epoch:\n      intervalMs: fast\n',
    );
    const run = tidemark(['start', '--config', file]);
    expect(await run.code).toBe(2);
    expect(run.stderr()).toContain(
      `${file}:7: changefeeds[0].epoch.intervalMs: expected a positive integer (milliseconds), got "fast"`,
    );
    expect(run.stderr()).toContain('hint:');
  });

  it('exits 2 for an unknown command and a missing file', async () => {
    const bad = tidemark(['strat']);
    expect(await bad.code).toBe(2);
    expect(bad.stderr()).toContain('unknown command "strat"');
    const missing = tidemark(['status', '--config', '/nonexistent/tidemark.yaml']);
    expect(await missing.code).toBe(2);
    expect(missing.stderr()).toContain('CONFIG_NOT_FOUND');
  });

  it('runs a changefeed until SIGTERM, then status reads its checkpoint', async () => {
    const src = await freshDatabase('cli_src');
    const dst = await freshDatabase('cli_dst');
    await src.query('CREATE TABLE items (id int PRIMARY KEY, label text)');
    await src.query("INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i");
    const { uri, env } = withPasswordVar(src.url);
    const file = configFile(
      `changefeeds:\n  - id: cli-feed\n    source: ${uri}\n    sink: ${dst.url}\n    tables: [public.items]\n`,
    );

    const before = tidemark(['status', '--config', file], env);
    expect(await before.code).toBe(0);
    expect(before.stdout()).toMatch(/^cli-feed {2}starting /);

    const run = tidemark(['start', '--config', file], env);
    await until('the snapshot in the sink', async () => (await countRows(dst, 'public.items')) === 100);
    await src.query("INSERT INTO items SELECT i, 'item ' || i FROM generate_series(101, 150) i");
    await until('the streamed rows in the sink', async () => (await countRows(dst, 'public.items')) === 150);
    run.signal('SIGTERM');
    expect(await run.code).toBe(0);
    expect(run.stderr()).toContain('"msg":"stopped"');
    expect(run.stdout()).toContain('cli-feed  stopped');

    const after = tidemark(['status', '--config', file, '--json'], env);
    expect(await after.code).toBe(0);
    const [status] = JSON.parse(after.stdout()) as { id: string; phase: string; checkpoint: string | null }[];
    expect(status?.id).toBe('cli-feed');
    expect(status?.phase).toBe('stopped');
    expect(status?.checkpoint).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(run.stderr() + run.stdout() + after.stdout()).not.toContain(env.TM_TEST_PW);
  });

  it('status exits 1 and shows the error when the source is unreachable', async () => {
    const dst = await freshDatabase('cli_dst2');
    const file = configFile(
      `changefeeds:\n  - id: gone\n    source: postgres://u:topsecret@127.0.0.1:1/db\n    sink: ${dst.url}\n    tables: [t]\n`,
    );
    const run = tidemark(['status', '--config', file]);
    expect(await run.code).toBe(1);
    expect(run.stdout()).toContain('gone  failed');
    expect(run.stdout()).toContain('hint:');
    expect(run.stdout()).not.toContain('topsecret');
  });
});
