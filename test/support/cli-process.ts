/**
 * Runs the real `tidemark` CLI as a child process — the built one (`bin/tidemark.js` → `dist/`,
 * built by `npm test` before vitest runs), exactly as users run it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { expect, onTestFinished } from 'vitest';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

export interface CliProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
}

export function runCli(args: string[], options: { env?: Record<string, string> } = {}): CliProcess {
  const child = spawn(process.execPath, [join(ROOT, 'bin/tidemark.js'), ...args], {
    cwd: ROOT,
    // One data directory per test (a process locks its data directory): the CLI runs of one test
    // share it, as restarts of one installation do; tests running at once never do.
    env: { ...process.env, TIDEMARK_LOG_LEVEL: 'info', TIDEMARK_DATA_DIR: testDataDir(), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<number | string>((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1)));
  return { child, output: () => out, exited };
}

const dataDirs = new Map<string, string>();

/** The running test's data directory for CLI runs (removed after the test). */
export function testDataDir(): string {
  const key = expect.getState().currentTestName ?? 'outside a test';
  let dir = dataDirs.get(key);
  if (!dir) {
    const made = mkdtempSync(join(tmpdir(), 'tidemark-cli-data-'));
    dataDirs.set(key, made);
    dir = made;
    try {
      onTestFinished(() => {
        dataDirs.delete(key);
        rmSync(made, { recursive: true, force: true });
      });
    } catch {
      // Outside a test (a fixture script): the directory stays for the process.
    }
  }
  return dir;
}

/** Writes a config file for the given YAML text and returns its path. */
export function writeConfig(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-cfg-'));
  const path = join(dir, 'tidemark.yaml');
  writeFileSync(path, yaml);
  return path;
}

/**
 * Starts `tidemark start --config <config>` `kills` times and SIGKILLs it each time, 1–3 s in
 * (seeded). Every run after the first is killed only once each of `checkpoints()` moved past its
 * epoch before that run started, so that the kills land mid-stream; the first may land in the
 * snapshot. Returns the epochs of the first checkpoint seen after each kill.
 */
export async function killRepeatedly(options: {
  config: string;
  env: Record<string, string>;
  kills: number;
  random: () => number;
  checkpoints: () => Promise<readonly ({ epoch: number } | null)[]>;
}): Promise<Set<number>> {
  const epochs = new Set<number>();
  for (let i = 0; i < options.kills; i++) {
    const p = runCli(['start', '--config', options.config], { env: options.env });
    if (i > 0) {
      const before = await options.checkpoints();
      const deadline = Date.now() + 120_000;
      for (;;) {
        const now = await options.checkpoints();
        if (now.every((cp, k) => cp && cp.epoch > (before[k]?.epoch ?? -1))) break;
        if (Date.now() > deadline) throw new Error(`no epoch committed after restart ${i}:\n${p.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await new Promise((r) => setTimeout(r, 1000 + Math.floor(options.random() * 2000)));
    p.child.kill('SIGKILL');
    expect(await p.exited, p.output()).toBe('SIGKILL');
    const [cp] = await options.checkpoints();
    if (cp) epochs.add(cp.epoch);
  }
  return epochs;
}
