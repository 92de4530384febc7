/**
 * A private NATS server with JetStream for tests: Debian's `nats-server -js` on 127.0.0.1 at a
 * given port, its own store dir, user/password auth (so the wrong-password test is real).
 * Installs `nats-server` if missing. Use:
 *
 *   const nats = await startNats({ port: 4322 });   // beforeAll
 *   nats.url('stream')                              // nats://user:pw@127.0.0.1:4322/stream
 *   await nats.stop();                              // afterAll
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServer {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** A sink URI for `stream`, with credentials and an optional query. */
  url(stream: string, query?: string): string;
  stop(): Promise<void>;
}

const NATS_SERVER = '/usr/sbin/nats-server';

export function ensureNatsInstalled(): void {
  if (existsSync(NATS_SERVER) || existsSync('/usr/bin/nats-server')) return;
  execFileSync('flock', ['/tmp/apt.lock', 'sh', '-c', 'apt-get update && apt-get install -y nats-server'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

export async function startNats(options: { port: number }): Promise<NatsServer> {
  ensureNatsInstalled();
  const bin = existsSync(NATS_SERVER) ? NATS_SERVER : '/usr/bin/nats-server';
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-nats-'));
  const user = 'tidemark';
  const password = 'tidemark-nats-pw';
  const args = [
    '-js',
    '-a',
    '127.0.0.1',
    '-p',
    String(options.port),
    '-sd',
    dir,
    '--user',
    user,
    '--pass',
    password,
  ];
  const proc: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const deadline = Date.now() + 30_000;
  while (!(await portOpen(options.port))) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited during start:\n${stderr}`);
    if (Date.now() > deadline) throw new Error(`nats-server did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port: options.port,
    user,
    password,
    url: (stream, query) =>
      `nats://${user}:${password}@127.0.0.1:${options.port}/${stream}${query ? `?${query}` : ''}`,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
