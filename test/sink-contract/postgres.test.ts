import { PostgresSink } from '../../src/sink/postgres/postgres-sink.ts';
import { freshDatabase } from '../support/db.ts';
import { describeSinkContract } from './contract.ts';
import { readPostgres } from './readers.ts';

describeSinkContract(
  'postgres',
  async () => {
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
  },
  { unmappableType: false, schemaMismatch: true, wrongPassword: true, concurrentSnapshots: true },
);
