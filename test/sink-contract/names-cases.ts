/**
 * Names that need quoting (shared/HOSTILE-WORLD.md), registered for every sink by
 * `describeSinkContract`: mixed case, reserved words, dots inside names — `"a.b"."c"` and
 * `"a"."b.c"` are two tables, never one —, non-ASCII, 63-byte names. Each table gets rows of its
 * own, so two tables folded into one store object show up as wrong rows.
 */
import { expect, it } from 'vitest';
import { UNCHANGED, type Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import type { Epoch, TableChanges } from '../../src/core/epoch.ts';
import type { SinkFactory } from './contract.ts';
import { chunksOf, col, expectedContent, sortRows, table } from './fixtures.ts';

const LONG = 'x'.repeat(55) + '_63bytes'; // 63 bytes, PostgreSQL's longest name

const named: TableSchema[] = [
  table(
    'public',
    'User',
    [col('id', 23, 'integer', { key: true }), col('E-Mail', 25, 'text'), col('order', 23, 'integer')],
    30001,
  ),
  table('public', 'order', [col('id', 23, 'integer', { key: true }), col('select', 25, 'text')], 30002),
  table('a.b', 'c', [col('id', 23, 'integer', { key: true }), col('v', 25, 'text')], 30003),
  table('a', 'b.c', [col('id', 23, 'integer', { key: true }), col('v', 25, 'text')], 30004),
  table('public', 'a.b', [col('id', 23, 'integer', { key: true }), col('v', 25, 'text')], 30005),
  table('ünï', '表 名', [col('id', 23, 'integer', { key: true }), col('värde', 25, 'text')], 30006),
  table('public', LONG, [col('id', 23, 'integer', { key: true }), col(LONG, 25, 'text')], 30007),
  table('public', 'Logs', [col('at', 25, 'text'), col('Level', 25, 'text')], 30008),
];

function rowsFor(t: TableSchema, i: number): Row[] {
  if (t.keyless)
    return [
      [`t${i}`, 'info'],
      [`t${i}`, 'info'],
    ];
  const width = t.columns.length;
  return [1, 2, 3].map((id) => [
    String(id),
    ...Array.from({ length: width - 1 }, (_, c) => (c === 1 ? String(id * 10 + i) : `${t.name}/${id}`)),
  ]);
}

function epochOne(): Epoch {
  const tables: TableChanges[] = named.map((t, i) => {
    const base = {
      table: t,
      truncate: false,
      deletes: [] as Row[],
      upserts: [] as Row[],
      partialUpdates: [],
      rowDeltas: [],
    };
    if (t.keyless) return { ...base, rowDeltas: [{ row: [`t${i}`, 'info'], count: -1 }] };
    const blank = t.columns.map(() => null);
    return {
      ...base,
      deletes: [['1', ...blank.slice(1)]],
      upserts: [['4', ...t.columns.slice(1).map((_, c) => (c === 1 ? '40' : `${t.name}/new`))]],
      partialUpdates: [
        {
          row: ['2', ...t.columns.slice(1).map((_, c) => (c === 0 ? `${t.name}/upd` : UNCHANGED))],
          fromKey: null,
        },
      ],
    };
  });
  return {
    checkpoint: { position: '0/4000100', epoch: 1 },
    commitTimeMs: 1_700_000_000_000,
    sourceChanges: 9,
    tables,
  };
}

export function namesCases(factory: SinkFactory): void {
  it('tables and columns named "User", "order", "a.b"."c" vs "a"."b.c", non-ASCII and 63 bytes long stay apart', async () => {
    const sut = await factory();
    const sink = sut.create();
    const snapshot = named.map((t, i) => ({ table: t, rows: rowsFor(t, i) }));
    try {
      expect(await sink.open()).toBeNull();
      await sink.writeSnapshot(named, chunksOf(snapshot), { position: '0/4000000', epoch: 0 });
      await sink.commitEpoch(epochOne());
    } finally {
      await sink.close();
    }
    for (const t of named) {
      // One table at a time: the reference model's own map is keyed by `schema.name`.
      const e = epochOne();
      const want = expectedContent(
        snapshot.filter((c) => c.table === t),
        [{ ...e, tables: e.tables.filter((c) => c.table === t) }],
      );
      expect(sortRows(await sut.read(t)), `"${t.schema}"."${t.name}"`).toEqual(
        want.get(`${t.schema}.${t.name}`),
      );
    }
  });
}
