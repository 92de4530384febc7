import { describe, expect, test } from 'vitest';
import { planShape } from './plan.ts';
import { planView } from './planner.ts';
import { testCatalog } from './test-catalog.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

const plan = (sql: string) => planView({ name: 'v', sql, catalog: testCatalog });

async function refusal(sql: string): Promise<TidemarkError> {
  try {
    await plan(sql);
  } catch (err) {
    expect(err).toBeInstanceOf(TidemarkError);
    return err as TidemarkError;
  }
  throw new Error(`accepted: ${sql}`);
}

describe('planView', () => {
  test('infers output types, names and key for an aggregate over a join', async () => {
    const p =
      await plan(`SELECT c.region, count(*) AS orders, sum(o.amount) AS revenue, sum(o.qty) AS q, avg(o.customer_id) AS a
      FROM orders o JOIN customers c ON o.customer_id = c.id
      WHERE o.status <> 'cancelled'
      GROUP BY c.region`);
    expect(p.outputColumns.map((c) => [c.name, c.typeName])).toEqual([
      ['region', 'text'],
      ['orders', 'bigint'],
      ['revenue', 'numeric'],
      ['q', 'bigint'],
      ['a', 'numeric'],
    ]);
    expect(p.key).toEqual([0]);
    expect(p.inputs.map((t) => t.name)).toEqual(['orders', 'customers']);
  });

  test('keeps base keys through projections and inner joins', async () => {
    expect((await plan('SELECT status, id FROM orders')).key).toEqual([1]);
    // Each order meets at most one customer (joined on its key): the order's key is the join's.
    expect(
      (await plan('SELECT o.id, c.id AS cid FROM orders o JOIN customers c ON o.customer_id = c.id')).key,
    ).toEqual([0]);
    expect(
      (await plan('SELECT o.id, c.id AS cid FROM orders o JOIN customers c ON o.customer_id = c.region::int'))
        .key,
    ).toEqual([0, 1]);
    expect((await plan('SELECT DISTINCT status FROM orders')).key).toEqual([0]);
    expect((await plan('SELECT status FROM orders UNION ALL SELECT region FROM customers')).key).toEqual([]);
  });

  test('sum(bigint) is numeric, count is bigint, string_agg is text', async () => {
    const p = await plan(
      "SELECT sum(big) AS s, count(DISTINCT status) AS n, string_agg(status, ',' ORDER BY status) AS l, max(amount) AS m FROM orders",
    );
    expect(p.outputColumns.map((c) => c.typeName)).toEqual(['numeric', 'bigint', 'text', 'numeric']);
  });

  test.each([
    [
      'SELECT o.id FROM orders o WHERE o.amount > (SELECT c.id FROM customers c)',
      'VIEW_UNSUPPORTED',
      'at 1:44: a scalar subquery that is not an aggregate',
    ],
    [
      'WITH RECURSIVE x AS (SELECT 1) SELECT * FROM orders',
      'VIEW_UNSUPPORTED',
      'view "v" at 1:1: WITH RECURSIVE',
    ],
    [
      'SELECT s.n FROM orders o,\n  (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r) s',
      'VIEW_UNSUPPORTED',
      'at 2:4: WITH RECURSIVE',
    ],
    [
      'SELECT id FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id > o.customer_id) OR o.qty > 1',
      'VIEW_UNSUPPORTED',
      'EXISTS correlated by a condition other than an equality',
    ],
    [
      'SELECT o.id FROM orders o JOIN customers c ON o.customer_id = c.id AND o.id IN (SELECT 1)',
      'VIEW_UNSUPPORTED',
      'a subquery in JOIN … ON',
    ],
    ['SELECT id, now() FROM orders', 'VIEW_UNSUPPORTED', 'at 1:12: volatile function now()'],
    ['SELECT id, random() FROM orders', 'VIEW_UNSUPPORTED', 'volatile function random()'],
    [
      'SELECT generate_series(1, id) FROM orders',
      'VIEW_UNSUPPORTED',
      'set-returning function generate_series()',
    ],
    ['SELECT id, ntile(4) OVER (ORDER BY id) FROM orders', 'VIEW_UNSUPPORTED', 'window function ntile()'],
    [
      'SELECT id, sum(qty) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM orders',
      'VIEW_UNSUPPORTED',
      'this window frame',
    ],
    ['SELECT status, count(*) FROM orders GROUP BY ROLLUP (status)', 'VIEW_UNSUPPORTED', 'GROUPING SETS'],
    ['SELECT o.id FROM orders o, LATERAL (SELECT 1) x', 'VIEW_UNSUPPORTED', 'LATERAL subqueries'],
    ['SELECT id FROM orders LIMIT 3', 'VIEW_UNSUPPORTED', 'LIMIT/OFFSET without ORDER BY'],
    ['SELECT id FROM orders INTERSECT SELECT id FROM customers', 'VIEW_UNSUPPORTED', 'INTERSECT'],
    ['SELECT nope FROM orders', 'VIEW_INVALID', 'at 1:8: column "nope" does not exist'],
    [
      'SELECT id FROM orders o JOIN customers c ON o.customer_id = c.id',
      'VIEW_INVALID',
      'column reference "id" is ambiguous',
    ],
    // ON sees only its own join's items (as in PostgreSQL), also where inner joins are opened
    // into a FROM list to choose their order (flatten-joins.ts).
    [
      "SELECT l.id FROM lines l JOIN orders o ON l.order_id = o.id AND region = 'x' JOIN customers c ON o.customer_id = c.id",
      'VIEW_INVALID',
      'column "region" does not exist',
    ],
    [
      "SELECT l.id FROM lines l JOIN orders o ON l.order_id = o.id AND name = 'x', customers c",
      'VIEW_INVALID',
      'column "name" does not exist',
    ],
    // An aggregate in an inner join's ON is refused as PostgreSQL refuses it, naming the clause.
    [
      'SELECT o.id FROM orders o JOIN customers c ON o.customer_id = c.id AND count(*) > 1',
      'VIEW_INVALID',
      'at 1:72: aggregate functions are not allowed in JOIN conditions',
    ],
    ['SELECT id FROM missing', 'VIEW_INVALID', 'at 1:16: relation "missing" does not exist'],
    ['SELECT status + 1 FROM orders', 'VIEW_INVALID', 'operator does not exist: text + integer'],
    [
      'SELECT status, count(*) FROM orders',
      'VIEW_INVALID',
      'column "status" must appear in the GROUP BY clause',
    ],
    [
      'SELECT id FROM orders WHERE count(*) > 1',
      'VIEW_INVALID',
      'aggregate functions are not allowed in WHERE',
    ],
    ['SELECT id FROM\n  orders WHERE', 'VIEW_INVALID', 'syntax error at end of input'],
    ['SELECT id, id FROM orders', 'VIEW_INVALID', 'column "id" specified more than once'],
    // Two FROM items named alike, as PostgreSQL refuses them (a column of only one was accepted).
    [
      'SELECT o.status FROM orders o, customers o',
      'VIEW_INVALID',
      'at 1:32: table name "o" specified more than once',
    ],
    [
      'SELECT 1 AS x FROM orders JOIN orders ON true',
      'VIEW_INVALID',
      'table name "orders" specified more than once',
    ],
    [
      'SELECT s.id FROM (SELECT id FROM orders) s JOIN (SELECT id FROM lines) s ON true',
      'VIEW_INVALID',
      'table name "s" specified more than once',
    ],
    [
      'SELECT 1 AS x FROM (orders o JOIN customers c ON o.customer_id = c.id) AS j JOIN orders o ON true',
      'VIEW_UNSUPPORTED',
      'an alias on a JOIN',
    ],
    ['SELECT 1 AS x FROM missing, missing', 'VIEW_INVALID', 'relation "missing" does not exist'],
    [
      'WITH c AS (SELECT id FROM orders) SELECT c.id FROM c, customers c',
      'VIEW_INVALID',
      'table name "c" specified more than once',
    ],
    ['SELECT 1; SELECT 2', 'VIEW_INVALID', 'exactly one SELECT'],
    ['DELETE FROM orders', 'VIEW_UNSUPPORTED', 'a view must be a SELECT'],
  ])('refuses %s', async (sql, code, message) => {
    const err = await refusal(sql);
    expect(err.code).toBe(code);
    expect(err.message).toContain('view "v"');
    expect(err.message).toContain(message);
    expect(err.hint.length).toBeGreaterThan(0);
  });

  test('positions count lines and columns', async () => {
    const err = await refusal('SELECT id,\n       bogus\nFROM orders');
    expect(err.message).toContain('at 2:8: column "bogus" does not exist');
  });

  test('accepts the row_number() top-n pattern and ORDER BY … LIMIT', async () => {
    const p = await plan(
      `SELECT * FROM (SELECT id, status, row_number() OVER (PARTITION BY status ORDER BY amount DESC, id) AS rn FROM orders) s WHERE rn <= 2`,
    );
    expect(p.outputColumns.map((c) => [c.name, c.typeName])).toEqual([
      ['id', 'integer'],
      ['status', 'text'],
      ['rn', 'bigint'],
    ]);
    const q = await plan('SELECT id, amount FROM orders ORDER BY amount DESC, id LIMIT 3 OFFSET 1');
    expect(q.root.kind).toBe('top-n');
  });

  test.each([
    'SELECT id FROM orders WHERE id IN (SELECT id FROM customers)',
    'WITH x AS (SELECT id FROM customers) SELECT o.id FROM orders o, x WHERE o.customer_id = x.id',
    'SELECT o.id FROM orders o JOIN customers c ON o.id < c.id',
    'SELECT o.id FROM orders o LEFT JOIN customers c ON o.customer_id = c.id AND c.vip',
    'SELECT o.id FROM orders o LEFT JOIN customers c ON o.customer_id = c.id AND o.amount > 0',
    'SELECT o.id, c.id AS cid FROM orders o FULL JOIN customers c ON o.customer_id = c.id AND o.amount > c.id',
    'SELECT id, rank() OVER (ORDER BY id) FROM orders',
    'SELECT * FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM orders) s',
    "SELECT o.id FROM orders o, customers c WHERE o.customer_id = c.id AND c.region = 'north'",
    'SELECT o.id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)',
    'SELECT o.id, (SELECT count(*) FROM customers c WHERE c.id = o.customer_id) AS n FROM orders o',
    "SELECT id, date '2024-01-01' + interval '3' month AS d, interval '90' day AS i FROM orders",
  ])('accepts %s', async (sql) => {
    await plan(sql);
  });

  test('a view output column is NULL-able unless the planner proves otherwise', async () => {
    const p = await plan(
      'SELECT o.id, o.customer_id, c.region, count(*) AS n FROM orders o JOIN customers c ON o.customer_id = c.id GROUP BY o.id, o.customer_id, c.region',
    );
    expect(p.outputColumns.map((c) => [c.name, c.isKey, c.nullable])).toEqual([
      ['id', true, false],
      ['customer_id', true, false],
      ['region', true, true],
      ['n', false, false],
    ]);
  });

  test('the plan digest grows with the nodes, not with the paths to a CTE read twice', async () => {
    const depth = 16;
    const ctes = ['c0 AS (SELECT id, status FROM orders)'];
    for (let i = 1; i <= depth; i++)
      ctes.push(`c${i} AS (SELECT a.id, a.status FROM c${i - 1} a JOIN c${i - 1} b ON a.id = b.id)`);
    const p = await plan(`WITH ${ctes.join(', ')} SELECT id, status FROM c${depth}`);
    // Written out per path, the text doubles at every level (2^16 copies of the scan).
    expect(planShape([p]).length).toBeLessThan(100_000);
    const again = await plan(`WITH ${ctes.join(', ')} SELECT id, status FROM c${depth}`);
    expect(planShape([again])).toBe(planShape([p]));
    // Plans without a shared node are written as before (no reference), so their digests hold.
    const simple = await plan('SELECT o.id, c.region FROM orders o JOIN customers c ON o.customer_id = c.id');
    expect(planShape([simple])).not.toContain('"ref"');
  });
});
