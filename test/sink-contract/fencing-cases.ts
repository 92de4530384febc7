/**
 * One writer per changefeed (sink.ts "One writer"), registered for every sink by
 * `describeSinkContract`: two instances opened on the same changefeed, as two processes would
 * be; whichever commits second is fenced (SINK_FENCED) and nothing of its epoch is visible to a
 * reader of the store. Also the replacing snapshot a runtime takes when it cannot continue from
 * the sink's checkpoint (view state lost): later epoch, old data replaced, older writers fenced.
 */
import { expect, it } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import type { Epoch, SnapshotRows } from '../../src/core/epoch.ts';
import type { Sink } from '../../src/sink/sink.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import type { SinkFactory, SinkUnderTest } from './contract.ts';
import {
  chunksOf,
  contractEpochs,
  contractTables,
  expectedContent,
  items,
  snapshotRows,
  sortRows,
} from './fixtures.ts';

const SNAPSHOT_AT = { position: '0/1000000', epoch: 0 };

/** Epoch 1 as another writer would cut it: other changes, another end. */
function rivalEpochOne(): Epoch {
  return {
    checkpoint: { position: '0/1000180', epoch: 1 },
    commitTimeMs: 1_700_000_000_900,
    sourceChanges: 1,
    tables: [
      {
        table: items,
        truncate: false,
        deletes: [['1', null, null, null]],
        upserts: [['99', 'rival', '9.00', 'must never be visible']],
        partialUpdates: [],
        rowDeltas: [],
      },
    ],
  };
}

/** Snapshot chunks that take turns with other work (each waits a tick), so two snapshots interleave. */
async function* slowly(list: SnapshotRows[]): AsyncIterable<SnapshotRows> {
  for (const c of list) {
    await new Promise((r) => setImmediate(r));
    yield c;
  }
}

