/**
 * One column per PostgreSQL type family, in the text forms PostgreSQL prints (TimeZone=UTC,
 * DateStyle=ISO), and a comparison that tolerates only each store's documented re-formatting
 * (trailing zeros of numerics and fractions, JSON whitespace, char padding).
 */
import type { Row } from '../../src/decode/row.ts';
import type { TableSchema } from '../../src/decode/table-schema.ts';
import { pgTypeKind } from '../../src/sink/sqlite/pg-type-kind.ts';
import { pgArrayToJson } from '../../src/sink/mysql/pg-array.ts';
import { col, table } from './fixtures.ts';

const base = table('public', 'all_types', [
  col('id', 23, 'integer', { key: true }),
  col('c_bool', 16, 'boolean'),
  col('c_int2', 21, 'smallint'),
  col('c_int4', 23, 'integer'),
  col('c_int8', 20, 'bigint'),
  col('c_float4', 700, 'real'),
  col('c_float8', 701, 'double precision'),
  col('c_numeric', 1700, 'numeric(20,6)'),
  col('c_numeric_any', 1700, 'numeric'),
  col('c_text', 25, 'text'),
  col('c_varchar', 1043, 'character varying(20)'),
  col('c_char', 1042, 'character(3)'),
  col('c_bytea', 17, 'bytea'),
  col('c_json', 114, 'json'),
  col('c_jsonb', 3802, 'jsonb'),
  col('c_uuid', 2950, 'uuid'),
  col('c_date', 1082, 'date'),
  col('c_ts', 1114, 'timestamp without time zone'),
  col('c_tstz', 1184, 'timestamp with time zone'),
  col('c_time', 1083, 'time without time zone'),
  col('c_interval', 1186, 'interval'),
  col('c_int4_arr', 1007, 'integer[]'),
  col('c_text_arr', 1009, 'text[]'),
  col('c_mood', 98765, 'mood'),
  col('c_inet', 869, 'inet'),
]);

export const allTypes: TableSchema = {
  ...base,
  enums: [{ schema: 'public', name: 'mood', labels: ['happy', 'sad'] }],
};

export const allTypesRows: Row[] = [
  [
    '1',
    't',
    '-32768',
    '-2147483648',
    '-9223372036854775808',
    '1.5',
    '3.141592653589793',
    '12345678901234.123456',
    '123.456',
    'hello',
    'abc',
    'ab ',
    '\\x00ff10',
    '{"a": 1}',
    '{"a": 1, "b": [true, null]}',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '2024-02-29',
    '2024-02-29 12:34:56.123456',
    '2024-02-29 12:34:56.123456+00',
    '12:34:56.5',
    '1 day 02:00:00',
    '{1,2,NULL}',
    '{a,"b c","d\\"e",NULL}',
    'happy',
    '192.168.0.1/24',
  ],
  [
    '2',
    'f',
    '32767',
    '2147483647',
    '9223372036854775807',
    '-3.25',
    '1e+100',
    '-0.000001',
    '0.00001',
    'ünïcødé 🎉 "q" \\ \' `x`',
    '',
    'xyz',
    '\\x',
    '[]',
    '{}',
    '00000000-0000-0000-0000-000000000000',
    '1999-12-31',
    '2000-01-01 00:00:00',
    '1999-12-31 23:00:00+00',
    '00:00:00',
    '-00:00:01',
    '{}',
    '{"",x}',
    'sad',
    '::1',
  ],
  ['3', ...Array.from({ length: base.columns.length - 1 }, () => null)],
];

/** A comparable form of a cell: equal for values the column's store mapping must keep equal. */
export function normalizeCell(t: TableSchema, colIndex: number, cell: string | null): unknown {
  if (cell === null) return null;
  const column = t.columns[colIndex]!;
  switch (pgTypeKind(column, t)) {
    case 'float4':
    case 'float8':
      return Number(cell);
    case 'numeric':
      return cell.includes('.') ? cell.replace(/0+$/, '').replace(/\.$/, '') : cell;
    case 'bpchar':
      return cell.trimEnd();
    case 'json':
      return JSON.stringify(JSON.parse(cell));
    case 'array':
      return pgArrayToJson(cell, 'text');
    case 'timestamp':
    case 'time':
      return cell.includes('.') ? cell.replace(/0+$/, '').replace(/\.$/, '') : cell;
    case 'timestamptz':
      return new Date(cell.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString() + micros(cell);
    default:
      return cell;
  }
}

function micros(ts: string): string {
  const m = /\.\d{3}(\d{0,3})/.exec(ts);
  return (m?.[1] ?? '').replace(/0+$/, '');
}

export function normalizeRows(t: TableSchema, rows: Row[]): unknown[][] {
  return rows.map((r) => r.map((c, i) => normalizeCell(t, i, c))).sort((a, b) => Number(a[0]) - Number(b[0]));
}
