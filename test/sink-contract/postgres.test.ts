import { describe, expect, it } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import { PostgresSink } from '../../src/sink/postgres/postgres-sink.ts';
import { freshDatabase } from '../support/db.ts';
import { describeSinkContract } from './contract.ts';
import { chunksOf, col, sortRows, table } from './fixtures.ts';
import { readPostgres } from './readers.ts';
import { loadAllTypes, normalizeRows } from './types-fixture.ts';

describeSinkContract(
  'postgres',
  async () => {
    const db = await freshDatabase('sink_pg');
    const u = new URL(db.url);
    u.password = 'Not-The-Pg-Pw-42';
    return {
      create: () => new PostgresSink({ uri: db.url, changefeedId: 'feed-1' }),
      read: (t) => readPostgres(db.url, t),
      atomicSnapshot: true,
      exactText: true,
      detectsSchemaMismatch: true,
      wrongPassword: {
        create: () => new PostgresSink({ uri: u.toString(), changefeedId: 'feed-1' }),
        password: 'Not-The-Pg-Pw-42',
      },
    };
  },
  { unmappableType: false, schemaMismatch: true, wrongPassword: true, concurrentSnapshots: true },
);

/**
 * Epochs carry cells inline (text[] arrays read by unnest) or by COPY, by size: both must land
 * every value's text exactly as the snapshot's COPY does, quotes, backslashes, braces and the
 * word NULL included.
 */
describe('postgres sink: epoch cells, inline and staged', () => {
  it.each([
    ['inline', 1_000_000],
    ['staged', 0],
  ])('%s epochs round-trip every type and awkward text', async (_path, inlineMaxRows) => {
    const db = await freshDatabase('sink_pg_cells');
    const all = await loadAllTypes();
    const awkward = [
      '',
      'NULL',
      'null',
      '"',
      '\\',
      '\\\\"',
      "'",
      "''",
      '{a,b}',
      ' x ',
      'a,b',
      '\t\n',
      'é€😀',
    ];
    const t = table('public', 'cells', [
      col('id', 23, 'integer', { key: true }),
      col('s', 25, 'text'),
      col('j', 3802, 'jsonb'),
    ]);
    const sink = new PostgresSink({ uri: db.url, changefeedId: 'cells', inlineMaxRows });
    try {
      expect(await sink.open()).toBeNull();
      await sink.writeSnapshot([t, all.table], chunksOf([]), { position: '0/1', epoch: 0 });
      const upserts: Row[] = awkward.map((s, i) => [String(i + 1), s, JSON.stringify({ s })]);
      upserts.push([String(awkward.length + 1), null, null]);
      await sink.commitEpoch({
        checkpoint: { position: '0/2', epoch: 1 },
        commitTimeMs: 0,
        sourceChanges: upserts.length + all.rows.length,
        tables: [
          { table: t, truncate: false, deletes: [], upserts, partialUpdates: [], rowDeltas: [] },
          {
            table: all.table,
            truncate: false,
            deletes: [],
            upserts: all.rows,
            partialUpdates: [],
            rowDeltas: [],
          },
        ],
      });
      // jsonb prints its own spacing: compare the parsed documents.
      const parsed = (rows: Row[]): Row[] =>
        sortRows(rows.map(([id, s, j]) => [id ?? null, s ?? null, j ? JSON.stringify(JSON.parse(j)) : null]));
      expect(parsed(await readPostgres(db.url, t))).toEqual(parsed(upserts));
      const exact = { exact: true };
      expect(normalizeRows(all.table, await readPostgres(db.url, all.table), exact)).toEqual(
        normalizeRows(all.table, all.rows, exact),
      );
    } finally {
      await sink.close();
    }
  });
});
