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
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PortTakenError, withFreePort } from './ports.ts';

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

export async function startNats(options: {
  /** The first port tried; if it is taken when the server binds, another free one (see ports.ts). */
  port: number;
}): Promise<NatsServer> {
  ensureNatsInstalled();
  const bin = existsSync(NATS_SERVER) ? NATS_SERVER : '/usr/bin/nats-server';
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-nats-'));
  const user = 'tidemark';
  const password = 'tidemark-nats-pw';
  const launch = async (port: number): Promise<ChildProcess> => {
    const args = [
      '-js',
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '-sd',
      dir,
      '--user',
      user,
      '--pass',
      password,
    ];
    const p: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let ready = false;
    p.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      ready ||= stderr.includes('Server is ready');
    });
    const closed = new Promise((r) => p.once('close', r));
    const deadline = Date.now() + 30_000;
    // Its own log line, not an open port: a server of someone else may hold the port.
    while (!ready) {
      if (p.exitCode !== null) {
        await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
        if (/address already in use/.test(stderr)) throw new PortTakenError(port, stderr);
        throw new Error(`nats-server exited during start:\n${stderr}`);
      }
      if (Date.now() > deadline) {
        p.kill('SIGKILL');
        throw new Error(`nats-server did not start:\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return p;
  };
  let port = options.port;
  const proc = await withFreePort(options.port, (p) => {
    port = p;
    return launch(p);
  });
  return {
    port,
    user,
    password,
    url: (stream, query) =>
      `nats://${user}:${password}@127.0.0.1:${port}/${stream}${query ? `?${query}` : ''}`,
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
