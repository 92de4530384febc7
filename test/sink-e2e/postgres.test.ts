import { describe, it } from 'vitest';
import { sinkCheckpoint } from '../support/changefeed.ts';
import { freshDatabase } from '../support/db.ts';
import { readPostgres } from '../sink-contract/readers.ts';
import { crashRecovery, FEED_ID, snapshotAndStream, type E2eTarget } from './workload.ts';

async function target(): Promise<E2eTarget> {
  const db = await freshDatabase('e2e_dst');
  return {
    uri: db.url,
    checkpoint: () => sinkCheckpoint(db.url, FEED_ID),
    read: (t) => readPostgres(db.url, t),
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
});
