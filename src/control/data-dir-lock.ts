/**
 * One process per data directory. The lock is a listening Unix socket whose name is derived from
 * the directory's real path: binding it is exclusive, and the kernel releases it when the
 * process ends however it ends (SIGKILL included), so a crashed holder never leaves a stale lock
 * and a restart never waits. On Linux the socket lives in the abstract namespace (no file); elsewhere
 * it is `<dataDir>/tidemark.sock`, and a file nobody answers on is stale and replaced.
 *
 * The holder answers a connection with who it is (pid, host, start time), so the second
 * process's error names the first.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TidemarkError } from '../errors/tidemark-error.ts';

export interface DataDirLock {
  readonly dataDir: string;
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  startedAt: string;
  argv: string;
}

/** Takes the lock of `dataDir` (created when missing), or throws DATA_DIR_LOCKED naming the holder. */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  mkdirSync(dataDir, { recursive: true });
  const real = realpathSync(dataDir);
  const abstract = process.platform === 'linux';
  const path = abstract
    ? `\0tidemark-data-dir-${createHash('sha256').update(real).digest('hex').slice(0, 32)}`
    : join(real, 'tidemark.sock');
  const me: Holder = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    argv: process.argv.slice(1).join(' ').slice(0, 200),
  };
  for (let attempt = 0; ; attempt++) {
    const server = createServer((socket) => socket.end(JSON.stringify(me)));
    const bound = await new Promise<Error | null>((resolve) => {
      server.once('error', resolve);
      server.listen({ path, exclusive: true }, () => resolve(null));
    });
    if (bound === null) {
      server.unref();
      return { dataDir: real, release: () => close(server, abstract ? null : path) };
    }
    if ((bound as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt > 0) {
      throw new TidemarkError('DATA_DIR_LOCKED', {
        detail: `cannot lock data directory ${real}: ${bound.message}`,
      });
    }
    const holder = await ask(path);
    if (holder === null && !abstract) {
      // A socket file nobody listens on: its process is gone.
      try {
        unlinkSync(path);
      } catch {
        // Another process replaced it meanwhile: the next bind decides.
      }
      continue;
    }
    throw new TidemarkError('DATA_DIR_LOCKED', {
      detail: `data directory ${real} is in use by another Tidemark process${
        holder ? ` (pid ${holder.pid} on ${holder.host}, started ${holder.startedAt}: ${holder.argv})` : ''
      }`,
    });
  }
}

/** Who holds the lock (null: nobody answers). */
function ask(path: string): Promise<Holder | null> {
  return new Promise((resolve) => {
    const s = connect({ path });
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(null);
    }, 2000);
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as Holder);
      } catch {
        resolve({ pid: 0, host: '?', startedAt: '?', argv: '?' });
      }
    });
    s.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

function close(server: Server, file: string | null): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      if (file) {
        try {
          unlinkSync(file);
        } catch {
          // Already gone.
        }
      }
      resolve();
    });
  });
}
