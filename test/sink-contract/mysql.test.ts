import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlSink } from '../../src/sink/mysql/mysql-sink.ts';
import { startMariaDb, type MariaDb } from '../support/mariadb.ts';
import { describeSinkContract } from './contract.ts';
import {
  chunksOf,
  col,
  contractEpochs,
  contractTables,
  events,
  expectedContent,
  items,
  snapshotRows,
  sortRows,
  table,
} from './fixtures.ts';
import { mysqlCheckpoint, readMysql } from './readers.ts';
import type { TableChanges } from '../../src/core/epoch.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { freePort } from '../support/pg-cluster.ts';

// The first free port from the default: a stale server (or another run) may hold it.
const PORT = await freePort(Number(process.env.TIDEMARK_TEST_MARIADB_PORT ?? 33306));
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
  { unmappableType: true, schemaMismatch: true, wrongPassword: true, concurrentSnapshots: true },
);

/** Writes the contract's snapshot and epochs through `sink`; the database at `url` then holds their content. */
async function expectContractLands(sink: ReturnType<typeof createMysqlSink>, url: string): Promise<void> {
  try {
    await sink.open();
    await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), { position: '0/1000000', epoch: 0 });
    for (const e of contractEpochs()) await sink.commitEpoch(e);
  } finally {
    await sink.close();
  }
  const expected = expectedContent(snapshotRows(), contractEpochs());
  for (const t of contractTables)
    expect(sortRows(await readMysql(url, t))).toEqual(expected.get(`${t.schema}.${t.name}`));
}

