import { describe, expect, it } from 'vitest';
import { describePlan } from './describe-plan.ts';
import { planView } from './planner.ts';
import { testCatalog } from './test-catalog.ts';

const words = async (sql: string) => describePlan(await planView({ name: 'v', sql, catalog: testCatalog }));

describe('describePlan', () => {
  it('reads an aggregate over a join from the tables up to the view, with its key', async () => {
    expect(
      await words(`SELECT c.region, count(*) AS orders, sum(o.amount) AS revenue
        FROM orders o JOIN customers c ON o.customer_id = c.id
        WHERE o.status <> 'cancelled' GROUP BY c.region`),
    ).toEqual([
      'reads public.orders, public.customers',
      '  scan public.orders: its changes feed the steps above',
      '  filter: only rows matching the condition pass (each change checked on its own, no state)',
      '  scan public.customers: its changes feed the steps above',
      'inner join on 1 key column: both sides are kept indexed by the key, so a change on either side finds its matches; the right side holds one row per key, read directly',
      'aggregate count(*), sum(…) per group of 1 expression; only running totals are kept',
      'compute the columns region, orders, revenue (no state)',
      'key: region (rows upserted by it)',
    ]);
  });

  it('joins the lookups by key to each other before the large table, whatever the written order', async () => {
    const joinsFirst = [
      '    scan public.orders: its changes feed the steps above',
      '    scan public.customers: its changes feed the steps above',
      '  inner join on 1 key column: both sides are kept indexed by the key, so a change on either side finds its matches; the right side holds one row per key, read directly',
    ];
    const explicit = await words(`SELECT c.region, sum(l.qty) AS q FROM lines l
        JOIN orders o ON l.order_id = o.id JOIN customers c ON o.customer_id = c.id GROUP BY c.region`);
    expect(explicit.slice(1, 6)).toEqual([
      '  scan public.lines: its changes feed the steps above',
      ...joinsFirst,
      'inner join on 1 key column: both sides are kept indexed by the key, so a change on either side finds its matches; the right side holds one row per key, read directly',
    ]);
    const comma = await words(`SELECT c.name, l.qty, o.status FROM customers c, lines l, orders o
        WHERE l.order_id = o.id AND o.customer_id = c.id`);
    expect(comma.slice(1, 6)).toEqual([
      ...joinsFirst,
      '  scan public.lines: its changes feed the steps above',
      'inner join on 1 key column: both sides are kept indexed by the key, so a change on either side finds its matches; the left side holds one row per key, read directly',
    ]);
  });

  it('says what is kept for min/max and top-n, and when rows have no key', async () => {
    const minmax = await words('SELECT status, max(amount) AS top FROM orders GROUP BY status');
    expect(minmax.join('\n')).toMatch(
      /aggregate max\(…\) per group of 1 expression; the group’s values are kept/,
    );
    const topn = await words('SELECT id, amount FROM orders ORDER BY amount DESC LIMIT 3');
    expect(topn.join('\n')).toMatch(/top 3 by the ORDER BY: the ordered rows are kept/);
    const bag = await words('SELECT status FROM orders');
    expect(bag.at(-1)).toMatch(/^no key: rows are kept with their multiplicity/);
  });
});
