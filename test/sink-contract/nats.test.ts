import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsSink } from '../../src/sink/nats/nats-sink.ts';
import { startNats, type NatsServer } from '../support/nats.ts';
import { describeSinkContract } from './contract.ts';
import { chunksOf, contractEpochs, contractTables, snapshotRows } from './fixtures.ts';
import { readNatsTable, streamMessages } from './readers.ts';
import type { TableChanges } from '../../src/core/epoch.ts';
import { freePort } from '../support/pg-cluster.ts';

// The first free port from the default: a stale server (or another run) may hold it.
const PORT = await freePort(Number(process.env.TIDEMARK_TEST_NATS_PORT ?? 4322));
let nats: NatsServer;

beforeAll(async () => {
  nats = await startNats({ port: PORT });
});
afterAll(async () => {
  await nats?.stop();
});

function freshStream(): string {
  return `t_${randomBytes(5).toString('hex')}`;
}

describeSinkContract(
  'nats (tidemark-json)',
  async () => {
    const stream = freshStream();
    const uri = nats.url(stream);
    return {
      create: () => createNatsSink({ uri, changefeedId: 'feed-1' }),
      read: (t) => readNatsTable({ port: nats.port, user: nats.user, password: nats.password, stream }, t),
      atomicSnapshot: true,
      exactText: false,
      detectsSchemaMismatch: false,
      wrongPassword: {
        create: () =>
          createNatsSink({
            uri: uri.replace(`:${nats.password}@`, ':Wrong-Nats-Pw@'),
            changefeedId: 'feed-1',
          }),
        password: 'Wrong-Nats-Pw',
      },
    };
  },
  { unmappableType: false, schemaMismatch: false, wrongPassword: true, concurrentSnapshots: true },
);

describe('nats sink', () => {
  it('a replayed epoch is de-duplicated by Msg-Id; formats carry their documented fields', async () => {
    const stream = freshStream();
    for (const format of ['debezium-json', 'canal-json', 'tidemark-json']) {
      const sink = createNatsSink({
        uri: nats.url(stream, `format=${format}&subject={stream}.${format}.{table}`),
        changefeedId: format,
      });
      try {
        await sink.open();
        await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), {
          position: '0/1000000',
          epoch: 0,
        });
        await sink.commitEpoch(contractEpochs()[0]!);
      } finally {
        await sink.close();
      }
    }
    const before = await messages(stream);
    // A crash after publishing epoch 2's changes but before its marker…
    const tidemarkJson = nats.url(stream, 'format=tidemark-json&subject={stream}.tidemark-json.{table}');
    const epochTwo = contractEpochs()[1]!;
    const crashed = createNatsSink({ uri: tidemarkJson, changefeedId: 'tidemark-json' });
    try {
      expect(await crashed.open()).toEqual({ position: '0/1000100', epoch: 1 });
      const dying = { ...epochTwo, tables: [...epochTwo.tables, failingChanges()] };
      await expect(crashed.commitEpoch(dying)).rejects.toThrow('killed before the marker');
    } finally {
      await crashed.close();
    }
    const published = await messages(stream);
    expect(published.length).toBeGreaterThan(before.length);
    // …and the restart replays the same epoch: the stream drops its changes as duplicates.
    const replay = createNatsSink({ uri: tidemarkJson, changefeedId: 'tidemark-json' });
    try {
      expect(await replay.open()).toEqual({ position: '0/1000100', epoch: 1 });
      await replay.commitEpoch(epochTwo);
    } finally {
      await replay.close();
    }
    expect((await messages(stream)).length, 'only the marker is new').toBe(published.length + 1);
    const deb = before.filter((m) => m.subject.includes('debezium')).map((m) => JSON.parse(m.data));
    expect(deb.find((m) => m.op === 'd')).toMatchObject({
      before: { id: 2 },
      after: null,
      source: { lsn: '0/1000100', table: 'items' },
    });
    expect(deb.find((m) => m.op === 'r' && m.after.id === 1)).toMatchObject({
      after: { name: 'apple', price: '1.50' },
    });
    const canal = before.filter((m) => m.subject.includes('canal')).map((m) => JSON.parse(m.data));
    expect(canal.find((m) => m.type === 'DELETE')).toMatchObject({
      database: 'public',
      table: 'items',
      pkNames: ['id'],
      data: [{ id: '2' }],
    });
    const markers = before.filter((m) => m.subject.startsWith('_tidemark.'));
    expect(markers.map((m) => JSON.parse(m.data).epoch).sort()).toEqual([0, 0, 0, 1, 1, 1]);
  });
});

