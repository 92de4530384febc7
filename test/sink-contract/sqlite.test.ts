import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
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
  { unmappableType: false, schemaMismatch: true, wrongPassword: false, concurrentSnapshots: false },
);

describe('sqlite sink durability', () => {
  it('commits with synchronous = FULL in WAL mode: an acknowledged epoch survives a power loss', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-sqlite-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    // The sink's own connection, caught as it sets itself up.
    const pragma = vi.spyOn(Database.prototype, 'pragma');
    onTestFinished(() => pragma.mockRestore());
    const sink = createSqliteSink({ uri: `sqlite://${join(dir, 'sink.db')}`, changefeedId: 'feed-1' });
    try {
      await sink.open();
      const own = pragma.mock.contexts[0] as Database.Database;
      expect(own.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(own.pragma('synchronous', { simple: true }), '2 = FULL').toBe(2);
    } finally {
      await sink.close();
    }
  });
});
