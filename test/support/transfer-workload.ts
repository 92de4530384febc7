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