describe('mysql sink with max-txn-rows', () => {
  it('commits an epoch in chunks and ends at the same content and checkpoint', async () => {
    const db = await maria.freshDatabase('chunks');
    const sink = createMysqlSink({ uri: `${db.url}?max-txn-rows=2`, changefeedId: 'feed-1' });
    expect(sink.guarantee).toBe('effectively-once');
    await expectContractLands(sink, db.url);
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

describe('mysql sink under a statement limit an operator set (MariaDB, per user)', () => {
  it('lifts it for its own sessions: a snapshot and the epochs land, not cancelled on every retry', async () => {
    const db = await maria.freshDatabase('limited');
    await maria.query(
      `CREATE USER IF NOT EXISTS 'tm_limited'@'127.0.0.1' IDENTIFIED BY 'pw' WITH MAX_STATEMENT_TIME 0.001`,
    );
    await maria.query(`GRANT ALL ON \`${db.name}\`.* TO 'tm_limited'@'127.0.0.1'`);
    const url = new URL(db.url);
    url.username = 'tm_limited';
    url.password = 'pw';
    const sink = createMysqlSink({ uri: url.toString(), changefeedId: 'feed-1' });
    await expectContractLands(sink, db.url);
  });
});

describe('mysql sink: columns added in the middle of an epoch written in chunks', () => {
  const changes = (t: TableSchema, c: Partial<TableChanges>): TableChanges => ({
    table: t,
    truncate: false,
    deletes: [],
    upserts: [],
    partialUpdates: [],
    rowDeltas: [],
    ...c,
  });
  const wider = { ...items, columns: [...items.columns, col('stock', 23, 'integer')] };
  const widerEvents = { ...events, columns: [...events.columns, col('source', 25, 'text')] };
  const last = { ...contractEpochs()[0]!, tables: [] };

  async function setup() {
    const db = await maria.freshDatabase('chunkddl');
    const sink = createMysqlSink({ uri: db.url, changefeedId: 'feed-1' });
    await sink.open();
    await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), { position: '0/1000000', epoch: 0 });
    return { db, sink };
  }

  it('a table the open transaction has not written is altered beside it, and the epoch commits', async () => {
    const { db, sink } = await setup();
    try {
      const writer = await sink.beginEpoch();
      await writer.applyChunk([changes(items, { upserts: [['7', 'lime', '0.50', null]] })]);
      await writer.applyChunk([
        changes(widerEvents, { rowDeltas: [{ row: ['buy', '2', 'web'], count: 1 }] }),
      ]);
      expect(await readMysql(db.url, items)).toHaveLength(4);
      await writer.commit(last);
    } finally {
      await sink.close();
    }
    expect(sortRows(await readMysql(db.url, widerEvents))).toEqual([
      ['buy', '2', 'web'],
      ['click', '1', null],
      ['click', '1', null],
      ['view', null, null],
    ]);
    expect(await mysqlCheckpoint(db.url, 'feed-1')).toEqual({ position: '0/1000100', epoch: 1 });
  });

  it('a table it wrote cannot be altered under it: rolled back, column added, retriable; the retry commits', async () => {
    const { db, sink } = await setup();
    const chunk1 = [changes(items, { upserts: [['7', 'lime', '0.50', null]] })];
    const chunk2 = [changes(wider, { upserts: [['8', 'plum', '1.00', null, '3']] })];
    try {
      const writer = await sink.beginEpoch();
      await writer.applyChunk(chunk1);
      const err = await writer.applyChunk(chunk2).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SINK_WRITE_FAILED', retriable: true });
      expect(String(err)).toContain('gained columns');
      await writer.abort();
      expect(await readMysql(db.url, wider)).toHaveLength(4); // the column exists, no row of the epoch
      expect(await mysqlCheckpoint(db.url, 'feed-1')).toEqual({ position: '0/1000000', epoch: 0 });

      const retry = await sink.beginEpoch();
      await retry.applyChunk(chunk1);
      await retry.applyChunk(chunk2);
      await retry.commit(last);
    } finally {
      await sink.close();
    }
    const rows = sortRows(await readMysql(db.url, wider));
    expect(rows.map((r) => [r[0], r[4]])).toEqual([
      ['1', null],
      ['2', null],
      ['3', null],
      ['4', null],
      ['7', null],
      ['8', '3'],
    ]);
  });
});

describe('mysql sink: keys compare exactly', () => {
  // shared/hostile-schema.sql's `padded`: text keys that differ only in trailing spaces.
  const padded = table('public', 'padded', [
    col('k', 1043, 'character varying(5)', { key: true }),
    col('k2', 25, 'text', { key: true }),
    col('v', 25, 'text'),
    col('c', 1042, 'character(4)'),
  ]);
  const bag = table('public', 'bag', [col('s', 25, 'text'), col('n', 23, 'integer')], 16500);

  it("'a' and 'a ' are two keys (and two rows of a keyless table), as in PostgreSQL", async () => {
    const db = await maria.freshDatabase('padded');
    const sink = createMysqlSink({ uri: db.url, changefeedId: 'feed-1' });
    const rows = [
      ['a', 'x', '1', null],
      ['a  ', 'x', '2', null],
      ['a', 'x ', '3', null],
    ];
    try {
      await sink.open();
      await sink.writeSnapshot(
        [padded, bag],
        chunksOf([
          { table: padded, rows },
          {
            table: bag,
            rows: [
              ['a', '1'],
              ['a ', '1'],
            ],
          },
        ]),
        { position: '0/1', epoch: 0 },
      );
      expect(sortRows(await readMysql(db.url, padded))).toEqual(sortRows(rows));
      await sink.commitEpoch({
        checkpoint: { position: '0/2', epoch: 1 },
        commitTimeMs: 1_700_000_000_000,
        sourceChanges: 3,
        tables: [
          {
            table: padded,
            truncate: false,
            deletes: [['a', 'x ', null, null]],
            upserts: [['a  ', 'x', '2*', null]],
            partialUpdates: [],
            rowDeltas: [],
          },
          {
            table: bag,
            truncate: false,
            deletes: [],
            upserts: [],
            partialUpdates: [],
            rowDeltas: [{ row: ['a ', '1'], count: -1 }],
          },
        ],
      });
    } finally {
      await sink.close();
    }
    expect(sortRows(await readMysql(db.url, padded))).toEqual(
      sortRows([
        ['a', 'x', '1', null],
        ['a  ', 'x', '2*', null],
      ]),
    );
    expect(await readMysql(db.url, bag)).toEqual([['a', '1']]);
  });
});