describe('nats sink: an epoch cut differently after a crash', () => {
  it('the aborted attempt never swallows the changes of a later epoch ending at the same position', async () => {
    const stream = freshStream();
    const uri = nats.url(stream);
    const ref = { port: nats.port, user: nats.user, password: nats.password, stream };
    const items = contractTables[0]!;
    const deleteTwo = {
      table: items,
      truncate: false,
      deletes: [['2', null, null, null]],
      upserts: [],
      partialUpdates: [],
      rowDeltas: [],
    };
    // The crash: epoch 1 = (0/1000000, 0/1000200] publishes its changes, then dies before the
    // marker (here: its input fails after the first table).
    const failing = new Proxy([] as never[], {
      get(target, prop, receiver) {
        if (prop === Symbol.iterator) throw new Error('killed before the marker');
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const crashed = createNatsSink({ uri, changefeedId: 'feed-1' });
    try {
      await crashed.open();
      await crashed.writeSnapshot(contractTables, chunksOf(snapshotRows()), {
        position: '0/1000000',
        epoch: 0,
      });
      const attempt = {
        checkpoint: { position: '0/1000200', epoch: 1 },
        commitTimeMs: 1_700_000_000_000,
        sourceChanges: 1,
        tables: [deleteTwo, { ...deleteTwo, table: contractTables[1]!, deletes: failing }],
      };
      await expect(crashed.commitEpoch(attempt)).rejects.toThrow('killed before the marker');
    } finally {
      await crashed.close();
    }
    // The restart cuts epoch 1 earlier, and epoch 2 ends where the aborted attempt ended, with
    // the same change: it must not be taken for a duplicate of the aborted one.
    const restarted = createNatsSink({ uri, changefeedId: 'feed-1' });
    try {
      expect(await restarted.open()).toEqual({ position: '0/1000000', epoch: 0 });
      await restarted.commitEpoch({
        checkpoint: { position: '0/1000100', epoch: 1 },
        commitTimeMs: 1_700_000_000_000,
        sourceChanges: 0,
        tables: [],
      });
      await restarted.commitEpoch({
        checkpoint: { position: '0/1000200', epoch: 2 },
        commitTimeMs: 1_700_000_000_000,
        sourceChanges: 1,
        tables: [deleteTwo],
      });
    } finally {
      await restarted.close();
    }
    const ids = (await streamMessages(ref)).map((m) => m.data).filter((d) => d.includes('"op":"delete"'));
    expect(ids).toHaveLength(2); // the aborted attempt's and epoch 2's
    expect((await readNatsTable(ref, items)).map((r) => r[0]).sort()).toEqual(['1', '3', '4']);
  });
});

/** Changes of a table whose deletes throw when read: the epoch dies after the tables before it. */
function failingChanges(): TableChanges {
  const failing = new Proxy([] as never[], {
    get(target, prop, receiver) {
      if (prop === Symbol.iterator) throw new Error('killed before the marker');
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  return {
    table: contractTables[1]!,
    truncate: false,
    deletes: failing,
    upserts: [],
    partialUpdates: [],
    rowDeltas: [],
  };
}

async function messages(stream: string): Promise<{ subject: string; data: string; seq: number }[]> {
  return streamMessages({ port: nats.port, user: nats.user, password: nats.password, stream });
}

describe('nats routing rules', () => {
  it('routes tables by pattern to their own subject templates; the first matching rule wins', async () => {
    const stream = freshStream();
    const route = (r: string) => `route=${encodeURIComponent(r)}`;
    const sink = createNatsSink({
      uri: nats.url(
        stream,
        [route('public.item*:{stream}.catalog.{table}'), route('public.*:{stream}.other.{table}')].join('&'),
      ),
      changefeedId: 'routed',
    });
    try {
      await sink.open();
      await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), { position: '0/1000000', epoch: 0 });
    } finally {
      await sink.close();
    }
    const subjects = [...new Set((await messages(stream)).map((m) => m.subject))].filter(
      (s) => !s.startsWith('_tidemark.'),
    );
    // items matches both rules: the first wins; events the second; shop.order_lines neither,
    // so it takes the default `subject` template.
    expect(subjects.sort()).toEqual(
      [`${stream}.catalog.items`, `${stream}.other.events`, `${stream}.shop.order_lines`].sort(),
    );
  });

  it('refuses a malformed rule with a clear error', () => {
    expect(() =>
      createNatsSink({ uri: nats.url(freshStream(), 'route=nocolon'), changefeedId: 'x' }),
    ).toThrow(/route "nocolon": expected <table pattern>:<subject template>/);
  });
});
