/**
 * The contract of epochs written in chunks (sink.ts `beginEpoch` / `EpochWriter`), registered
 * for every sink by `describeSinkContract`. The reader of each store is the one a downstream
 * consumer would use (SELECT, manifests, the marker-following NATS consumer), so "nothing
 * visible before the commit" is checked as a consumer sees it.
 */
import { expect, it } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import type { Sink } from '../../src/sink/sink.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import { audit, chunkedEpoch, failingChunk, widenedChunks, widerItems } from './chunked-fixture.ts';
import type { SinkFactory, SinkUnderTest } from './contract.ts';
import {
  chunksOf,
  contractEpochs,
  contractTables,
  expectedContent,
  snapshotRows,
  sortRows,
} from './fixtures.ts';

const tables = [...contractTables, audit];
const SNAPSHOT_AT = { position: '0/1000000', epoch: 0 };

export function chunkedEpochCases(factory: SinkFactory): void {
  it('an epoch written in chunks equals it applied whole, and nothing of it shows before the commit', async () => {
    const fx = chunkedEpoch();
    const chunked = await factory();
    const whole = await factory();
    const a = await withSnapshot(chunked);
    const b = await withSnapshot(whole);
    try {
      const before = await readAll(chunked, tables);
      const writer = await a.beginEpoch();
      const locked = new Set<TableSchema>();
      for (const chunk of fx.chunks) {
        await writer.applyChunk(chunk);
        // A reader of a table the open transaction truncated would wait for it (PostgreSQL).
        for (const tc of chunk) if (tc.truncate) locked.add(tc.table);
        const readable = tables.filter((t) => !locked.has(t));
        expect(await readAll(chunked, readable), 'visible before the commit').toEqual(pick(before, readable));
      }
      await writer.commit(fx.last);
      await writer.abort(); // after the commit: a no-op
      await b.commitEpoch(fx.whole);

      const expected = expectedContent(snapshotRows(), [fx.whole]);
      // The reference model agrees that chunks in order equal the whole epoch.
      const asEpochs = fx.chunks.map((c) => ({ ...fx.whole, tables: c }));
      expect(expectedContent(snapshotRows(), [...asEpochs, fx.last])).toEqual(expected);
      const gotChunked = await readAll(chunked, tables);
      expect(gotChunked).toEqual(await readAll(whole, tables));
      for (const t of tables) expect(gotChunked.get(key(t)), key(t)).toEqual(expected.get(key(t)) ?? []);

      // The sink is free for the next epoch, written whole.
      const next = { ...contractEpochs()[1]!, tables: [] };
      await a.commitEpoch(next);
    } finally {
      await a.close();
      await b.close();
    }
    const again = chunked.create();
    try {
      expect(await again.open()).toEqual({ position: '0/1000200', epoch: 2 });
    } finally {
      await again.close();
    }
  });

  it('abort leaves nothing visible; a new instance resumes from the previous checkpoint and commits the epoch whole', async () => {
    const fx = chunkedEpoch();
    const sut = await factory();
    const sink = await withSnapshot(sut);
    const before = await readAll(sut, tables);
    try {
      const writer = await sink.beginEpoch();
      await writer.applyChunk(fx.chunks[0]!);
      await writer.applyChunk(fx.chunks[1]!);
      // One epoch at a time: a second one is refused while this one is open.
      await expect(sink.beginEpoch()).rejects.toMatchObject({ code: 'INTERNAL' });
      await expect(sink.commitEpoch(fx.whole)).rejects.toMatchObject({ code: 'INTERNAL' });
      await writer.abort();
      await writer.abort();
      await expect(writer.applyChunk(fx.chunks[2]!)).rejects.toMatchObject({ code: 'INTERNAL' });
      await expect(writer.commit(fx.last)).rejects.toMatchObject({ code: 'INTERNAL' });
      expect(await readAll(sut, tables)).toEqual(before);
    } finally {
      await sink.close();
    }
    const again = sut.create();
    try {
      expect(await again.open()).toEqual(SNAPSHOT_AT);
      await again.commitEpoch(fx.whole);
    } finally {
      await again.close();
    }
    const expected = expectedContent(snapshotRows(), [fx.whole]);
    const got = await readAll(sut, tables);
    for (const t of tables) expect(got.get(key(t)), key(t)).toEqual(expected.get(key(t)) ?? []);
  });

  it('a chunk failing part way leaves nothing visible, finishes the writer, and the same epoch can be retried', async () => {
    const fx = chunkedEpoch();
    const sut = await factory();
    const sink = await withSnapshot(sut);
    try {
      const before = await readAll(sut, tables);
      const writer = await sink.beginEpoch();
      await writer.applyChunk(fx.chunks[0]!);
      await expect(writer.applyChunk(failingChunk())).rejects.toThrow('chunk input failed');
      // The transaction is gone: the writer takes nothing more, and abort is still safe.
      await expect(writer.commit(fx.last)).rejects.toMatchObject({ code: 'INTERNAL' });
      await writer.abort();
      expect(await readAll(sut, tables)).toEqual(before);

      // The runtime's retry: the same epoch, whole, on the same instance.
      await sink.commitEpoch(fx.whole);
    } finally {
      await sink.close();
    }
    const expected = expectedContent(snapshotRows(), [fx.whole]);
    const got = await readAll(sut, tables);
    for (const t of tables) expect(got.get(key(t)), key(t)).toEqual(expected.get(key(t)) ?? []);
    const again = sut.create();
    try {
      expect(await again.open()).toEqual({ position: '0/1000100', epoch: 1 });
    } finally {
      await again.close();
    }
  });

  it('a table whose columns grow between two chunks ends with every row in the new shape', async () => {
    const { chunks, expected } = widenedChunks();
    const last = { ...chunkedEpoch().last, tables: [] };
    const sut = await factory();
    const sink = await withSnapshot(sut);
    try {
      // As the runtime would: a retriable failure (MySQL cannot alter a table its open
      // transaction wrote) is retried once from the checkpoint, and must then succeed.
      for (let attempt = 1; ; attempt++) {
        const writer = await sink.beginEpoch();
        try {
          for (const chunk of chunks) await writer.applyChunk(chunk);
          await writer.commit(last);
          break;
        } catch (err) {
          await writer.abort();
          if (attempt > 1 || !(err instanceof TidemarkError) || !err.retriable) throw err;
        }
      }
    } finally {
      await sink.close();
    }
    expect(sortRows(await sut.read(widerItems))).toEqual(sortRows(expected));
  });

  it('an empty epoch in chunks commits its checkpoint', async () => {
    const sut = await factory();
    const sink = await withSnapshot(sut);
    try {
      const writer = await sink.beginEpoch();
      await writer.applyChunk([]);
      await writer.commit({ ...chunkedEpoch().last, tables: [] });
    } finally {
      await sink.close();
    }
    const again = sut.create();
    try {
      expect(await again.open()).toEqual({ position: '0/1000100', epoch: 1 });
    } finally {
      await again.close();
    }
  });
}

async function withSnapshot(sut: SinkUnderTest): Promise<Sink> {
  const sink = sut.create();
  expect(await sink.open()).toBeNull();
  await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), SNAPSHOT_AT);
  return sink;
}

/** Every table's rows as a reader sees them now, sorted; a table not created yet reads empty. */
async function readAll(sut: SinkUnderTest, list: readonly TableSchema[]): Promise<Map<string, Row[]>> {
  const out = new Map<string, Row[]>();
  for (const t of list) out.set(key(t), sortRows(await sut.read(t).catch(() => [])));
  return out;
}

function pick(all: Map<string, Row[]>, list: readonly TableSchema[]): Map<string, Row[]> {
  return new Map(list.map((t) => [key(t), all.get(key(t)) ?? []]));
}

function key(t: TableSchema): string {
  return `${t.schema}.${t.name}`;
}
