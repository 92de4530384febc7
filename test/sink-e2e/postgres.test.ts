import pg from 'pg';
import { describe, it } from 'vitest';
import { sinkCheckpoint } from '../support/changefeed.ts';
import { freshDatabase } from '../support/db.ts';
import { readPostgres } from '../sink-contract/readers.ts';
import { crashRecovery, FEED_ID, snapshotAndStream, twoProcesses, type E2eTarget } from './workload.ts';
import { viewWithNullGroupAndLostState } from './views.ts';

async function target(): Promise<E2eTarget & Required<Pick<E2eTarget, 'holdFirstCommit'>>> {
  const db = await freshDatabase('e2e_dst');
  return {
    uri: db.url,
    checkpoint: () => sinkCheckpoint(db.url, FEED_ID),
    read: (t) => readPostgres(db.url, t),
    // A first checkpoint is an INSERT into tidemark.checkpoints, which this lock mode makes wait.
    holdFirstCommit: async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query('BEGIN; LOCK TABLE tidemark.checkpoints IN SHARE ROW EXCLUSIVE MODE');
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

describe('end to end into PostgreSQL', () => {
  it('SIGKILL 10 times under load: no loss, no duplicates', { timeout: 300_000 }, async () => {
    await crashRecovery(await target(), { kills: 10, seed: 5150 });
  });

  it(
    'snapshot with a concurrent writer, then streaming: equal to the source',
    { timeout: 180_000 },
    async () => {
      await snapshotAndStream(await target(), { seed: 11 });
    },
  );

  it(
    'a view with a NULL group; its state lost and restarted: a replacing snapshot, equal to the source',
    { timeout: 240_000 },
    async () => {
      await viewWithNullGroupAndLostState(await target(), { seed: 51 });
    },
  );

  it(
    'two processes on one changefeed under load: one stops with SINK_FENCED, the sink equals the source',
    { timeout: 240_000 },
    async () => {
      await twoProcesses(await target(), { seed: 52 });
    },
  );
});
