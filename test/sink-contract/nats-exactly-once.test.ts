/**
 * The NATS sink's exactly-once rule for consumers (docs/sinks.md, "Exactly once from the
 * stream"), tested over a stream that holds everything a consumer can meet: an epoch published
 * and never committed (crash before its marker), its replay after the duplicate window (stored
 * twice), a chunked epoch aborted and written again under a new attempt, and a second writer
 * fenced out after publishing its changes. A consumer applying the rule ends equal to the
 * reference model; one applying every message does not. Also: a stream whose duplicate window
 * is shorter than the sink's replay horizon is refused.
 */
import { randomBytes } from 'node:crypto';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { Epoch, TableChanges } from '../../src/core/epoch.ts';
import { createNatsSink } from '../../src/sink/nats/nats-sink.ts';
import { startNats, type NatsServer } from '../support/nats.ts';
import { freePort } from '../support/pg-cluster.ts';
import { chunkedEpoch } from './chunked-fixture.ts';
import {
  chunksOf,
  contractEpochs,
  contractTables,
  expectedContent,
  items,
  snapshotRows,
  sortRows,
} from './fixtures.ts';
import { isMarker, natsTableFrom, streamMessages, type StreamMessage } from './readers.ts';
import { jsonRecord, replayRecords } from './file-readback.ts';

const PORT = await freePort(Number(process.env.TIDEMARK_TEST_NATS_EO_PORT ?? 4324));
let nats: NatsServer;

beforeAll(async () => {
  nats = await startNats({ port: PORT });
});
afterAll(async () => {
  await nats?.stop();
});

const MINUTE_NS = 60e9;

