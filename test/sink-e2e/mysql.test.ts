import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startMariaDb, type MariaDb } from '../support/mariadb.ts';
import { mysqlCheckpoint, readMysql } from '../sink-contract/readers.ts';
import { crashRecovery, FEED_ID, snapshotAndStream, twoProcesses, type E2eTarget } from './workload.ts';
import { viewWithNullGroupAndLostState } from './views.ts';
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

async function target(): Promise<E2eTarget & Required<Pick<E2eTarget, 'holdFirstCommit'>>> {
  const db = await maria.freshDatabase('e2e');
  return {
    uri: db.url,
    checkpoint: () => mysqlCheckpoint(db.url, FEED_ID),
    read: (t) => readMysql(db.url, t),
    // A shared lock on the changefeed's missing row locks its gap: the first checkpoint's INSERT waits.
    holdFirstCommit: async () => {
      const c = await mysql.createConnection({ uri: db.url });
      await c.query('BEGIN');
      await c.query('SELECT * FROM tidemark_checkpoints WHERE changefeed = ? LOCK IN SHARE MODE', [FEED_ID]);
      let held = true;
      return async () => {
        if (!held) return;
        held = false;
        await c.query('ROLLBACK');
        await c.end();
      };
    },
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

  it(
    'a view with a NULL group; its state lost and restarted: a replacing snapshot, equal to the source',
    { timeout: 240_000 },
    async () => {
      await viewWithNullGroupAndLostState(await target(), { seed: 55 });
    },
  );

  it(
    'two processes on one changefeed under load: one stops with SINK_FENCED, the sink equals the source',
    { timeout: 240_000 },
    async () => {
      await twoProcesses(await target(), { seed: 56 });
    },
  );
});
