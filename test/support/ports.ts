/**
 * Ports for the servers tests start (PostgreSQL, MariaDB, NATS). Finding a free port and binding
 * it are two steps, and in between another process may take it: test files run in parallel
 * workers, and other test runs share the machine. So a server start does not trust the check: it
 * launches on the port and, when the server itself reports the port taken, tries another one
 * (`withFreePort`). The server's `port` says which port it got.
 */
import { createServer } from 'node:net';

/** The first port from `from` that nothing listens on right now (a hint, see `withFreePort`). */
export async function freePort(from: number): Promise<number> {
  for (let port = from; port < from + 100; port++) {
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port in ${from}..${from + 99}`);
}

/** Thrown by a server start whose server could not bind its port (someone else holds it). */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    detail: string,
  ) {
    super(`port ${port} is taken: ${detail}`);
  }
}

/**
 * Runs `start` on a free port from `first`; when it throws `PortTakenError`, on another free port
 * further on (a random stride, so two starters that collided do not collide again), at most
 * `attempts` times.
 */
export async function withFreePort<T>(
  first: number,
  start: (port: number) => Promise<T>,
  attempts = 10,
): Promise<T> {
  let port = await freePort(first);
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(port);
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt >= attempts) throw err;
      port = await freePort(port + 1 + Math.floor(Math.random() * 8));
    }
  }
}
