import pg from 'pg';
import type { Row } from '../../src/decode/row.ts';
import { quoteTable, type TableSchema } from '../../src/decode/table-schema.ts';
import { PostgresSink } from '../../src/sink/postgres/postgres-sink.ts';
import { freshDatabase } from '../support/db.ts';
import { describeSinkContract } from './contract.ts';

describeSinkContract('postgres', async () => {
  const db = await freshDatabase('sink_pg');
  const u = new URL(db.url);
  u.password = 'Not-The-Pg-Pw-42';
  return {
    create: () => new PostgresSink({ uri: db.url, changefeedId: 'feed-1' }),
    read: (t) => readPostgres(db.url, t),
    atomicSnapshot: true,
    exactText: true,
    detectsSchemaMismatch: true,
    wrongPassword: {
      create: () => new PostgresSink({ uri: u.toString(), changefeedId: 'feed-1' }),
      password: 'Not-The-Pg-Pw-42',
    },
  };
});

/** Every column in the text form the source printed (same session settings as the source). */
async function readPostgres(url: string, t: TableSchema): Promise<Row[]> {
  const c = new pg.Client({ connectionString: url, types: { getTypeParser: () => (v: string) => v } });
  await c.connect();
  try {
    await c.query(
      "SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = postgres; SET extra_float_digits = 3; SET bytea_output = hex",
    );
    const exists = await c.query('SELECT to_regclass($1) AS r', [quoteTable(t)]);
    if (!exists.rows[0]?.r) return [];
    const r = await c.query({ text: `SELECT * FROM ${quoteTable(t)}`, rowMode: 'array' });
    return r.rows as Row[];
  } finally {
    await c.end();
  }
}
