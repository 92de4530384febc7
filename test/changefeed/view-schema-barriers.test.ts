/**
 * Views at schema barriers (issue 11: "views are re-planned at that point"), under a concurrent
 * writer, against PostgreSQL running each view's SQL at the same position:
 *
 *   binds, output unchanged, nothing it reads changed   → migrated, same epoch
 *   binds, output changed or a column it reads retyped  → state rebuilt at the barrier, the
 *                                                          view's rows replaced in the same epoch
 *   no longer binds                                      → VIEW_SCHEMA_CHANGED, nothing after it
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import {
  currentLsn,
  expectSameTables,
  sinkCheckpoint,
  testConfig,
  waitForCatchUp,
} from '../support/changefeed.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { startChangefeed } from '../support/engine.ts';
import { createLogger, silentLogger } from '../../src/runtime/logger.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';

const VIEWS = [
  {
    name: 'customer_totals',
    sql: `SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer_id`,
  },
  {
    name: 'region_revenue',
    sql: `SELECT c.region, count(*) AS orders, sum(o.amount) AS revenue
      FROM orders o JOIN customers c ON o.customer_id = c.id GROUP BY c.region`,
  },
  { name: 'all_customers', sql: `SELECT * FROM customers` },
];

async function shop(db: TestDatabase): Promise<void> {
  await db.query(`
    CREATE TABLE customers (id int PRIMARY KEY, name text, region text);
    CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2), status text);
    INSERT INTO customers SELECT g, 'c' || g, (ARRAY['north','south','east','west'])[1 + g % 4] FROM generate_series(1, 100) g;
    INSERT INTO orders SELECT g, 1 + g % 100, (g % 997) / 10.0, 'new' FROM generate_series(1, 2000) g;
  `);
}

/** Upserts and deletes on both tables, naming only columns no step below drops or renames. */
function writer(
  db: TestDatabase,
  seed: number,
): { pause(): Promise<void>; resume(): void; stop(): Promise<void> } {
  const rnd = mulberry32(seed);
  let stop = false;
  const hold: { gate: Promise<void> | null; open: (() => void) | null; idle: (() => void) | null } = {
    gate: null,
    open: null,
    idle: null,
  };
  const done = (async () => {
    const c = await db.connect();
    while (!stop) {
      if (hold.gate) {
        hold.idle?.();
        await hold.gate;
        continue;
      }
      const id = 1 + Math.floor(rnd() * 3000);
      const cust = 1 + Math.floor(rnd() * 110);
      await c.query('BEGIN');
      await c.query(
        `INSERT INTO orders (id, customer_id, amount) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount, customer_id = EXCLUDED.customer_id`,
        [id, cust, Math.floor(rnd() * 100000) / 1000],
      );
      if (rnd() < 0.2) await c.query(`DELETE FROM orders WHERE id = $1`, [1 + Math.floor(rnd() * 3000)]);
      if (rnd() < 0.2)
        await c.query(
          `INSERT INTO customers (id, region) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET region = EXCLUDED.region`,
          [cust, ['north', 'south', 'east', 'west', 'central'][Math.floor(rnd() * 5)]],
        );
      await c.query('COMMIT');
    }
    await c.end();
  })();
  return {
    pause() {
      hold.gate = new Promise((r) => (hold.open = r));
      return new Promise((r) => (hold.idle = r));
    },
    resume() {
      const open = hold.open;
      hold.gate = null;
      hold.idle = null;
      hold.open = null;
      open?.();
    },
    async stop() {
      stop = true;
      this.resume();
      await done;
    },
  };
}

/** The view downstream equals the view's SQL run by PostgreSQL, in column names and rows. */
async function expectViewsEqualPostgres(src: TestDatabase, dst: TestDatabase): Promise<void> {
  for (const v of VIEWS) {
    const text = async (db: TestDatabase, q: string) =>
      (await db.query(`SELECT v::text AS r FROM (${q}) v ORDER BY 1`)).rows.map((r) => String(r.r));
    const names = async (db: TestDatabase, q: string) =>
      ((await db.query(`SELECT * FROM (${q}) v LIMIT 0`)) as pg.QueryResult).fields.map((f) => f.name);
    expect(await names(dst, `SELECT * FROM ${v.name}`), `${v.name} columns`).toEqual(await names(src, v.sql));
    expect(await text(dst, `SELECT * FROM ${v.name}`), v.name).toEqual(await text(src, v.sql));
  }
}

