import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { createFileSink } from '../../src/sink/file/file-sink.ts';
import { describeSinkContract } from './contract.ts';
import { readFileSinkTable } from './file-readback.ts';

for (const format of ['jsonl', 'csv'] as const) {
  describeSinkContract(
    `file (${format})`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-file-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      return {
        create: () => createFileSink({ uri: `file://${dir}/out?format=${format}`, changefeedId: 'feed-1' }),
        read: async (t) => readFileSinkTable(join(dir, 'out'), t),
        atomicSnapshot: true,
        exactText: false,
        detectsSchemaMismatch: false,
      };
    },
    { unmappableType: false, schemaMismatch: false, wrongPassword: false, concurrentSnapshots: true },
  );
}
