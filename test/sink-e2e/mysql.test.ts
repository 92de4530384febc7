import { afterAll, beforeAll, describe, it } from 'vitest';
import { startMariaDb, type MariaDb } from '../support/mariadb.ts';
import { mysqlCheckpoint, readMysql } from '../sink-contract/readers.ts';
import { crashRecovery, FEED_ID, snapshotAndStream, type E2eTarget } from './workload.ts';
import { freePort } from '../support/pg-cluster.ts';

// Its own instance: the contract suite's MariaDB may run at the same time on its own port.
// The first free port from the default: a stale server (or another run) may hold it.
const PORT = await freePort(Number(process.env.TIDEMARK_TEST_E2E_MARIADB_PORT ?? 33307));
let maria: MariaDb;

beforeAll(async () => {
  maria = await startMariaDb({ port: PORT });
});
afterAll(async () => {
  await maria?.stop();
});

async function target(): Promise<E2eTarget> {
  const db = await maria.freshDatabase('e2e');
  return {
    uri: db.url,
    checkpoint: () => mysqlCheckpoint(db.url, FEED_ID),
    read: (t) => readMysql(db.url, t),
  };
}

describe('end to end into MariaDB', () => {
  it('SIGKILL 10 times under load: no loss, no duplicates', { timeout: 300_000 }, async () => {
    await crashRecovery(await target(), { kills: 10, seed: 31337 });
  });

  it(
    'snapshot with a concurrent writer, then streaming: equal to the source',
    { timeout: 180_000 },
    async () => {
      await snapshotAndStream(await target(), { seed: 9 });
    },
  );
});
