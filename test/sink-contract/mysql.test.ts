import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlSink } from '../../src/sink/mysql/mysql-sink.ts';
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
import { readMysql } from './readers.ts';

const PORT = Number(process.env.TIDEMARK_TEST_MARIADB_PORT ?? 33306);
let maria: MariaDb;

beforeAll(async () => {
  maria = await startMariaDb({ port: PORT });
});
afterAll(async () => {
  await maria?.stop();
});

describeSinkContract(
  'mysql (MariaDB)',
  async () => {
    const db = await maria.freshDatabase('sink');
    const wrong = db.url.replace(`:${maria.password}@`, ':not-the-Pw-123@');
    return {
      create: () => createMysqlSink({ uri: db.url, changefeedId: 'feed-1' }),
      read: (t) => readMysql(db.url, t),
      atomicSnapshot: true,
      exactText: false,
      // Values MySQL has no type for (NaN, ±Infinity, infinity/BC dates, 24:00:00, geometry).
      rejectsTypes: [
        'c_numeric',
        'c_float4',
        'c_float8',
        'c_date',
        'c_time',
        'c_timestamp',
        'c_timestamptz',
        'c_point',
      ],
      detectsSchemaMismatch: true,
      unmappable: col('location', 600, 'point'),
      wrongPassword: {
        create: () => createMysqlSink({ uri: wrong, changefeedId: 'feed-1' }),
        password: 'not-the-Pw-123',
      },
    };
  },
  { unmappableType: true, schemaMismatch: true, wrongPassword: true },
);

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
