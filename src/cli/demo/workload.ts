import pg from 'pg';
import type { Logger } from '../../runtime/logger.ts';
import { DEMO_ACCOUNTS, DEMO_STATUSES } from './demo-schema.ts';

/**
 * A live, deterministic OLTP workload on the demo schema (`demo-schema.ts`), for the demo, tests
 * and benchmarks. Each step is one source transaction:
 *
 *   30%  new order with 1–4 items (amount = sum of items)
 *   10%  new customer
 *   20%  order status change
 *   10%  item quantity change (and the order's amount with it)
 *   25%  transfer between two accounts (total of balances unchanged)
 *    5%  order deletion (its items cascade)
 *
 * Invariants a replica must show at every epoch: sum(accounts.balance) = DEMO_ACCOUNT_TOTAL, and
 * every order's amount equals the sum of its items. With the same seed on the same data the same
 * statements run in the same order.
 */
export interface WorkloadOptions {
  /** The source database, already set up with `setUpDemoSchema`. */
  url: string;
  /** Target row changes per second; `Infinity` runs unthrottled. Default 300. */
  changesPerSec?: number;
  /** PRNG seed; default 1. */
  seed?: number;
  /** Stop after this many transactions (tests); default unlimited. */
  maxTransactions?: number;
  logger?: Logger;
}

export interface WorkloadStats {
  transactions: number;
  changes: number;
}

export interface Workload {
  /** Resolves when stopped or `maxTransactions` ran; rejects if a statement failed. */
  readonly done: Promise<void>;
  stats(): WorkloadStats;
  /** Finishes the current transaction, then stops and disconnects. Idempotent. */
  stop(): Promise<void>;
}

export function startWorkload(options: WorkloadOptions): Workload {
  const stats: WorkloadStats = { transactions: 0, changes: 0 };
  let stopping = false;
  const done = run(options, stats, () => stopping);
  done.catch(() => {}); // observed through `done`; never an unhandled rejection
  return {
    done,
    stats: () => ({ ...stats }),
    async stop() {
      stopping = true;
      await done.catch(() => {});
    },
  };
}

async function run(options: WorkloadOptions, stats: WorkloadStats, stopping: () => boolean): Promise<void> {
  const rate = options.changesPerSec ?? 300;
  const max = options.maxTransactions ?? Infinity;
  const rng = mulberry32(options.seed ?? 1);
  const client = new pg.Client({ connectionString: options.url, application_name: 'tidemark demo workload' });
  client.on('error', () => {});
  await client.connect();
  try {
    const ids = await client.query<{ c: string | null; o: string | null }>(
      'SELECT (SELECT max(id) FROM customers)::text AS c, (SELECT max(id) FROM orders)::text AS o',
    );
    const state = { maxCustomer: Number(ids.rows[0]?.c ?? 0), maxOrder: Number(ids.rows[0]?.o ?? 0) };
    const started = performance.now();
    while (!stopping() && stats.transactions < max) {
      if (Number.isFinite(rate)) {
        const aheadMs = (stats.changes / rate) * 1000 - (performance.now() - started);
        if (aheadMs > 0) await new Promise((r) => setTimeout(r, Math.min(aheadMs, 50)));
        if (aheadMs > 50) continue;
      }
      await client.query('BEGIN');
      try {
        stats.changes += await step(client, rng, state);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
      stats.transactions++;
    }
    options.logger?.debug('workload stopped', { ...stats });
  } finally {
    await client.end().catch(() => {});
  }
}

interface State {
  maxCustomer: number;
  maxOrder: number;
}

/** Runs one transaction's statements; returns the number of row changes. */
async function step(client: pg.Client, rng: () => number, state: State): Promise<number> {
  const pick = (n: number) => 1 + Math.floor(rng() * n);
  const roll = rng();
  const existingOrder = async () => {
    const r = await client.query<{ id: string }>('SELECT id FROM orders WHERE id >= $1 ORDER BY id LIMIT 1', [
      pick(Math.max(1, state.maxOrder)),
    ]);
    return r.rows[0]?.id;
  };
  if (roll < 0.1 || state.maxCustomer === 0) {
    const n = state.maxCustomer + 1;
    const r = await client.query<{ id: string }>(
      'INSERT INTO customers (name, email) VALUES ($1, $2) RETURNING id',
      [`Customer ${n}`, `customer${n}@example.com`],
    );
    state.maxCustomer = Math.max(state.maxCustomer, Number(r.rows[0]?.id));
    return 1;
  }
  if (roll < 0.4) {
    const r = await client.query<{ id: string }>(
      "INSERT INTO orders (customer_id, status) VALUES ((SELECT id FROM customers WHERE id >= $1 ORDER BY id LIMIT 1), 'new') RETURNING id",
      [pick(state.maxCustomer)],
    );
    const orderId = r.rows[0]?.id;
    state.maxOrder = Math.max(state.maxOrder, Number(orderId));
    const lines = pick(4);
    for (let l = 1; l <= lines; l++) {
      await client.query(
        'INSERT INTO order_items (order_id, line_no, product, quantity, unit_price) VALUES ($1, $2, $3, $4, $5)',
        [orderId, l, `product-${pick(50)}`, pick(5), (pick(9000) + 99) / 100],
      );
    }
    await updateAmount(client, orderId);
    return lines + 2;
  }
  if (roll < 0.6) {
    const id = await existingOrder();
    if (id === undefined) return 0;
    const status = DEMO_STATUSES[pick(DEMO_STATUSES.length) - 1];
    await client.query('UPDATE orders SET status = $2, updated_at = now() WHERE id = $1', [id, status]);
    return 1;
  }
  if (roll < 0.7) {
    const id = await existingOrder();
    if (id === undefined) return 0;
    const r = await client.query(
      'UPDATE order_items SET quantity = $3 WHERE order_id = $1 AND line_no = $2',
      [id, 1, pick(9)],
    );
    await updateAmount(client, id);
    return (r.rowCount ?? 0) + 1;
  }
  if (roll < 0.95) {
    const a = pick(DEMO_ACCOUNTS);
    const b = 1 + ((a - 1 + pick(DEMO_ACCOUNTS - 1)) % DEMO_ACCOUNTS);
    const cents = pick(5000);
    // Lower id first, so concurrent workloads cannot deadlock.
    const moves: [number, number][] = [
      [a, -cents],
      [b, cents],
    ];
    for (const [id, deltaCents] of moves.sort((x, y) => x[0] - y[0])) {
      await client.query('UPDATE accounts SET balance = balance + $2::numeric / 100 WHERE id = $1', [
        id,
        deltaCents,
      ]);
    }
    return 2;
  }
  const id = await existingOrder();
  if (id === undefined) return 0;
  const r = await client.query('DELETE FROM order_items WHERE order_id = $1', [id]);
  await client.query('DELETE FROM orders WHERE id = $1', [id]);
  return (r.rowCount ?? 0) + 1;
}

async function updateAmount(client: pg.Client, orderId: string | undefined): Promise<void> {
  await client.query(
    'UPDATE orders SET amount = (SELECT coalesce(sum(quantity * unit_price), 0) FROM order_items WHERE order_id = $1), updated_at = now() WHERE id = $1',
    [orderId],
  );
}

/** A small, fast, seedable PRNG (public domain); returns [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
