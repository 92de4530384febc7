import { describe, expect, it } from 'vitest';
import { UNCHANGED, type Row } from '../../core/row.ts';
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';
import type { TableChanges } from '../../core/epoch.ts';
import { planTableChanges, tableStatements } from './apply-plan.ts';
import { arraysFrom } from './staging.ts';

const col = (name: string, typeName: string, isKey = false): ColumnSchema => ({
  name,
  typeOid: 0,
  typeMod: -1,
  typeName,
  isKey,
  nullable: !isKey,
});

const table = (columns: ColumnSchema[], keyless = false): TableSchema => ({
  schema: 'public',
  name: 't',
  relationId: 1,
  columns,
  keyColumns: keyless ? [] : columns.flatMap((c, i) => (c.isKey ? [i] : [])),
  keyless,
  enums: [],
});

const changes = (t: TableSchema, over: Partial<TableChanges>): TableChanges => ({
  table: t,
  truncate: false,
  deletes: [],
  upserts: [],
  partialUpdates: [],
  rowDeltas: [],
  ...over,
});

const sql = (c: TableChanges) => {
  const plan = planTableChanges(c);
  return tableStatements(plan, (g) => arraysFrom(plan.table, g));
};

describe('planTableChanges / tableStatements', () => {
  const kv = table([col('id', 'integer', true), col('v', 'text'), col('w', 'jsonb')]);

  it('orders statements truncate (as an MVCC-safe DELETE of every row), delete, upsert, partial', () => {
    const stmts = sql(
      changes(kv, {
        truncate: true,
        partialUpdates: [{ row: ['1', 'x', UNCHANGED], fromKey: null }],
        upserts: [['2', 'b', '{}']],
        deletes: [['3', null, null]],
      }),
    );
    expect(stmts.map((s) => s.split(' ')[0])).toEqual(['DELETE', 'DELETE', 'INSERT', 'UPDATE']);
    expect(stmts[0]).toBe('DELETE FROM "public"."t"');
    expect(stmts[3]).toContain('SET "v" = s.c1::text FROM');
    expect(stmts[3]).not.toContain('"w" =');
  });

  it('groups partial updates by which cells are unchanged', () => {
    const plan = planTableChanges(
      changes(kv, {
        partialUpdates: [
          { row: ['1', 'a', UNCHANGED], fromKey: null },
          { row: ['2', UNCHANGED, '{}'], fromKey: null },
          { row: ['3', 'c', UNCHANGED], fromKey: null },
          { row: ['5', 'e', UNCHANGED], fromKey: ['4', null, null] },
        ],
      }),
    );
    // Moves first: they read the old row before this epoch's deletes remove it.
    expect(plan.groups.map((g) => [g.op, g.mask, g.rows.length])).toEqual([
      ['m', '001', 1],
      ['p', '001', 2],
      ['p', '010', 1],
    ]);
    expect(plan.groups[0]?.rows[0]).toEqual(['m', '001', null, '5', 'e', null, '4']);
  });

  it('uses DO NOTHING when every column is part of the key', () => {
    const allKey = table([col('a', 'text', true), col('b', 'uuid', true)]);
    expect(sql(changes(allKey, { upserts: [['x', '00000000-0000-0000-0000-000000000000']] }))[0]).toContain(
      'ON CONFLICT ("a", "b") DO NOTHING',
    );
  });

  it('quotes array elements and literals so quotes and backslashes survive', () => {
    const [stmt] = sql(changes(kv, { upserts: [['1', 'it\'s \\ "fine"', null]] }));
    // Inside the array each backslash and double quote gets a backslash; inside the literal each ' is doubled.
    expect(stmt).toContain(`'{"it''s \\\\ \\"fine\\""}'::text[], '{NULL}'::text[]`);
  });

  it('refuses changes that break the contract', () => {
    const keyless = table([col('a', 'text')], true);
    const row: Row = ['x'];
    expect(() => planTableChanges(changes(keyless, { upserts: [row] }))).toThrow(/INTERNAL/);
    expect(() => planTableChanges(changes(kv, { rowDeltas: [{ row: ['1', 'a', null], count: 1 }] }))).toThrow(
      /INTERNAL/,
    );
    expect(() => planTableChanges(changes(kv, { upserts: [['1']] }))).toThrow(/1 cells, the table has 3/);
  });

  it('splits row deltas into inserts and removals and skips zero counts', () => {
    const keyless = table([col('a', 'text'), col('b', 'json')], true);
    const plan = planTableChanges(
      changes(keyless, {
        rowDeltas: [
          { row: ['x', '{}'], count: 2 },
          { row: ['y', null], count: -3 },
          { row: ['z', null], count: 0 },
        ],
      }),
    );
    expect(plan.groups.map((g) => [g.op, g.rows.length])).toEqual([
      ['r', 1],
      ['i', 1],
    ]);
  });
});
