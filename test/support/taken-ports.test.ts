/**
 * Servers the tests start find their port taken when another process binds it between the free
 * check and the server's own bind (test files run in parallel; other runs share the machine).
 * Each start must then move to another port, and never mistake the port's holder for its own
 * server.
 */
import { createServer, type Server } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { connect } from '@nats-io/transport-node';
import { adminUrl } from './db.ts';
import { startCluster } from './pg-cluster.ts';
import { startMariaDb } from './mariadb.ts';
import { startNats } from './nats.ts';

async function holdPort(): Promise<number> {
  const srv: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  onTestFinished(() => new Promise<void>((r) => srv.close(() => r())));
  const addr = srv.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

async function dataDirectory(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query('SHOW data_directory')).rows[0].data_directory as string;
  } finally {
    await c.end();
  }
}

describe('a server start on a taken port', () => {
  it('PostgreSQL: another test cluster (same user and password) holds it', async () => {
    const held = Number(new URL(adminUrl()).port);
    const cluster = await startCluster({ port: held });
    onTestFinished(() => cluster.stop());
    expect(cluster.port).not.toBe(held);
    expect(await dataDirectory(cluster.url('postgres'))).not.toBe(await dataDirectory(adminUrl()));
  });

  it('MariaDB', async () => {
    const held = await holdPort();
    const maria = await startMariaDb({ port: held });
    onTestFinished(() => maria.stop());
    expect(maria.port).not.toBe(held);
    const c = await mysql.createConnection(maria.url(''));
    await c.end();
  });

  it('NATS', async () => {
    const held = await holdPort();
    const nats = await startNats({ port: held });
    onTestFinished(() => nats.stop());
    expect(nats.port).not.toBe(held);
    const nc = await connect({ servers: `127.0.0.1:${nats.port}`, user: nats.user, pass: nats.password });
    await nc.close();
  });
});
