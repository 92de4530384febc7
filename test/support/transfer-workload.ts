/**
 * The transfer workload of the crash tests: `accounts` (keyed) and `ledger` (keyless,
 * append-only, REPLICA IDENTITY FULL), and a seeded writer moving money between two different
 * accounts per transaction. `(txn, account)` is unique in the ledger, so a replayed epoch shows
 * up downstream as duplicate rows.
 */
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import type { TestDatabase } from './db.ts';

/** Creates the two tables with `accounts` rows (and `ledgerRows` opening ledger rows). */
export async function createTransferTables(
  db: TestDatabase,
  options: { accounts: number; ledgerRows?: number },
): Promise<void> {
  await db.query(`
    CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL, note text);
    CREATE TABLE ledger (txn bigint NOT NULL, account int NOT NULL, amount bigint NOT NULL);
    ALTER TABLE ledger REPLICA IDENTITY FULL;
    INSERT INTO accounts SELECT g, 1000, repeat('x', g % 50) FROM generate_series(1, ${options.accounts}) g;
    INSERT INTO ledger SELECT g, g, 0 FROM generate_series(1, ${options.ledgerRows ?? 0}) g;
  `);
}

/**
 * Starts writing transfers (two updates, two ledger rows; every 10th transaction also deletes an
 * account, and re-inserts one 5 later) until `stop()`, which resolves with the transactions made.
 */
export async function startTransferWriter(
  db: TestDatabase,
  options: { seed: number; accounts: number },
): Promise<{ stop(): Promise<number> }> {
  const random = mulberry32(options.seed);
  const writer = await db.connect();
  const n = options.accounts;
  let stopped = false;
  let txns = 0;
  const writing = (async () => {
    while (!stopped) {
      txns++;
      const a = 1 + Math.floor(random() * n);
      const b = 1 + ((a + Math.floor(random() * (n - 1))) % n); // never a: (txn, account) is unique
      const amount = 1 + Math.floor(random() * 50);
      await writer.query('BEGIN');
      await writer.query('UPDATE accounts SET balance = balance - $2 WHERE id = $1', [a, amount]);
      await writer.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [b, amount]);
      await writer.query('INSERT INTO ledger VALUES ($1, $2, $3), ($1, $4, $5)', [
        txns,
        a,
        -amount,
        b,
        amount,
      ]);
      if (txns % 10 === 0) await writer.query('DELETE FROM accounts WHERE id = $1', [a]);
      if (txns % 10 === 5)
        await writer.query('INSERT INTO accounts VALUES ($1, 0, NULL) ON CONFLICT DO NOTHING', [a]);
      await writer.query('COMMIT');
    }
  })();
  return {
    async stop() {
      stopped = true;
      await writing;
      return txns;
    },
  };
}

/**
 * The MariaDB flavour, for a MySQL source: `accounts` hold DECIMAL balances summing to
 * `accounts × 1000.00` at every commit, `ledger` (keyless) gets the transfer's two rows summing to
 * zero. Checked in every downstream read by `checkTransfers` (never a partial transaction).
 */
export function mariaDbTransferTablesSql(accounts: number): string {
  return `CREATE TABLE accounts (id INT PRIMARY KEY, balance DECIMAL(14,2) NOT NULL, note VARCHAR(40));
    CREATE TABLE ledger (txn BIGINT NOT NULL, account INT NOT NULL, amount DECIMAL(14,2) NOT NULL);
    INSERT INTO accounts SELECT seq, 1000.00, CONCAT('acct ', seq) FROM seq_1_to_${accounts};`;
}

/** A MariaDB connection as the writer uses it (mysql2's promise API). */
interface MariaDbWriterConnection {
  query(sql: string, params?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}

/**
 * Writes transfers on its own connection until `stop()` (which resolves with the transactions
 * made); `extra` runs inside each transaction after the transfer (more statements, other tables).
 */
export function startMariaDbTransferWriter(
  connect: () => Promise<MariaDbWriterConnection>,
  options: {
    seed: number;
    accounts: number;
    extra?: (c: MariaDbWriterConnection, txn: number) => Promise<void>;
    /** At most this many transfers a second (default: as fast as the server takes them). */
    perSecond?: number;
  },
): { stop(): Promise<number> } {
  const random = mulberry32(options.seed);
  const n = options.accounts;
  let stopped = false;
  let txns = 0;
  const writing = (async () => {
    const c = await connect();
    const started = Date.now();
    try {
      while (!stopped) {
        const due = options.perSecond ? started + (txns * 1000) / options.perSecond : 0;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        txns++;
        const a = 1 + Math.floor(random() * n);
        const b = 1 + ((a + Math.floor(random() * (n - 1))) % n);
        const amount = (1 + Math.floor(random() * 10000)) / 100;
        await c.query('START TRANSACTION');
        await c.query('UPDATE accounts SET balance = balance - ? WHERE id = ?', [amount, a]);
        await c.query('UPDATE accounts SET balance = balance + ? WHERE id = ?', [amount, b]);
        await c.query('INSERT INTO ledger (txn, account, amount) VALUES (?, ?, ?), (?, ?, ?)', [
          txns,
          a,
          -amount,
          txns,
          b,
          amount,
        ]);
        await options.extra?.(c, txns);
        await c.query('COMMIT');
      }
    } finally {
      await c.end();
    }
  })();
  return {
    async stop() {
      stopped = true;
      await writing;
      return txns;
    },
  };
}

/**
 * The invariants of one committed downstream state of the MariaDB transfer workload: the total is
 * constant (once the accounts are there), every transfer is whole. Returns the ledger rows seen.
 */
export function checkTransfers(
  where: string,
  accounts: number,
  balances: readonly string[],
  ledger: readonly { txn: string; amount: string }[],
): number {
  if (balances.length === 0) return 0;
  const cents = (s: string) => Math.round(Number(s) * 100);
  const total = balances.reduce((s, b) => s + cents(b), 0);
  if (total !== accounts * 100_000)
    throw new Error(`${where}: the balances sum to ${total / 100}, not ${accounts * 1000}`);
  const perTxn = new Map<string, { n: number; sum: number }>();
  for (const l of ledger) {
    const e = perTxn.get(l.txn) ?? { n: 0, sum: 0 };
    e.n++;
    e.sum += cents(l.amount);
    perTxn.set(l.txn, e);
  }
  for (const [txn, e] of perTxn) {
    if (e.n !== 2 || e.sum !== 0)
      throw new Error(`${where}: transfer ${txn} is partial or doubled (${e.n} rows, sum ${e.sum})`);
  }
  return ledger.length;
}
