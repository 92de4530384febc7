import { describe, expect, it } from 'vitest';
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { mysqlColumnType, timestamptzToUtc } from './mysql-types.ts';
import { pgArrayToJson } from '../shared/pg-array-json.ts';

function column(name: string, typeOid: number, typeName: string, isKey = false): ColumnSchema {
  return { name, typeOid, typeMod: -1, typeName, isKey, nullable: !isKey };
}
const table = (c: ColumnSchema): TableSchema => ({
  schema: 'public',
  name: 't',
  relationId: 1,
  columns: [c],
  keyColumns: c.isKey ? [0] : [],
  keyless: !c.isKey,
  enums: [],
});
const ddl = (c: ColumnSchema) => mysqlColumnType(c, table(c)).ddl;

describe('mysql type mapping', () => {
  it('maps PostgreSQL types faithfully', () => {
    expect(ddl(column('a', 21, 'smallint'))).toBe('SMALLINT');
    expect(ddl(column('a', 20, 'bigint'))).toBe('BIGINT');
    expect(ddl(column('a', 1700, 'numeric(12,2)'))).toBe('DECIMAL(12,2)');
    expect(ddl(column('a', 1700, 'numeric'))).toBe('DECIMAL(65,30)');
    expect(ddl(column('a', 25, 'text'))).toBe('LONGTEXT');
    expect(ddl(column('a', 25, 'text', true))).toBe('VARCHAR(255)');
    expect(ddl(column('a', 1043, 'character varying(40)'))).toBe('VARCHAR(40)');
    expect(ddl(column('a', 1184, 'timestamp with time zone'))).toBe('DATETIME(6)');
    expect(ddl(column('a', 3802, 'jsonb'))).toBe('JSON');
    expect(ddl(column('a', 1007, 'integer[]'))).toBe('JSON');
    expect(ddl(column('a', 2950, 'uuid'))).toBe('CHAR(36)');
  });

  it('refuses an unmappable type, naming table, column and type', () => {
    const c = column('where', 600, 'point');
    expect(() => ddl(c)).toThrow(TidemarkError);
    expect(() => ddl(c)).toThrow(/SINK_UNSUPPORTED_TYPE.*public\.t, column where, type point/);
    expect(() => ddl(column('n', 1700, 'numeric(70,2)'))).toThrow(/SINK_UNSUPPORTED_TYPE/);
  });

  it('refuses values that would be rounded or cannot be stored', () => {
    const num = mysqlColumnType(column('n', 1700, 'numeric(5,2)'), table(column('n', 1700, 'numeric(5,2)')));
    expect(num.convert('123.45')).toBe('123.45');
    expect(num.convert('123.450')).toBe('123.450');
    expect(() => num.convert('123.456')).toThrow(/SINK_VALUE_OUT_OF_RANGE/);
    expect(() => num.convert('1234.5')).toThrow(/SINK_VALUE_OUT_OF_RANGE/);
    expect(() => num.convert('NaN')).toThrow(/SINK_VALUE_OUT_OF_RANGE/);
    const f = mysqlColumnType(
      column('f', 701, 'double precision'),
      table(column('f', 701, 'double precision')),
    );
    expect(() => f.convert('Infinity')).toThrow(/SINK_VALUE_OUT_OF_RANGE/);
  });

  it('converts timestamptz to UTC, keeping microseconds', () => {
    expect(timestamptzToUtc('2024-02-29 12:34:56.123456+05:30', 'x')).toBe('2024-02-29 07:04:56.123456');
    expect(timestamptzToUtc('2024-01-01 00:00:00-01', 'x')).toBe('2024-01-01 01:00:00');
    expect(() => timestamptzToUtc('infinity', 'x')).toThrow(/SINK_VALUE_OUT_OF_RANGE/);
  });
});

describe('pgArrayToJson', () => {
  it('parses quoting, NULL, nesting and bounds', () => {
    expect(pgArrayToJson('{1,2,NULL}', 'int')).toBe('[1,2,null]');
    expect(pgArrayToJson('{a,"b c","d\\"e","NULL",NULL}', 'text')).toBe('["a","b c","d\\"e","NULL",null]');
    expect(pgArrayToJson('{{1,2},{3,4}}', 'int')).toBe('[[1,2],[3,4]]');
    expect(pgArrayToJson('[0:1]={t,f}', 'bool')).toBe('[true,false]');
    expect(pgArrayToJson('{}', 'text')).toBe('[]');
    expect(pgArrayToJson('{1.5,NaN}', 'float')).toBe('[1.5,"NaN"]');
    expect(() => pgArrayToJson('{1,2', 'int')).toThrow(TidemarkError);
  });
});
