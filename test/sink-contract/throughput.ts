/** Prints rows/s for one epoch of upserts, whole or in chunks (log lines for humans; nothing is asserted on time). */
import { expect } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { Sink } from '../../src/sink/sink.ts';
import { chunksOf, col, table } from './fixtures.ts';

const bench = table('public', 'bench_upserts', [
  col('id', 20, 'bigint', { key: true }),
  col('name', 25, 'text'),
  col('amount', 1700, 'numeric(12,2)'),
  col('at', 1184, 'timestamp with time zone'),
]);

function benchRows(from: number, to: number): Row[] {
  const upserts: Row[] = [];
  for (let i = from; i < to; i++) {
    upserts.push([
      String(i),
      `name-${i}`,
      `${i % 100000}.${String(i % 100).padStart(2, '0')}`,
      '2024-01-01 00:00:00+00',
    ]);
  }
  return upserts;
}

export async function runThroughput(name: string, sink: Sink, rowCount: number): Promise<void> {
  const upserts = benchRows(0, rowCount);
  try {
    await sink.open();
    await sink.writeSnapshot([bench], chunksOf([]), { position: '0/1', epoch: 0 });
    const started = performance.now();
    await sink.commitEpoch({
      checkpoint: { position: '0/2', epoch: 1 },
      commitTimeMs: Date.now(),
      sourceChanges: rowCount,
      tables: [{ table: bench, truncate: false, deletes: [], upserts, partialUpdates: [], rowDeltas: [] }],
    });
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `[throughput] ${name}: ${rowCount} upserts in ${seconds.toFixed(2)} s = ${Math.round(rowCount / seconds)} rows/s`,
    );
  } finally {
    await sink.close();
  }
  expect(rowCount).toBeGreaterThan(0);
}

/**
 * The same upserts as `chunks` chunks of one epoch (one writer), each chunk built only when it is
 * applied, as the runtime does: prints rows/s and the heap growth over the whole epoch.
 */
export async function runChunkedThroughput(
  name: string,
  sink: Sink,
  rowCount: number,
  chunks: number,
): Promise<void> {
  const per = Math.ceil(rowCount / chunks);
  try {
    await sink.open();
    await sink.writeSnapshot([bench], chunksOf([]), { position: '0/1', epoch: 0 });
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const started = performance.now();
    const writer = await sink.beginEpoch();
    for (let from = 0; from < rowCount; from += per) {
      const upserts = benchRows(from, Math.min(rowCount, from + per));
      await writer.applyChunk([
        { table: bench, truncate: false, deletes: [], upserts, partialUpdates: [], rowDeltas: [] },
      ]);
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
    }
    await writer.commit({
      checkpoint: { position: '0/2', epoch: 1 },
      commitTimeMs: Date.now(),
      sourceChanges: rowCount,
      tables: [],
    });
    const seconds = (performance.now() - started) / 1000;
    const mib = (heapPeak - heapBefore) / 2 ** 20;
    console.log(
      `[throughput] ${name}: ${rowCount} upserts in ${chunks} chunks in ${seconds.toFixed(2)} s = ${Math.round(rowCount / seconds)} rows/s, heap growth ${mib.toFixed(1)} MiB`,
    );
  } finally {
    await sink.close();
  }
  expect(rowCount).toBeGreaterThan(0);
}
