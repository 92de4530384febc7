import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../src/decode/row.ts';
import type { TableSchema } from '../../src/decode/table-schema.ts';
import { createMysqlSink } from '../../src/sink/mysql/mysql-sink.ts';
import { mysqlIdent, mysqlTableName } from '../../src/sink/mysql/mysql-table-writer.ts';
import { pgTypeKind } from '../../src/sink/shared/pg-type-kind.ts';
import { startMariaDb, type MariaDb } from '../support/mariadb.ts';
import { describeSinkContract } from './contract.ts';
import {
  chunksOf,
  col,
  contractEpochs,
  contractTables,
  expectedContent,
  snapshotRows,
  sortRows,
} from './fixtures.ts';
import { jsonArrayToPg } from './json-readback.ts';

const PORT = Number(process.env.TIDEMARK_TEST_MARIADB_PORT ?? 33306);
let maria: MariaDb;

beforeAll(async () => {
  maria = await startMariaDb({ port: PORT });
});
afterAll(async () => {
  await maria?.stop();
});

describeSinkContract('mysql (MariaDB)', async () => {
  const db = await maria.freshDatabase('sink');
  const wrong = db.url.replace(`:${maria.password}@`, ':not-the-Pw-123@');
  return {
    create: () => createMysqlSink({ uri: db.url, changefeedId: 'feed-1' }),
    read: (t) => readMysql(db.url, t),
    atomicSnapshot: true,
    exactText: false,
    detectsSchemaMismatch: true,
    unmappable: col('location', 600, 'point'),
    wrongPassword: {
      create: () => createMysqlSink({ uri: wrong, changefeedId: 'feed-1' }),
      password: 'not-the-Pw-123',
    },
  };
});

describe('mysql sink with max-txn-rows', () => {
  it('commits an epoch in chunks and ends at the same content and checkpoint', async () => {
    const db = await maria.freshDatabase('chunks');
    const sink = createMysqlSink({ uri: `${db.url}?max-txn-rows=2`, changefeedId: 'feed-1' });
    expect(sink.guarantee).toBe('effectively-once');
    try {
      await sink.open();
      await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), { position: '0/1000000', epoch: 0 });
      for (const e of contractEpochs()) await sink.commitEpoch(e);
    } finally {
      await sink.close();
    }
    const expected = expectedContent(snapshotRows(), contractEpochs());
    for (const t of contractTables)
      expect(sortRows(await readMysql(db.url, t))).toEqual(expected.get(`${t.schema}.${t.name}`));
  });

  it('refuses a numeric value that would be rounded', async () => {
    const db = await maria.freshDatabase('range');
    const sink = createMysqlSink({ uri: db.url, changefeedId: 'feed-1' });
    try {
      await sink.open();
      const t = contractTables[0]!;
      const err = await sink
        .writeSnapshot([t], chunksOf([{ table: t, rows: [['1', 'a', '1.234', null]] }]), {
          position: '0/1',
          epoch: 0,
        })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SINK_VALUE_OUT_OF_RANGE' });
      expect(String(err)).toContain('public.items.price');
    } finally {
      await sink.close();
    }
    const again = createMysqlSink({ uri: db.url, changefeedId: 'feed-1' });
    try {
      expect(await again.open()).toBeNull();
    } finally {
      await again.close();
    }
  });
});

async function readMysql(url: string, t: TableSchema): Promise<Row[]> {
  const conn = await mysql.createConnection({
    uri: url,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    rowsAsArray: true,
    // Raw bytes for every column; toPgText decides per PostgreSQL type.
    typeCast: (field) => field.buffer(),
  });
  try {
    const [rows] = await conn.query(`SELECT * FROM ${mysqlIdent(mysqlTableName(t))}`);
    return (rows as unknown[][]).map((r) => t.columns.map((_, i) => toPgText(r[i], t, i)));
  } catch (err) {
    if ((err as { errno?: number }).errno === 1146) return [];
    throw err;
  } finally {
    await conn.end();
  }
}

function toPgText(v: unknown, t: TableSchema, i: number): string | null {
  if (v === null || v === undefined) return null;
  const column = t.columns[i]!;
  const text = (v as Buffer).toString('utf8');
  switch (pgTypeKind(column, t)) {
    case 'bool':
      return text === '1' ? 't' : 'f';
    case 'bytea':
      return `\\x${(v as Buffer).toString('hex')}`;
    case 'timestamptz':
      return `${text}+00`;
    case 'array':
      return jsonArrayToPg(JSON.parse(text));
    default:
      return text;
  }
}
