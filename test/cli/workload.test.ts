import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { DEMO_ACCOUNT_TOTAL, setUpDemoSchema } from '../../src/cli/demo/demo-schema.ts';
import { startWorkload } from '../../src/cli/demo/workload.ts';

async function seeded(label: string): Promise<TestDatabase> {
  const db = await freshDatabase(label);
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    expect(await setUpDemoSchema(c, { customers: 50, orders: 100 })).toBe(true);
    expect(await setUpDemoSchema(c, { customers: 50, orders: 100 })).toBe(false); // idempotent
  } finally {
    await c.end();
  }
  return db;
}

/** Every row except timestamps, which differ between runs by design. */
async function digest(db: TestDatabase): Promise<string> {
  const { rows } = await db.query<{ d: string }>(`SELECT md5(
      (SELECT string_agg(concat_ws(',', id, name, email), ';' ORDER BY id) FROM customers) ||
      (SELECT string_agg(concat_ws(',', id, customer_id, status, amount), ';' ORDER BY id) FROM orders) ||
      (SELECT string_agg(concat_ws(',', order_id, line_no, product, quantity, unit_price), ';' ORDER BY order_id, line_no) FROM order_items) ||
      (SELECT string_agg(concat_ws(',', id, balance), ';' ORDER BY id) FROM accounts)) AS d`);
  return rows[0]?.d ?? '';
}

describe('demo workload', () => {
  it('keeps its invariants and is deterministic for a seed', async () => {
    const a = await seeded('wl_a');
    const b = await seeded('wl_b');
    expect(await digest(a)).toBe(await digest(b));
    for (const db of [a, b]) {
      const w = startWorkload({ url: db.url, changesPerSec: Infinity, seed: 7, maxTransactions: 400 });
      await w.done;
      expect(w.stats().transactions).toBe(400);
      expect(w.stats().changes).toBeGreaterThan(400);
    }
    expect(await digest(a)).toBe(await digest(b));
    const total = await a.query<{ s: string }>('SELECT sum(balance)::text AS s FROM accounts');
    expect(total.rows[0]?.s).toBe(DEMO_ACCOUNT_TOTAL);
    const wrong = await a.query(`SELECT o.id FROM orders o
        LEFT JOIN (SELECT order_id, sum(quantity * unit_price) AS s FROM order_items GROUP BY order_id) i ON i.order_id = o.id
        WHERE o.amount <> coalesce(i.s, 0)`);
    expect(wrong.rows).toEqual([]);
    const kinds = await a.query<{ n: string }>(
      "SELECT count(*) AS n FROM orders WHERE status <> 'new' AND id > 100",
    );
    expect(Number(kinds.rows[0]?.n)).toBeGreaterThan(0);
  });

  it('stops between transactions when asked', async () => {
    const db = await seeded('wl_stop');
    const w = startWorkload({ url: db.url, changesPerSec: 200, seed: 1 });
    await w.stop();
    await w.done;
    const total = await db.query<{ s: string }>('SELECT sum(balance)::text AS s FROM accounts');
    expect(total.rows[0]?.s).toBe(DEMO_ACCOUNT_TOTAL);
  });
});
