import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { createSqliteSink } from '../../src/sink/sqlite/sqlite-sink.ts';
import { describeSinkContract } from './contract.ts';
import { readSqlite } from './readers.ts';

describeSinkContract(
  'sqlite',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-sqlite-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'sink.db');
    return {
      create: () => createSqliteSink({ uri: `sqlite://${path}`, changefeedId: 'feed-1' }),
      read: async (t: TableSchema) => readSqlite(path, t),
      atomicSnapshot: true,
      exactText: true,
      // REAL storage drops the sign of zero (documented in sqlite-types.ts).
      documentedLoss: (c, text) => ((c.typeOid === 700 || c.typeOid === 701) && text === '-0' ? '0' : text),
      detectsSchemaMismatch: true,
    };
  },
  { unmappableType: false, schemaMismatch: true, wrongPassword: false },
);