async function withJsm<T>(fn: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: `127.0.0.1:${nats.port}`, user: nats.user, pass: nats.password });
  try {
    return await fn(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

function at(epoch: number): { position: string; epoch: number } {
  return { position: `0/${(0x1000000 + epoch * 0x100).toString(16).toUpperCase()}`, epoch };
}

function upsertItems(epoch: number, rows: Row[]): Epoch {
  const tables: TableChanges[] = [
    { table: items, truncate: false, deletes: [], upserts: rows, partialUpdates: [], rowDeltas: [] },
  ];
  return {
    checkpoint: at(epoch),
    commitTimeMs: 1_700_000_000_000 + epoch,
    sourceChanges: rows.length,
    tables,
  };
}

/** Changes of a table whose deletes throw when read: the epoch dies after the tables before it. */
function dying(e: Epoch): Epoch {
  const failing = new Proxy([] as never[], {
    get(target, prop, receiver) {
      if (prop === Symbol.iterator) throw new Error('killed before the marker');
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  const boom: TableChanges = {
    table: contractTables[1]!,
    truncate: false,
    deletes: failing,
    upserts: [],
    partialUpdates: [],
    rowDeltas: [],
  };
  return { ...e, tables: [...e.tables, boom] };
}

describe('NATS sink: exactly once for a consumer that follows the rule', () => {
  it('refuses an existing stream whose duplicate window is shorter than the replay horizon', async () => {
    const stream = `t_${randomBytes(5).toString('hex')}`;
    await withJsm((jsm) => jsm.streams.add({ name: stream, subjects: [`${stream}_other`] })); // window: 2 min
    const sink = createNatsSink({ uri: nats.url(stream), changefeedId: 'feed-1' });
    try {
      const err = await sink.open().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SINK_UNSUITABLE', retriable: false });
      const e = err as { message: string; hint: string };
      expect(e.message).toContain(`NATS stream ${stream} has a duplicate window of 120 s`);
      expect(e.message).toContain('600 s');
      expect(e.hint).toContain(`nats stream edit ${stream} --dupe-window 10m`);
    } finally {
      await sink.close();
    }
    // Raised as the hint says, the stream is accepted.
    await withJsm((jsm) => jsm.streams.update(stream, { duplicate_window: 10 * MINUTE_NS }));
    const again = createNatsSink({ uri: nats.url(stream), changefeedId: 'feed-1' });
    try {
      expect(await again.open()).toBeNull();
    } finally {
      await again.close();
    }
  });

  it('over replays, an expired duplicate window, aborted chunk attempts and a fenced writer, the rule ends equal to the source', async () => {
    const stream = `t_${randomBytes(5).toString('hex')}`;
    const uri = nats.url(stream);
    const create = () => createNatsSink({ uri, changefeedId: 'feed-1' });
    const [e1, e2] = contractEpochs();
    const fx = chunkedEpoch();
    const e3: Epoch = { ...fx.last, checkpoint: at(3) };
    const e4 = upsertItems(4, [['40', 'four', '4.00', null]]);
    const rival4 = upsertItems(4, [['41', 'rival', '4.10', 'never committed']]);
    const e5 = upsertItems(5, [['50', 'five', '5.00', null]]);

    const first = create();
    try {
      await first.open();
      await first.writeSnapshot(contractTables, chunksOf(snapshotRows()), at(0));
      await first.commitEpoch(e1!);
      // Epoch 2's changes are published, then the process dies before the marker.
      await expect(first.commitEpoch(dying(e2!))).rejects.toThrow('killed before the marker');
    } finally {
      await first.close();
    }
    // The restart comes after the duplicate window has passed: the replay is stored again.
    await expireDuplicateWindow(stream);

    const second = create();
    const rival = create();
    try {
      expect(await second.open()).toEqual(at(1));
      await second.commitEpoch(e2!);
      // A chunked epoch 3: the first attempt aborted after one chunk, the second commits.
      const aborted = await second.beginEpoch();
      await aborted.applyChunk(fx.chunks[0]!);
      await aborted.abort();
      const writer = await second.beginEpoch();
      for (const c of fx.chunks) await writer.applyChunk(c);
      await writer.commit(e3);
      // Another process starts on the same changefeed, at epoch 3 too; the first commits 4
      // first, so the other publishes its epoch 4 and is fenced at its marker.
      expect(await rival.open()).toEqual(at(3));
      await second.commitEpoch(e4);
      await expect(rival.commitEpoch(rival4)).rejects.toMatchObject({ code: 'SINK_FENCED' });
      await second.commitEpoch(e5);
    } finally {
      await Promise.all([second.close(), rival.close()]);
    }

    const all = await streamMessages({ port: nats.port, user: nats.user, password: nats.password, stream });
    // The stream does hold what the rule has to sort out.
    const data = all.filter((m) => !isMarker(m));
    expect(new Set(data.map((m) => m.msgId)).size, 'stored duplicates').toBeLessThan(data.length);
    const attempts = new Set(data.map((m) => JSON.parse(m.data).attempt).filter(Boolean));
    expect(attempts.size, 'chunk attempts').toBe(2);
    expect(data.some((m) => m.data.includes('never committed'))).toBe(true);
    expect(all.filter(isMarker).map((m) => JSON.parse(m.data).epoch)).toEqual([0, 1, 2, 3, 4, 5]);

    const chunksAsEpochs = fx.chunks.map((tables) => ({ ...e3, tables }));
    const expected = expectedContent(snapshotRows(), [e1!, e2!, ...chunksAsEpochs, e3, e4, e5]);
    for (const t of [...contractTables]) {
      expect(sortRows(natsTableFrom(all, t)), `${t.schema}.${t.name}`).toEqual(
        expected.get(`${t.schema}.${t.name}`),
      );
    }
    // Applying every message as it comes is not enough: the stream holds more than was committed.
    expect(sortRows(naive(all))).not.toEqual(expected.get('public.items'));
  });
});

/** Every data message of `items` applied in stream order, markers ignored. */
function naive(all: readonly StreamMessage[]) {
  const recs = all
    .filter((m) => !isMarker(m))
    .map((m) => JSON.parse(m.data) as { table: { name: string } })
    .filter((o) => o.table.name === 'items')
    .map((o) => jsonRecord(o, items));
  return replayRecords(items, recs);
}

/**
 * Lets the stream forget the Msg-Ids it has seen: the window shrunk to 1 s until a probe id
 * published twice is stored twice, then restored to the sink's 10 minutes.
 */
async function expireDuplicateWindow(stream: string): Promise<void> {
  const nc = await connect({ servers: `127.0.0.1:${nats.port}`, user: nats.user, pass: nats.password });
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const info = await jsm.streams.info(stream);
    await jsm.streams.update(stream, { duplicate_window: 1e9 });
    const probe = `${stream}_probe`;
    await jsm.streams.update(stream, { subjects: [...(info.config.subjects ?? []), probe] });
    const h = headers();
    h.set('Nats-Msg-Id', 'window-probe');
    await js.publish(probe, 'first', { headers: h });
    for (let i = 0; ; i++) {
      const ack = await js.publish(probe, 'again', { headers: h });
      if (!ack.duplicate) break;
      if (i > 100) throw new Error('the duplicate window did not expire');
      await new Promise((r) => setTimeout(r, 100));
    }
    await jsm.streams.purge(stream, { filter: probe });
    await jsm.streams.update(stream, {
      duplicate_window: 10 * MINUTE_NS,
      subjects: info.config.subjects ?? [],
    });
  } finally {
    await nc.close();
  }
}
