/**
 * A TCP proxy in front of a PostgreSQL server that can lose one reply: armed, it lets the next
 * query whose text contains a given string run to completion on the server (up to its
 * ReadyForQuery) but forwards none of the reply, and closes the client's connection instead — a
 * COMMIT that succeeded, whose answer the client never got. Use:
 *
 *   const proxy = await lostReplyProxy(db.url);   // proxy.url: the same database through it
 *   proxy.arm('COMMIT');                           // the reply to the next such query is lost
 *   await proxy.close();
 */
import { createServer, connect, type Socket } from 'node:net';

export interface LostReplyProxy {
  readonly url: string;
  arm(queryContains: string): void;
  close(): Promise<void>;
}

export async function lostReplyProxy(target: string): Promise<LostReplyProxy> {
  const t = new URL(target);
  let armed: string | null = null;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(t.port), t.hostname);
    sockets.add(client).add(upstream);
    let swallowing = false;
    let pending = Buffer.alloc(0);
    client.on('data', (d) => {
      // Only a query sent after arming loses its reply, so the reply starts at a message boundary.
      if (armed !== null && d.toString('utf8').includes(armed)) {
        armed = null;
        swallowing = true;
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!swallowing) return void client.write(d);
      pending = Buffer.concat([pending, d]);
      // Messages: type byte, int32 length (counting itself); 'Z' is ReadyForQuery.
      for (let at = 0; at + 5 <= pending.length;) {
        const len = pending.readInt32BE(at + 1);
        if (at + 1 + len > pending.length) break;
        if (pending[at] === 0x5a) {
          client.destroy();
          upstream.destroy();
          return;
        }
        at += 1 + len;
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const url = new URL(target);
  url.host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    url: url.toString(),
    arm: (queryContains) => {
      armed = queryContains;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
