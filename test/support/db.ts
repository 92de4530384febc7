/**
 * A fresh database per test, dropped after it. Use:
 *
 *   const src = await freshDatabase('src');   // in a test
 *   await src.query('create table …');
 *   // src.url is a connection URI with credentials, for the code under test
 *
 * Cleanup is registered with `onTestFinished`, so every database is dropped even when the test
 * fails. Slots held by a database are dropped with it.
 */
import { inject, onTestFinished } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** A new client of its own (for concurrent readers and writers); closed after the test. */
  connect(): Promise<pg.Client>;
}

/**
 * The admin URL of this worker's own cluster (see test/global-setup.ts): test files running at
 * once in other workers use other clusters.
 */
export function adminUrl(): string {
  const urls = inject('pgAdminUrls');
  const worker = Number(process.env.VITEST_POOL_ID ?? '1');
  const url = urls[worker - 1];
  if (url === undefined) {
    throw new Error(
      `no PostgreSQL cluster for vitest worker ${worker}: global setup started ${urls.length} (one per worker)`,
    );
  }
  return url;
}

export function urlFor(dbname: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${dbname}`;
  return u.toString();
}

export async function adminQuery(sql: string, params?: unknown[]): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: adminUrl() });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

export async function freshDatabase(label = 'db'): Promise<TestDatabase> {
  const name = `t_${label.replace(/\W/g, '_').slice(0, 20)}_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = urlFor(name);
  const clients: pg.Client[] = [];
  const main = new pg.Client({ connectionString: url });
  await main.connect();
  clients.push(main);
  onTestFinished(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await dropDatabase(name);
  });
  return {
    name,
    url,
    query: (sql, params) => main.query(sql, params),
    async connect() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      clients.push(c);
      return c;
    },
  };
}

export async function dropDatabase(name: string): Promise<void> {
  // Slots pin the database; terminate walsenders and drop its slots before dropping it.
  await adminQuery(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
    [name],
  );
  for (let i = 0; i < 50; i++) {
    try {
      await adminQuery(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`,
        [name],
      );
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
