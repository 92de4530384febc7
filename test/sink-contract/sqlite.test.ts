import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import type { Row } from '../../src/decode/row.ts';
import type { TableSchema } from '../../src/decode/table-schema.ts';
import { createSqliteSink } from '../../src/sink/sqlite/sqlite-sink.ts';
import { sqliteIdent, sqliteTableName } from '../../src/sink/sqlite/sqlite-table-writer.ts';
import { sqliteToText } from '../../src/sink/sqlite/sqlite-types.ts';
import { describeSinkContract } from './contract.ts';

describeSinkContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-sqlite-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sink.db');
  return {
    create: () => createSqliteSink({ uri: `sqlite://${path}`, changefeedId: 'feed-1' }),
    read: async (t: TableSchema) => readSqlite(path, t),
    atomicSnapshot: true,
    exactText: true,
    detectsSchemaMismatch: true,
  };
});

function readSqlite(path: string, t: TableSchema): Row[] {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db
      .prepare(`SELECT * FROM ${sqliteIdent(sqliteTableName(t))}`)
      .raw()
      .safeIntegers()
      .all() as unknown[][];
    return rows.map((r) => t.columns.map((c, i) => sqliteToText(r[i], c, t)));
  } finally {
    db.close();
  }
}
