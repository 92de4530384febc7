/** Prints rows/s for one epoch of upserts (a log line for humans; nothing is asserted on time). */
import { expect } from 'vitest';
import type { Row } from '../../src/decode/row.ts';
import type { Sink } from '../../src/sink/sink.ts';
import { chunksOf, col, table } from './fixtures.ts';

const bench = table('public', 'bench_upserts', [
  col('id', 20, 'bigint', { key: true }),
  col('name', 25, 'text'),
  col('amount', 1700, 'numeric(12,2)'),
  col('at', 1184, 'timestamp with time zone'),
]);

export async function runThroughput(name: string, sink: Sink, rowCount: number): Promise<void> {
  const upserts: Row[] = [];
  for (let i = 0; i < rowCount; i++) {
    upserts.push([
      String(i),
      `name-${i}`,
      `${i % 100000}.${String(i % 100).padStart(2, '0')}`,
      '2024-01-01 00:00:00+00',
    ]);
  }
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
