/**
 * A view end to end into any sink (issue 10 items 5 and 17), PostgreSQL as the oracle:
 *
 *   region_revenue = orders ⋈ customers GROUP BY region, with customers whose region is NULL
 *     ─► maintained while orders and customers move into, out of and back into the NULL group
 *     ─► stopped; its view state directory deleted (lost disk, a wiped container); restarted:
 *        a snapshot replaces the sink's data at a later epoch, and it streams on
 *     ─► tables and view equal to the source after each step; the epoch never goes backwards.
 */
import { rmSync } from 'node:fs';
import { expect } from 'vitest';
import pg from 'pg';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { MemoryStateStore } from '../../src/dataflow/memory-state-store.ts';
import { ViewMaintainer } from '../../src/dataflow/view-maintainer.ts';
import type { Changefeed } from '../../src/runtime/changefeed.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { ViewStage } from '../../src/runtime/view-stage.ts';
import { describeSelection } from '../../src/source/postgres/catalog.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { sessionOptions } from '../../src/source/postgres/session-settings.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import { currentLsn, testConfig } from '../support/changefeed.ts';
import { startChangefeed, testEngine } from '../support/engine.ts';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { sortRows } from '../sink-contract/fixtures.ts';
import { FEED_ID, type E2eTarget } from './workload.ts';

const REGION_REVENUE = `SELECT c.region, count(*) AS orders, sum(o.amount) AS revenue
  FROM orders o JOIN customers c ON o.customer_id = c.id
  GROUP BY c.region`;
const REGIONS = ['north', 'south', null, 'east', null];
const CUSTOMERS = 40;

async function shop(db: TestDatabase): Promise<void> {
  await db.query(`
    CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
    CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount int NOT NULL);
    INSERT INTO customers SELECT g, 'c' || g, (ARRAY['north', 'south', NULL, 'east', NULL])[1 + g % 5]
      FROM generate_series(1, ${CUSTOMERS}) g;
    INSERT INTO orders SELECT g, 1 + g % ${CUSTOMERS}, g % 97 FROM generate_series(1, 400) g;
  `);
}

/** Transactions that move orders and customers into, out of and back into the NULL group. */
async function workload(c: pg.Client, rounds: number, random: () => number): Promise<void> {
  const customer = () => 1 + Math.floor(random() * CUSTOMERS);
  for (let i = 0; i < rounds; i++) {
    await c.query('BEGIN');
    await c.query('INSERT INTO orders VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      10_000 + Math.floor(random() * 1_000_000),
      customer(),
      Math.floor(random() * 100),
    ]);
    await c.query('UPDATE orders SET customer_id = $2, amount = amount + 1 WHERE id = $1', [
      1 + Math.floor(random() * 400),
      customer(),
    ]);
    await c.query('DELETE FROM orders WHERE id = $1', [1 + Math.floor(random() * 400)]);
    await c.query('UPDATE customers SET region = $2 WHERE id = $1', [
      customer(),
      REGIONS[Math.floor(random() * REGIONS.length)],
    ]);
    await c.query('COMMIT');
  }
}

/** The replicated tables and the view as the sink holds them, by the source's own schemas. */
async function schemas(src: TestDatabase): Promise<{ tables: TableSchema[]; view: TableSchema }> {
  const c = new pg.Client({ connectionString: src.url, options: sessionOptions() });
  await c.connect();
  try {
    const { tables } = await describeSelection(c, ['public.customers', 'public.orders']);
    const m = await ViewMaintainer.open({
      views: [{ name: 'region_revenue', sql: REGION_REVENUE }],
      catalog: tables,
      store: new MemoryStateStore(),
    });
    const view = m.viewTables[0]!;
    await m.close();
    return { tables, view };
  } finally {
    await c.end();
  }
}

/** Rows in the source's text form (the session the changefeed reads with). */
async function sourceRows(src: pg.Client, sql: string): Promise<Row[]> {
  const r = await src.query<Row>({
    text: sql,
    rowMode: 'array',
    types: { getTypeParser: () => (v: string) => v },
  });
  return sortRows(r.rows);
}

async function expectEqual(
  src: pg.Client,
  target: E2eTarget,
  s: { tables: TableSchema[]; view: TableSchema },
) {
  for (const t of s.tables) {
    expect(sortRows(await target.read(t)), t.name).toEqual(
      await sourceRows(src, `SELECT * FROM public.${t.name}`),
    );
  }
  const oracle = await sourceRows(src, REGION_REVENUE);
  expect(
    oracle.some((r) => r[0] === null),
    'the oracle has a NULL group',
  ).toBe(true);
  expect(sortRows(await target.read(s.view)), 'region_revenue').toEqual(oracle);
}

async function caughtUp(src: TestDatabase, target: E2eTarget, feed: Changefeed): Promise<void> {
  const goal = await currentLsn(src.url);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const cp = await target.checkpoint();
    if (cp && Lsn.parse(cp.position).compare(goal) >= 0) return;
    const st = feed.status();
    if (st.phase === 'failed' || Date.now() > deadline) {
      throw new Error(
        `sink did not reach ${goal} (checkpoint ${cp?.position ?? 'none'}, ${JSON.stringify(st.error)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function viewWithNullGroupAndLostState(
  target: E2eTarget,
  options: { seed: number },
): Promise<void> {
  const src = await freshDatabase('e2e_views');
  await shop(src);
  const random = mulberry32(options.seed);
  const writer = await src.connect();
  const reader = new pg.Client({ connectionString: src.url, options: sessionOptions() });
  await reader.connect();
  const s = await schemas(src);
  const { dataDir } = await testEngine();
  const cfg = testConfig({
    id: FEED_ID,
    source: src.url,
    sink: target.uri,
    tables: ['customers', 'orders'],
    views: [{ name: 'region_revenue', sql: REGION_REVENUE }],
  });
  const start = () => startChangefeed(cfg, { logger: silentLogger });
  let feed = start();
  try {
    await caughtUp(src, target, feed);
    await expectEqual(reader, target, s);
    await workload(writer, 60, random);
    await caughtUp(src, target, feed);
    await expectEqual(reader, target, s);
    await feed.stop();
    const before = (await target.checkpoint())!;

    // The view state is lost while the changefeed is down, and the source goes on.
    rmSync(ViewStage.stateDirFor(dataDir, FEED_ID), { recursive: true, force: true });
    await workload(writer, 20, random);
    feed = start();
    await caughtUp(src, target, feed);
    await expectEqual(reader, target, s);
    const after = (await target.checkpoint())!;
    expect(after.epoch, 'the replacing snapshot comes after the old checkpoint').toBeGreaterThan(
      before.epoch,
    );
    await workload(writer, 40, random);
    await caughtUp(src, target, feed);
    await expectEqual(reader, target, s);
    expect(feed.status().phase).toBe('streaming');
  } finally {
    await feed.stop();
    await reader.end();
  }
}
