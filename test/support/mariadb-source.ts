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
import { expect } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { MysqlConnector } from '../../src/source/mysql/mysql-connector.ts';
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
  /** The first port tried (see startMariaDb). */
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
  const url = (database = '') => `mysql://${REPL_USER}:${REPL_PASSWORD}@127.0.0.1:${server.port}/${database}`;
  const connect = (database?: string) =>
    mysql.createConnection({
      host: '127.0.0.1',
      port: server.port,
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

/** A row as one comparable string. */
export function rowText(r: Row): string {
  return JSON.stringify(r);
}

/**
 * The source's rows as the connector reads them (pivot text, `rowText`), sorted, by table name:
 * what every sink must hold once caught up.
 */
export async function readMariaDbSource(
  url: string,
  selection: string[],
): Promise<Map<string, { t: TableSchema; rows: string[] }>> {
  const c = new MysqlConnector({ uri: url });
  try {
    const { tables } = await c.describe(selection);
    const snap = await c.snapshot(tables, { parallelism: 1, chunkRows: 100_000 });
    const out = new Map<string, { t: TableSchema; rows: string[] }>();
    for (const t of tables) out.set(t.name, { t, rows: [] });
    try {
      for await (const chunk of snap.rows) out.get(chunk.table.name)!.rows.push(...chunk.rows.map(rowText));
    } finally {
      await snap.release();
    }
    for (const v of out.values()) v.rows.sort();
    return out;
  } finally {
    await c.close();
  }
}

/** Waits until `checkpoint()` passes the source's binlog end as it is now (bounded). */
export async function waitMariaDbCaughtUp(
  src: MariaDbSource,
  checkpoint: () => Promise<{ position: string } | null> | { position: string } | null,
  timeoutMs = 120_000,
): Promise<void> {
  const codec = new MysqlConnector({ uri: src.url() }).positions;
  const rows = (await src.sql(null, 'SELECT @@global.gtid_binlog_pos AS g')) as { g: string }[];
  const target = codec.parse(rows[0]!.g);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cp = await checkpoint();
    if (cp && codec.parse(cp.position).compare(target) >= 0) return;
    if (Date.now() > deadline) throw new Error(`not caught up to ${target} (checkpoint ${cp?.position})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Every table of `database` in each downstream (read as pivot text) equals the source's rows;
 * returns `<table>: <n> rows` per table.
 */
export async function expectMariaDbEqual(
  src: MariaDbSource,
  database: string,
  downstream: Record<string, (t: TableSchema) => Promise<Row[]> | Row[]>,
): Promise<string[]> {
  const want = await readMariaDbSource(src.url(database), [`${database}.*`]);
  for (const { t, rows } of want.values()) {
    for (const [name, read] of Object.entries(downstream)) {
      const got = (await read(t)).map((r) => rowText(r)).sort();
      expect(got.length, `${name} ${t.name}: rows`).toBe(rows.length);
      expect(got, `${name} ${t.name}`).toEqual(rows);
    }
  }
  return [...want.values()].map(({ t, rows }) => `${t.name}: ${rows.length} rows`);
}
