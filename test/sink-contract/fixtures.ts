/**
 * Tables, rows and epochs the sink contract suite writes, plus a reference model that applies
 * them in memory: the expected content every sink must read back.
 */
import { UNCHANGED, type Row } from '../../src/core/row.ts';
import type { ColumnSchema, TableSchema } from '../../src/core/table-schema.ts';
import type { Epoch, SnapshotRows, TableChanges } from '../../src/core/epoch.ts';

export function col(
  name: string,
  typeOid: number,
  typeName: string,
  opts: { key?: boolean } = {},
): ColumnSchema {
  const mod = /\((\d+)(?:,(\d+))?\)/.exec(typeName);
  const typeMod = mod
    ? typeOid === 1700
      ? ((Number(mod[1]) << 16) | Number(mod[2] ?? 0)) + 4
      : Number(mod[1]) + 4
    : -1;
  return { name, typeOid, typeMod, typeName, isKey: opts.key === true, nullable: opts.key !== true };
}

export function table(
  schema: string,
  name: string,
  columns: ColumnSchema[],
  relationId = 16384,
): TableSchema {
  const keyColumns = columns.flatMap((c, i) => (c.isKey ? [i] : []));
  return { schema, name, relationId, columns, keyColumns, keyless: keyColumns.length === 0, enums: [] };
}

export const items = table('public', 'items', [
  col('id', 23, 'integer', { key: true }),
  col('name', 25, 'text'),
  col('price', 1700, 'numeric(12,2)'),
  col('note', 25, 'text'),
]);

export const lines = table(
  'shop',
  'order_lines',
  [
    col('order_id', 20, 'bigint', { key: true }),
    col('line', 21, 'smallint', { key: true }),
    col('qty', 23, 'integer'),
  ],
  16390,
);

export const events = table('public', 'events', [col('kind', 25, 'text'), col('n', 23, 'integer')], 16395);

export const contractTables = [items, lines, events];

export function snapshotRows(): SnapshotRows[] {
  return [
    {
      table: items,
      rows: [
        ['1', 'apple', '1.50', 'red'],
        ['2', 'pear', '2.25', null],
        ['3', 'fig', '9.99', 'x'.repeat(3000)],
      ],
    },
    { table: items, rows: [['4', 'kiwi', '0.10', 'green']] },
    {
      table: lines,
      rows: [
        ['9007199254740993', '1', '5'],
        ['100', '2', '7'],
      ],
    },
    {
      table: events,
      rows: [
        ['click', '1'],
        ['click', '1'],
        ['view', null],
      ],
    },
  ];
}

function changes(t: TableSchema, c: Partial<Omit<TableChanges, 'table'>>): TableChanges {
  return { table: t, truncate: false, deletes: [], upserts: [], partialUpdates: [], rowDeltas: [], ...c };
}

export function contractEpochs(): Epoch[] {
  const e1: Epoch = {
    checkpoint: { position: '0/1000100', epoch: 1 },
    commitTimeMs: 1_700_000_000_000,
    sourceChanges: 6,
    tables: [
      changes(items, {
        deletes: [['2', null, null, null]],
        upserts: [
          ['1', 'apple', '1.75', 'red'],
          ['5', 'plum', '3.00', null],
        ],
      }),
      changes(events, {
        rowDeltas: [
          { row: ['click', '1'], count: -1 },
          { row: ['buy', '3'], count: 2 },
        ],
      }),
    ],
  };
  const e2: Epoch = {
    checkpoint: { position: '0/1000200', epoch: 2 },
    commitTimeMs: 1_700_000_001_000,
    sourceChanges: 5,
    tables: [
      changes(items, {
        deletes: [['4', null, null, null]],
        partialUpdates: [
          { row: ['3', 'fig!', '10.00', UNCHANGED], fromKey: null },
          { row: ['6', 'kiwi', UNCHANGED, UNCHANGED], fromKey: ['4', null, null, null] },
        ],
      }),
      changes(lines, { truncate: true, upserts: [['100', '3', '1']] }),
      changes(events, { rowDeltas: [{ row: ['view', null], count: -1 }] }),
    ],
  };
  return [e1, e2];
}

/** Applies a snapshot and epochs to an in-memory store; returns each table's rows, sorted. */
export function expectedContent(snapshot: SnapshotRows[], epochs: Epoch[]): Map<string, Row[]> {
  const store = new Map<string, Row[]>();
  const rowsOf = (t: TableSchema) => store.get(`${t.schema}.${t.name}`) ?? [];
  const set = (t: TableSchema, rows: Row[]) => store.set(`${t.schema}.${t.name}`, rows);
  const sameKey = (t: TableSchema, a: Row, b: Row) => t.keyColumns.every((i) => a[i] === b[i]);
  for (const s of snapshot) set(s.table, [...rowsOf(s.table), ...s.rows]);
  for (const e of epochs) {
    for (const tc of e.tables) {
      const t = tc.table;
      let rows = tc.truncate ? [] : rowsOf(t);
      // Apply order of TableChanges: key-changing partial updates read the rows as the epoch began.
      const start = rows;
      const moved: Row[] = [];
      for (const pu of tc.partialUpdates.filter((p) => p.fromKey)) {
        const old = start.find((r) => sameKey(t, r, pu.fromKey!));
        if (old) moved.push(pu.row.map((c, i) => (c === UNCHANGED ? (old[i] ?? null) : c)));
      }
      for (const m of moved) rows = [...rows.filter((r) => !sameKey(t, r, m)), m];
      for (const d of tc.deletes) rows = rows.filter((r) => !sameKey(t, r, d));
      for (const u of tc.upserts) rows = [...rows.filter((r) => !sameKey(t, r, u)), u];
      for (const pu of tc.partialUpdates.filter((p) => !p.fromKey)) {
        const old = rows.find((r) => sameKey(t, r, pu.row as Row));
        if (!old) continue;
        rows = rows.filter((r) => r !== old);
        rows.push(pu.row.map((c, i) => (c === UNCHANGED ? (old[i] ?? null) : c)));
      }
      for (const d of tc.rowDeltas) {
        if (d.count > 0) rows = [...rows, ...Array.from({ length: d.count }, () => d.row)];
        for (let n = -d.count; n > 0; n--) {
          const i = rows.findIndex((r) => r.every((c, j) => c === d.row[j]));
          if (i >= 0) rows = rows.filter((_, j) => j !== i);
        }
      }
      set(t, rows);
    }
  }
  for (const [k, rows] of store) store.set(k, sortRows(rows));
  return store;
}

export function sortRows(rows: Row[]): Row[] {
  const key = (r: Row) => JSON.stringify(r);
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

export async function* chunksOf(list: SnapshotRows[]): AsyncIterable<SnapshotRows> {
  for (const c of list) yield c;
}
