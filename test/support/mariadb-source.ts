/**
 * A private MariaDB set up as a replication source (row binlog, FULL image and metadata, GTID
 * strict mode, server id 1), with a replication user holding exactly what the connector needs
 * (REPLICATION SLAVE, REPLICATION CLIENT, SELECT). Use:
 *
 *   const src = await startMariaDbSource({ port });          // beforeAll
 *   const db = await src.freshDatabase('orders');             // per test: { name, url (replication user) }
 *   await src.sql(db.name, 'INSERT …');                       // root, utf8mb4
 */
import mysql from 'mysql2/promise';
import { startMariaDb, type BinlogOptions, type MariaDb } from './mariadb.ts';

export interface MariaDbSource {
  readonly server: MariaDb;
  /** URL of the replication user, optionally naming a database. */
  url(database?: string): string;
  freshDatabase(label?: string): Promise<{ name: string; url: string }>;
  /** Runs statements (`;`-separated allowed) as root in `database`, utf8mb4. */
  sql(database: string | null, statements: string, params?: unknown[]): Promise<unknown>;
  /** A root connection of its own (closed by the caller). */
  connect(database?: string): Promise<mysql.Connection>;
  stop(): Promise<void>;
}

export const REPL_USER = 'tm_repl';
export const REPL_PASSWORD = 'tm-repl-pw';

export async function startMariaDbSource(options: {
  port: number;
  binlog?: BinlogOptions | false;
}): Promise<MariaDbSource> {
  const server = await startMariaDb({
    port: options.port,
    ...(options.binlog === false ? {} : { binlog: options.binlog ?? {} }),
  });
  await server.query(
    `CREATE USER '${REPL_USER}'@'127.0.0.1' IDENTIFIED BY '${REPL_PASSWORD}';
     GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '${REPL_USER}'@'127.0.0.1';`,
  );
  const url = (database = '') =>
    `mysql://${REPL_USER}:${REPL_PASSWORD}@127.0.0.1:${options.port}/${database}`;
  const connect = (database?: string) =>
    mysql.createConnection({
      host: '127.0.0.1',
      port: options.port,
      user: server.user,
      password: server.password,
      charset: 'utf8mb4_unicode_ci',
      multipleStatements: true,
      ...(database ? { database } : {}),
    });
  return {
    server,
    url,
    connect,
    async freshDatabase(label = 'db') {
      const db = await server.freshDatabase(label);
      await server.query(`ALTER DATABASE \`${db.name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
      return { name: db.name, url: url(db.name) };
    },
    async sql(database, statements, params) {
      const c = await connect(database ?? undefined);
      try {
        return (await c.query(statements, params))[0];
      } finally {
        await c.end();
      }
    },
    stop: () => server.stop(),
  };
}
