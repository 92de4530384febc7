/**
 * NULL in key columns (sink.ts "Keys"), registered for every sink by `describeSinkContract`: a
 * view grouped by a nullable column — the README's `region_revenue` with a customer whose region
 * is NULL — has a NULL group, and its key columns are nullable. Rows go into and out of the NULL
 * group across epochs; the store must hold one row per key, NULL equal to NULL.
 */
import { expect, it } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { ColumnSchema, TableSchema } from '../../src/core/table-schema.ts';
import type { Epoch, SnapshotRows, TableChanges } from '../../src/core/epoch.ts';
import type { SinkFactory } from './contract.ts';
import { chunksOf, col, expectedContent, sortRows } from './fixtures.ts';

/** A key column that may be NULL, as the view planner makes them. */
function nullableKey(name: string, typeOid: number, typeName: string): ColumnSchema {
  return { ...col(name, typeOid, typeName, { key: true }), nullable: true };
}

function view(name: string, columns: ColumnSchema[], relationId: number): TableSchema {
  const keyColumns = columns.flatMap((c, i) => (c.isKey ? [i] : []));
  return { schema: 'public', name, relationId, columns, keyColumns, keyless: false, enums: [] };
}

export const regionRevenue = view(
  'region_revenue',
  [nullableKey('region', 25, 'text'), col('orders', 20, 'bigint'), col('revenue', 1700, 'numeric(12,2)')],
  -101,
);

export const byRegionKind = view(
  'by_region_kind',
  [nullableKey('region', 25, 'text'), nullableKey('kind', 25, 'text'), col('n', 20, 'bigint')],
  -102,
);

const tables = [regionRevenue, byRegionKind];

function changes(t: TableSchema, c: Partial<Omit<TableChanges, 'table'>>): TableChanges {
  return { table: t, truncate: false, deletes: [], upserts: [], partialUpdates: [], rowDeltas: [], ...c };
}

function epoch(n: number, list: TableChanges[]): Epoch {
  return {
    checkpoint: { position: `0/${(0x2000000 + n * 0x100).toString(16).toUpperCase()}`, epoch: n },
    commitTimeMs: 1_700_000_000_000 + n,
    sourceChanges: list.length,
    tables: list,
  };
}

function snapshot(): SnapshotRows[] {
  return [
    {
      table: regionRevenue,
      rows: [
        ['north', '3', '30.00'],
        [null, '1', '5.50'],
        ['', '2', '1.00'],
      ],
    },
    {
      table: byRegionKind,
      rows: [
        [null, 'a', '1'],
        [null, null, '2'],
        ['north', null, '3'],
      ],
    },
  ];
}

function epochs(): Epoch[] {
  const key = (region: string | null): Row => [region, null, null];
  return [
    // Into the NULL group (an update of its row), and a new group.
    epoch(1, [
      changes(regionRevenue, {
        upserts: [
          [null, '2', '12.25'],
          ['south', '1', '4.00'],
        ],
      }),
      changes(byRegionKind, {
        upserts: [
          [null, 'a', '5'],
          [null, null, '6'],
          [null, 'b', '7'],
        ],
      }),
    ]),
    // Out of it: the NULL group's last order moved away.
    epoch(2, [
      changes(regionRevenue, { deletes: [key(null)], upserts: [['north', '4', '35.50']] }),
      changes(byRegionKind, { deletes: [[null, null, null]] }),
    ]),
    // And back.
    epoch(3, [
      changes(regionRevenue, { upserts: [[null, '1', '0.75']] }),
      changes(byRegionKind, { upserts: [[null, null, '9']], deletes: [['north', null, null]] }),
    ]),
  ];
}

export function nullKeyCases(factory: SinkFactory): void {
  it('a key column may be NULL: one row per key, NULL equal to NULL, into and out of the NULL group', async () => {
    const sut = await factory();
    const sink = sut.create();
    const all = epochs();
    try {
      expect(await sink.open()).toBeNull();
      await sink.writeSnapshot(tables, chunksOf(snapshot()), { position: '0/2000000', epoch: 0 });
      for (const [i, e] of all.entries()) {
        await sink.commitEpoch(e);
        const want = expectedContent(snapshot(), all.slice(0, i + 1));
        for (const t of tables) {
          expect(sortRows(await sut.read(t)), `${t.name} after epoch ${i + 1}`).toEqual(
            want.get(`public.${t.name}`),
          );
        }
      }
    } finally {
      await sink.close();
    }
    // The NULL group's row is there once, and '' is another group.
    expect(sortRows(await sut.read(regionRevenue))).toEqual(
      sortRows([
        ['north', '4', '35.50'],
        [null, '1', '0.75'],
        ['', '2', '1.00'],
        ['south', '1', '4.00'],
      ]),
    );
  });
}
