import { describe, expect, it } from 'vitest';
import type { ColumnChange, SchemaChange } from '../core/schema-change.ts';
import type { ColumnSchema, TableSchema } from '../core/table-schema.ts';
import { refusal, rowConverter } from './schema-rebuild.ts';

const col = (name: string, typeName: string, typeOid: number, isKey = false): ColumnSchema => ({
  name,
  typeName,
  typeOid,
  typeMod: -1,
  isKey,
  nullable: !isKey,
});

const table = (columns: ColumnSchema[]): TableSchema => ({
  schema: 'public',
  name: 'Ordér',
  relationId: 42,
  columns,
  keyColumns: [0],
  keyless: false,
  enums: [],
});

describe('rowConverter', () => {
  it('follows renames, fills added columns, casts retyped cells as PostgreSQL prints them', () => {
    const from = table([
      col('id', 'integer', 23, true),
      col('amount', 'numeric(12,2)', 1700),
      col('a', 'text', 25),
    ]);
    const to = table([
      col('id', 'bigint', 20, true),
      col('amount', 'numeric(12,1)', 1700),
      col('b', 'text', 25),
      col('d', 'integer', 23),
      col('later', 'text', 25),
    ]);
    const changes: ColumnChange[] = [
      { op: 'retyped', column: 'id', fromType: 'integer', toType: 'bigint', reproducible: true },
      {
        op: 'retyped',
        column: 'amount',
        fromType: 'numeric(12,2)',
        toType: 'numeric(12,1)',
        reproducible: true,
      },
      { op: 'renamed', from: 'a', to: 'b' },
      { op: 'added', column: 'd', fill: { kind: 'value', text: '7' } },
    ];
    const convert = rowConverter(from, to, changes, new Map([['later', 'f']]));
    expect(convert(['5', '1.25', 'x'])).toEqual(['5', '1.3', 'x', '7', 'f']);
    expect(convert(['6', null, null])).toEqual(['6', null, null, '7', 'f']);
    const wider = table([col('id', 'integer', 23, true), col('amount', 'numeric(14,3)', 1700)]);
    expect(rowConverter(from, wider, [], new Map())(['1', '-0.5', 'y'])).toEqual(['1', '-0.500']);
  });
});

describe('refusal', () => {
  it('names the view, the column and the fix', () => {
    const before = table([col('id', 'integer', 23, true), col('amount', 'numeric', 1700)]);
    const after = table([col('id', 'integer', 23, true), col('price', 'numeric', 1700)]);
    const change: SchemaChange = {
      kind: 'table-altered',
      before,
      after,
      columns: [{ op: 'renamed', from: 'amount', to: 'price' }],
      recopy: null,
      ddl: 'ALTER TABLE "Ordér" RENAME amount TO price',
    };
    const err = refusal('totals', before, new Set(['amount']), change, 'after 0/16');
    expect(err.code).toBe('VIEW_SCHEMA_CHANGED');
    expect(err.detail).toContain(
      'view "totals" no longer binds: public.Ordér: column amount was renamed to price',
    );
    expect(err.detail).toContain('Fix: write view "totals" with price for amount');
  });
});
