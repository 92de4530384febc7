import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type NatsServer } from '../support/nats.ts';
import {
  natsCheckpoint,
  isMarker,
  readNatsTable,
  streamMessages,
  type NatsStreamRef,
} from '../sink-contract/readers.ts';
import { crashRecovery, FEED_ID, snapshotAndStream, type E2eTarget } from './workload.ts';
import { viewWithNullGroupAndLostState } from './views.ts';
import { freePort } from '../support/pg-cluster.ts';

// Its own server: the contract suite's NATS may run at the same time on its own port.
// The first free port from the default: a stale server (or another run) may hold it.
const PORT = await freePort(Number(process.env.TIDEMARK_TEST_E2E_NATS_PORT ?? 4323));
let nats: NatsServer;

beforeAll(async () => {
  nats = await startNats({ port: PORT });
});
afterAll(async () => {
  await nats?.stop();
});

/** A consistent consumer of the stream (readers.ts): changes are applied when their marker arrives. */
function target(): { target: E2eTarget; ref: NatsStreamRef } {
  const stream = `e2e_${randomBytes(4).toString('hex')}`;
  const ref = { port: nats.port, user: nats.user, password: nats.password, stream };
  return {
    ref,
    target: {
      uri: nats.url(stream),
      checkpoint: () => natsCheckpoint(ref, FEED_ID),
      read: (t) => readNatsTable(ref, t),
    },
  };
}

/** The server kept one copy per Nats-Msg-Id: a replayed publish was de-duplicated, not stored twice. */
async function expectNoDuplicateIds(ref: NatsStreamRef): Promise<void> {
  const all = await streamMessages(ref);
  const ids = all.filter((m) => !isMarker(m)).map((m) => m.msgId);
  expect(ids.every((id) => id !== undefined)).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
}

describe('end to end into NATS JetStream', () => {
  it('SIGKILL 10 times under load: no loss, no duplicates', { timeout: 300_000 }, async () => {
    const { target: t, ref } = target();
    await crashRecovery(t, { kills: 10, seed: 4242 });
    await expectNoDuplicateIds(ref);
  });

  it(
    'snapshot with a concurrent writer, then streaming: equal to the source',
    { timeout: 180_000 },
    async () => {
      const { target: t, ref } = target();
      await snapshotAndStream(t, { seed: 10 });
      await expectNoDuplicateIds(ref);
    },
  );

  it(
    'a view with a NULL group; its state lost and restarted: a replacing snapshot, equal to the source',
    { timeout: 240_000 },
    async () => {
      await viewWithNullGroupAndLostState(target().target, { seed: 59 });
    },
  );
});
