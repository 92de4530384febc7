/**
 * Readers checking the MariaDB transfer workload's invariants (`checkTransfers`) in one snapshot
 * of each downstream store, as a downstream reader would: PostgreSQL in REPEATABLE READ, SQLite in
 * one read transaction, MySQL in a consistent-snapshot transaction. Each returns the ledger rows
 * seen (0 while the tables are not there yet) and throws on a broken invariant.
 */
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { mysqlIdent, mysqlTableName } from '../../src/sink/mysql/mysql-table-writer.ts';
import { sqliteIdent, sqliteTableName } from '../../src/sink/sqlite/sqlite-table-writer.ts';
import { withClient } from './changefeed.ts';
import { checkTransfers } from './transfer-workload.ts';

/** `schema`: the MySQL source database (the PostgreSQL schema the tables land in). */
export async function checkTransfersPostgres(url: string, schema: string, accounts: number): Promise<number> {
  return withClient(url, async (c) => {
    const has = await c.query('SELECT to_regclass($1) AS r', [`"${schema}".ledger`]);
    if (!has.rows[0]?.r) return 0;
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    try {
      const acc = await c.query(`SELECT balance::text AS b FROM "${schema}".accounts`);
      const led = await c.query(`SELECT txn::text AS txn, amount::text AS amount FROM "${schema}".ledger`);
      return checkTransfers(
        'postgres',
        accounts,
        acc.rows.map((r: { b: string }) => r.b),
        led.rows,
      );
    } finally {
      await c.query('COMMIT');
    }
  });
}

export function checkTransfersSqlite(path: string, schema: string, accounts: number): number {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch {
    return 0;
  }
  try {
    const t = (name: string) => sqliteIdent(sqliteTableName({ schema, name }));
    return db.transaction(() => {
      const acc = db.prepare(`SELECT CAST(balance AS TEXT) AS b FROM ${t('accounts')}`).all() as {
        b: string;
      }[];
      const led = db
        .prepare(`SELECT CAST(txn AS TEXT) AS txn, CAST(amount AS TEXT) AS amount FROM ${t('ledger')}`)
        .all() as { txn: string; amount: string }[];
      return checkTransfers(
        'sqlite',
        accounts,
        acc.map((r) => r.b),
        led,
      );
    })();
  } catch (err) {
    if (err instanceof Error && /no such table/.test(err.message)) return 0;
    throw err;
  } finally {
    db.close();
  }
}

/** `url`: the MySQL sink's database; `schema`: the source database (part of the table names). */
export async function checkTransfersMysql(url: string, schema: string, accounts: number): Promise<number> {
  const c = await mysql.createConnection({ uri: url });
  try {
    const t = (name: string) => mysqlIdent(mysqlTableName({ schema, name }));
    await c.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    try {
      const [acc] = await c.query(`SELECT CAST(balance AS CHAR) AS b FROM ${t('accounts')}`);
      const [led] = await c.query(
        `SELECT CAST(txn AS CHAR) AS txn, CAST(amount AS CHAR) AS amount FROM ${t('ledger')}`,
      );
      return checkTransfers(
        'mysql',
        accounts,
        (acc as { b: string }[]).map((r) => r.b),
        led as { txn: string; amount: string }[],
      );
    } finally {
      await c.query('COMMIT');
    }
  } catch (err) {
    // Not created yet; or created (re-created after a kill in the snapshot) after this read's
    // snapshot began, which InnoDB cannot show it (ER_TABLE_DEF_CHANGED): the next read will.
    const errno = (err as { errno?: number }).errno;
    if (errno === 1146 || errno === 1412) return 0;
    throw err;
  } finally {
    await c.end();
  }
}

/** Checks the invariants in every read until `stop()`; resolves with the reads and the most ledger rows seen. */
export function invariantReader(checks: (() => Promise<number> | number)[]): {
  stop(): Promise<{ reads: number; maxLedger: number }>;
} {
  let reading = true;
  let reads = 0;
  let maxLedger = 0;
  const done = (async () => {
    while (reading) {
      for (const check of checks) maxLedger = Math.max(maxLedger, await check());
      reads++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  // A broken invariant ends the loop; `stop()` reports it (no unhandled rejection meanwhile).
  done.catch(() => {});
  return {
    async stop() {
      reading = false;
      await done;
      return { reads, maxLedger };
    },
  };
}