export function fencingCases(factory: SinkFactory, applies: { concurrentSnapshots: boolean }): void {
  it('two instances on one changefeed: the second to commit is fenced and nothing of its epoch is visible', async () => {
    const sut = await factory();
    const first = await withSnapshot(sut);
    const second = sut.create();
    const third = sut.create();
    try {
      expect(await second.open()).toEqual(SNAPSHOT_AT);
      expect(await third.open()).toEqual(SNAPSHOT_AT);
      const [one] = contractEpochs();
      await first.commitEpoch(one!);
      const afterOne = await readAll(sut);

      const err = await second.commitEpoch(rivalEpochOne()).catch((e: unknown) => e);
      expectFenced(err, { epoch: 1, position: '0/1000100' });
      expect(await readAll(sut), 'the fenced epoch left nothing').toEqual(afterOne);

      // A chunked epoch is fenced as well, whichever of its calls finds out.
      const writer = await third.beginEpoch();
      const chunked = await writer
        .applyChunk(rivalEpochOne().tables)
        .then(() => writer.commit({ ...rivalEpochOne(), tables: [] }))
        .catch((e: unknown) => e);
      await writer.abort();
      expectFenced(chunked, { epoch: 1, position: '0/1000100' });
      expect(await readAll(sut), 'the fenced chunks left nothing').toEqual(afterOne);

      // The fenced instance stays fenced; the first goes on.
      expectFenced(await second.commitEpoch(contractEpochs()[1]!).catch((e: unknown) => e), {
        epoch: 1,
        position: '0/1000100',
      });
      await first.commitEpoch(contractEpochs()[1]!);
    } finally {
      await Promise.all([first.close(), second.close(), third.close()]);
    }
    const expected = expectedContent(snapshotRows(), contractEpochs());
    const got = await readAll(sut);
    for (const t of contractTables) expect(got.get(key(t)), key(t)).toEqual(expected.get(key(t)));
    const again = sut.create();
    try {
      expect(await again.open()).toEqual({ position: '0/1000200', epoch: 2 });
    } finally {
      await again.close();
    }
  });

  it('two instances committing the same epoch at once: exactly one commits, the other is fenced', async () => {
    const sut = await factory();
    const setup = await withSnapshot(sut);
    await setup.close();
    const a = sut.create();
    const b = sut.create();
    try {
      await a.open();
      await b.open();
      const results = await Promise.allSettled([
        a.commitEpoch(contractEpochs()[0]!),
        b.commitEpoch(rivalEpochOne()),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatchObject({ code: 'SINK_FENCED', retriable: false });
      const winner = results[0]!.status === 'fulfilled' ? contractEpochs()[0]! : rivalEpochOne();
      const expected = expectedContent(snapshotRows(), [winner]);
      const got = await readAll(sut);
      for (const t of contractTables) expect(got.get(key(t)), key(t)).toEqual(expected.get(key(t)));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('two instances racing the first snapshot: the second is fenced, the first one stays', async () => {
    const sut = await factory();
    const a = sut.create();
    const b = sut.create();
    try {
      expect(await a.open()).toBeNull();
      expect(await b.open()).toBeNull();
      await a.writeSnapshot(contractTables, chunksOf(snapshotRows()), SNAPSHOT_AT);
      const rival: SnapshotRows[] = [{ table: items, rows: [['42', 'rival', '1.00', 'never visible']] }];
      const err = await b
        .writeSnapshot(contractTables, chunksOf(rival), { position: '0/1000010', epoch: 0 })
        .catch((e: unknown) => e);
      expectFenced(err, SNAPSHOT_AT);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    const expected = expectedContent(snapshotRows(), []);
    const got = await readAll(sut);
    for (const t of contractTables) expect(got.get(key(t)), key(t)).toEqual(expected.get(key(t)));
  });

  if (applies.concurrentSnapshots) {
    it('two instances writing the first snapshot at once: exactly one commits, the other is fenced', async () => {
      const sut = await factory();
      const a = sut.create();
      const b = sut.create();
      try {
        expect(await a.open()).toBeNull();
        expect(await b.open()).toBeNull();
        const rival: SnapshotRows[] = [{ table: items, rows: [['42', 'rival', '1.00', 'never visible']] }];
        const results = await Promise.allSettled([
          a.writeSnapshot(contractTables, slowly(snapshotRows()), SNAPSHOT_AT),
          b.writeSnapshot(contractTables, slowly(rival), { position: '0/1000010', epoch: 0 }),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        expect(lost[0], String(lost[0])).toMatchObject({ code: 'SINK_FENCED', retriable: false });
        const winner = results[0]!.status === 'fulfilled' ? snapshotRows() : rival;
        const expected = expectedContent(winner, []);
        const got = await readAll(sut);
        for (const t of contractTables) expect(got.get(key(t)), key(t)).toEqual(expected.get(key(t)) ?? []);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  }

  it('a snapshot replacing a checkpoint at a later epoch replaces the data and fences the writer before it', async () => {
    const sut = await factory();
    const old = await withSnapshot(sut);
    const fresh = sut.create();
    try {
      await old.commitEpoch(contractEpochs()[0]!);
      expect(await fresh.open()).toEqual({ position: '0/1000100', epoch: 1 });
      // Never backwards: a snapshot at the epoch held (or before it) is refused.
      await expect(
        fresh.writeSnapshot(contractTables, chunksOf(snapshotRows()), { position: '0/1000300', epoch: 1 }),
      ).rejects.toMatchObject({ code: 'SINK_CHECKPOINT_AHEAD' });
      const replacement = replacementRows();
      await fresh.writeSnapshot(contractTables, chunksOf(replacement), { position: '0/1000300', epoch: 2 });
      const want = expectedContent(replacement, []);
      const got = await readAll(sut);
      for (const t of contractTables) expect(got.get(key(t)) ?? [], key(t)).toEqual(want.get(key(t)) ?? []);

      expectFenced(await old.commitEpoch(contractEpochs()[1]!).catch((e: unknown) => e), {
        epoch: 2,
        position: '0/1000300',
      });
      // The epochs after the new snapshot continue from it.
      await fresh.commitEpoch({
        ...contractEpochs()[0]!,
        checkpoint: { position: '0/1000400', epoch: 3 },
        tables: [
          {
            table: items,
            truncate: false,
            deletes: [],
            upserts: [['8', 'quince', '4.00', null]],
            partialUpdates: [],
            rowDeltas: [],
          },
        ],
      });
      expect(sortRows(await sut.read(items))).toEqual(
        sortRows([...(want.get(key(items)) ?? []), ['8', 'quince', '4.00', null]]),
      );
    } finally {
      await Promise.all([old.close(), fresh.close()]);
    }
    const again = sut.create();
    try {
      expect(await again.open()).toEqual({ position: '0/1000400', epoch: 3 });
    } finally {
      await again.close();
    }
  });

  it('an epoch at or before the checkpoint held is refused (the checkpoint never moves backwards)', async () => {
    const sut = await factory();
    const sink = await withSnapshot(sut);
    try {
      await sink.commitEpoch(contractEpochs()[0]!);
      await expect(sink.commitEpoch(contractEpochs()[0]!)).rejects.toMatchObject({
        code: 'SINK_CHECKPOINT_AHEAD',
      });
    } finally {
      await sink.close();
    }
  });
}

/** Other rows for every table, as a new snapshot of a changed source would have them. */
function replacementRows(): SnapshotRows[] {
  const [, lines, events] = contractTables;
  return [
    {
      table: items,
      rows: [
        ['1', 'apple', '2.00', 'red'],
        ['10', 'date', '5.00', null],
      ],
    },
    { table: lines!, rows: [] },
    { table: events!, rows: [['view', '2']] },
  ];
}

function expectFenced(err: unknown, found: { epoch: number; position: string }): void {
  expect(err).toBeInstanceOf(TidemarkError);
  const e = err as TidemarkError;
  expect(e.code, e.message).toBe('SINK_FENCED');
  expect(e.retriable).toBe(false);
  expect(e.message).toContain(`epoch ${found.epoch}`);
  expect(e.message).toContain(found.position);
  expect(e.hint).toMatch(/Stop the other process/);
}

async function withSnapshot(sut: SinkUnderTest): Promise<Sink> {
  const sink = sut.create();
  expect(await sink.open()).toBeNull();
  await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), SNAPSHOT_AT);
  return sink;
}

async function readAll(sut: SinkUnderTest): Promise<Map<string, Row[]>> {
  const out = new Map<string, Row[]>();
  for (const t of contractTables) out.set(key(t), sortRows(await sut.read(t).catch(() => [])));
  return out;
}

function key(t: TableSchema): string {
  return `${t.schema}.${t.name}`;
}
