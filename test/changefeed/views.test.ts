/**
 * Views end to end: computed from the snapshot, maintained from the stream, committed in the same
 * downstream transaction as the tables (PostgreSQL itself is the oracle).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

const REGION_REVENUE = `SELECT c.region, count(*) AS orders, sum(o.amount) AS revenue
  FROM orders o JOIN customers c ON o.customer_id = c.id
  WHERE o.status <> 'cancelled'
  GROUP BY c.region`;
const CUSTOMER_TOTALS = `SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer_id`;

async function shop(db: TestDatabase): Promise<void> {
  await db.query(`
    CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
    CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2), status text NOT NULL);
    INSERT INTO customers SELECT g, 'c' || g, (ARRAY['north','south','east','west'])[1 + g % 4] FROM generate_series(1, 200) g;
    INSERT INTO orders SELECT g, 1 + g % 200, (g % 997) / 10.0, (ARRAY['new','paid','cancelled'])[1 + g % 3] FROM generate_series(1, 5000) g;
  `);
}

const writers = new WeakMap<TestDatabase, Promise<pg.Client>>();

/** One writer connection per database, reused by every workload call. */
function writerFor(db: TestDatabase): Promise<pg.Client> {
  let w = writers.get(db);
  if (!w) writers.set(db, (w = db.connect()));
  return w;
}

/** A workload touching every path: inserts, updates that move rows between groups, deletes. */
async function workload(db: TestDatabase, rounds: number, seed: number): Promise<void> {
  const c = await writerFor(db);
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < rounds; i++) {
    await c.query('BEGIN');
    await c.query(`INSERT INTO orders VALUES ($1, $2, $3, 'new') ON CONFLICT DO NOTHING`, [
      100000 + next(),
      1 + (next() % 220),
      (next() % 5000) / 100,
    ]);
    await c.query(`UPDATE orders SET status = 'cancelled' WHERE id = $1`, [1 + (next() % 5000)]);
    await c.query(`UPDATE orders SET amount = amount + 1, customer_id = $2 WHERE id = $1`, [
      1 + (next() % 5000),
      1 + (next() % 200),
    ]);
    await c.query(`DELETE FROM orders WHERE id = $1`, [1 + (next() % 5000)]);
    if (i % 7 === 0)
      await c.query(`UPDATE customers SET region = $2 WHERE id = $1`, [
        1 + (next() % 200),
        ['north', 'south', 'east', 'west', 'central'][next() % 5],
      ]);
    if (i % 13 === 0)
      await c.query(`INSERT INTO customers VALUES ($1, 'new', 'central') ON CONFLICT DO NOTHING`, [
        200 + (next() % 20),
      ]);
    await c.query('COMMIT');
  }
}

async function expectViewEqualsOracle(
  src: TestDatabase,
  dst: TestDatabase,
  view: string,
  sql: string,
): Promise<void> {
  const text = async (db: TestDatabase, q: string) =>
    (await db.query(`SELECT v::text AS r FROM (${q}) v ORDER BY 1`)).rows.map((r) => r.r);
  expect(await text(dst, `SELECT * FROM ${view}`), view).toEqual(await text(src, sql));
}

describe('views', () => {
  it('are computed from the snapshot and maintained from the stream; a view may read tables it does not replicate', async () => {
    const src = await freshDatabase('views_src');
    const dst = await freshDatabase('views_dst');
    await shop(src);
    const cfg = testConfig({
      source: src.url,
      sink: dst.url,
      tables: ['orders'], // customers is read by the view but not copied
      views: [
        { name: 'region_revenue', sql: REGION_REVENUE },
        { name: 'customer_totals', sql: CUSTOMER_TOTALS },
      ],
    });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    await expectViewEqualsOracle(src, dst, 'region_revenue', REGION_REVENUE);
    await workload(src, 150, 7);
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    await feed.stop();
    await expectViewEqualsOracle(src, dst, 'region_revenue', REGION_REVENUE);
    await expectViewEqualsOracle(src, dst, 'customer_totals', CUSTOMER_TOTALS);
    await expectSameTables(src.url, dst.url, ['orders']);
    const copied = await dst.query(`SELECT to_regclass('public.customers') AS t`);
    expect(copied.rows[0]?.t).toBeNull();
  });

  it('a reader sees the view and its base table at the same position in every snapshot', async () => {
    const src = await freshDatabase('viewatom_src');
    const dst = await freshDatabase('viewatom_dst');
    await shop(src);
    const cfg = testConfig({
      source: src.url,
      sink: dst.url,
      tables: ['orders'],
      views: [{ name: 'customer_totals', sql: CUSTOMER_TOTALS }],
      epoch: { intervalMs: 10 },
    });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    const reader = await dst.connect();
    let stop = false;
    const writing = (async () => {
      let seed = 1;
      while (!stop) await workload(src, 5, seed++);
    })();
    let reads = 0;
    const bad: string[] = [];
    // A count of reads, not a time: how many fit in 4 s depends on the machine's load.
    while (reads < 60) {
      const r = await reader.query(`
        SELECT count(*)::int AS n FROM (
          (SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer_id
           EXCEPT SELECT customer_id, n, total FROM customer_totals)
          UNION ALL
          (SELECT customer_id, n, total FROM customer_totals
           EXCEPT SELECT customer_id, count(*), sum(amount) FROM orders GROUP BY customer_id)) d`);
      reads++;
      if (r.rows[0]?.n !== 0) bad.push(`${r.rows[0]?.n} differing groups at read ${reads}`);
    }
    stop = true;
    await writing;
    await feed.stop();
    expect(bad).toEqual([]);
  });

  it('SIGKILL during maintenance, restart: views still equal the oracle', { timeout: 240_000 }, async () => {
    const src = await freshDatabase('viewcrash_src');
    const dst = await freshDatabase('viewcrash_dst');
    await shop(src);
    const config = writeConfig(`
changefeeds:
  - id: viewcrash
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.orders]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    views:
      - name: region_revenue
        sql: |
${REGION_REVENUE.split('\n')
  .map((l) => '          ' + l.trim())
  .join('\n')}
      - name: customer_totals
        sql: ${CUSTOMER_TOTALS}
`);
    const env = {
      SRC_URL: src.url,
      DST_URL: dst.url,
      TIDEMARK_DATA_DIR: mkdtempSync(join(tmpdir(), 'tm-viewcrash-')),
    };
    let stop = false;
    const writing = (async () => {
      let seed = 100;
      while (!stop) await workload(src, 5, seed++);
    })();
    for (let i = 0; i < 10; i++) {
      const p = runCli(['start', '--config', config], { env });
      await new Promise((r) => setTimeout(r, 800 + ((i * 337) % 1500)));
      p.child.kill('SIGKILL');
      await p.exited;
    }
    stop = true;
    await writing;
    const last = runCli(['start', '--config', config], { env });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'viewcrash', timeoutMs: 120_000 }).catch(
      (e: unknown) => {
        throw new Error(`${String(e)}\n${last.output()}`);
      },
    );
    last.child.kill('SIGTERM');
    expect(await last.exited, last.output()).toBe(0);
    await expectViewEqualsOracle(src, dst, 'region_revenue', REGION_REVENUE);
    await expectViewEqualsOracle(src, dst, 'customer_totals', CUSTOMER_TOTALS);
    await expectSameTables(src.url, dst.url, ['orders']);
  });
});