describe('views at schema barriers', () => {
  it(
    'migrated or rebuilt in the epoch of the barrier, equal to PostgreSQL after every change (under a writer)',
    { timeout: 240_000 },
    async () => {
      const src = await freshDatabase('vsb_src');
      const dst = await freshDatabase('vsb_dst');
      await shop(src);
      const cfg = testConfig({
        source: src.url,
        sink: dst.url,
        tables: ['orders'], // customers only feeds views
        views: VIEWS,
      });
      const lines: string[] = [];
      const logger = createLogger({
        level: 'info',
        format: 'json',
        stream: { write: (t: string) => lines.push(t) },
      });
      const feed = startChangefeed(cfg, { logger });
      const caughtUp = () =>
        waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id, timeoutMs: 60_000 });
      await caughtUp();
      const w = writer(src, 99);
      const steps = [
        // No view reads these: migrated (all_customers reads every column of customers: rebuilt).
        `ALTER TABLE orders ADD COLUMN note text DEFAULT 'x'`,
        `ALTER TABLE orders RENAME COLUMN note TO remark`,
        `ALTER TABLE orders DROP COLUMN status`,
        // A column the views read changes type: rebuilt, rows replaced (sum prints 3 decimals).
        `ALTER TABLE orders ALTER COLUMN amount TYPE numeric(14,3)`,
        // SELECT * changes shape: the view's table is created again with its new rows.
        `ALTER TABLE customers ADD COLUMN tier int DEFAULT 3`,
        `ALTER TABLE customers RENAME COLUMN name TO full_name`,
        `ALTER TABLE customers DROP COLUMN tier`,
        // The join key widens under every view that reads it.
        `ALTER TABLE customers ALTER COLUMN id TYPE bigint`,
        `ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint`,
      ];
      for (const ddl of steps) {
        // Writes before and after the DDL land in the same epochs.
        await new Promise((r) => setTimeout(r, 150));
        await src.query(ddl);
        await new Promise((r) => setTimeout(r, 150));
        await w.pause();
        await caughtUp();
        expect(feed.status().error, ddl).toBeNull();
        await expectViewsEqualPostgres(src, dst);
        w.resume();
      }
      await w.stop();
      await caughtUp();
      await feed.stop();
      expect(feed.status().error).toBeNull();
      await expectViewsEqualPostgres(src, dst);
      await expectSameTables(src.url, dst.url, ['orders']);
      // Both paths were taken: migrations (nothing read changed) and rebuilds that reshaped a view.
      const barriers = lines.filter((l) => l.includes('at a schema barrier')).join('\n');
      expect(barriers).toContain('views migrated at a schema barrier');
      expect(barriers).toContain('views rebuilt at a schema barrier');
      expect(barriers).toContain('all_customers');
    },
  );

  it('a view that no longer binds stops the changefeed at the barrier, naming view, column and fix', async () => {
    const src = await freshDatabase('vsbx_src');
    const dst = await freshDatabase('vsbx_dst');
    await shop(src);
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['orders'], views: VIEWS });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    // Handled from the start: the changefeed fails at the barrier, before the test awaits it.
    const failed = feed.done.then(
      () => null,
      (e: unknown) => e,
    );
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    await src.query(`UPDATE orders SET amount = amount + 1 WHERE id <= 10`);
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    await src.query(`ALTER TABLE orders RENAME COLUMN amount TO price`);
    const ddlEnd = await currentLsn(src.url);
    await src.query(`UPDATE orders SET price = price + 1 WHERE id <= 10`);
    expect(await failed).toBeInstanceOf(TidemarkError);
    const error = feed.status().error;
    expect(error?.code).toBe('VIEW_SCHEMA_CHANGED');
    expect(error?.message).toContain('view "customer_totals"');
    expect(error?.message).toContain('column amount was renamed to price');
    expect(error?.message).toContain('Fix: write view "customer_totals" with price for amount');
    // Nothing at or after the barrier reached the sink: not the rename, not the update after it.
    const cp = await sinkCheckpoint(dst.url, cfg.id);
    expect(Lsn.parse(cp!.position).compare(ddlEnd)).toBeLessThan(0);
    const moved = await dst.query(
      `SELECT count(*)::int AS n FROM orders WHERE id <= 10 AND amount = (id % 997) / 10.0 + 1`,
    );
    expect(moved.rows[0]).toEqual({ n: 10 });
    const cols = await dst.query(
      `SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position`,
    );
    expect(cols.rows.map((r) => String(r.column_name))).toContain('amount');
  });

  it(
    'SIGKILLs around view rebuilds: after a restart the views still equal PostgreSQL',
    { timeout: 240_000 },
    async () => {
      const src = await freshDatabase('vsbk_src');
      const dst = await freshDatabase('vsbk_dst');
      await shop(src);
      const config = writeConfig(`
changefeeds:
  - id: vsbkill
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.orders]
    epoch: { intervalMs: 20 }
    heartbeatIntervalMs: 100
    views:
${VIEWS.map((v) => `      - name: ${v.name}\n        sql: ${v.sql.replace(/\s+/g, ' ')}`).join('\n')}
`);
      const env = {
        SRC_URL: src.url,
        DST_URL: dst.url,
        TIDEMARK_DATA_DIR: mkdtempSync(join(tmpdir(), 'tm-vsbkill-')),
      };
      const rnd = mulberry32(4242);
      const w = writer(src, 7);
      // Each round: a change rebuilding every view (retype under SELECT * and the sums), then one
      // migrating, the process killed at a random point around them.
      const rounds = [
        [`ALTER TABLE orders ALTER COLUMN amount TYPE numeric(14,3)`, `ALTER TABLE orders ADD COLUMN k0 int`],
        [`ALTER TABLE customers ADD COLUMN tier int DEFAULT 3`, `ALTER TABLE orders DROP COLUMN k0`],
        [
          `ALTER TABLE customers ALTER COLUMN id TYPE bigint`,
          `ALTER TABLE orders ADD COLUMN k1 text DEFAULT 'k'`,
        ],
        [
          `ALTER TABLE orders ALTER COLUMN amount TYPE numeric(16,4)`,
          `ALTER TABLE customers DROP COLUMN tier`,
        ],
      ];
      for (const [rebuild, migrate] of rounds) {
        const p = runCli(['start', '--config', config], { env });
        const deadline = Date.now() + 60_000;
        while (!(await sinkCheckpoint(dst.url, 'vsbkill')) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 300)));
        await src.query(rebuild!);
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 400)));
        await src.query(migrate!);
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 400)));
        p.child.kill('SIGKILL');
        expect(await p.exited, p.output()).toBe('SIGKILL');
      }
      await w.stop();
      const last = runCli(['start', '--config', config], { env });
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'vsbkill', timeoutMs: 120_000 }).catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${last.output()}`);
        },
      );
      last.child.kill('SIGTERM');
      expect(await last.exited, last.output()).toBe(0);
      await expectViewsEqualPostgres(src, dst);
      await expectSameTables(src.url, dst.url, ['orders']);
    },
  );
});
