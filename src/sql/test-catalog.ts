/** A small catalog for unit tests of the SQL front end (no database). */
import type { ColumnSchema, TableSchema } from '../core/table-schema.ts';
import { typeFromName, typeOid } from './sql-type.ts';

function col(name: string, typeName: string, isKey = false): ColumnSchema {
  return { name, typeOid: typeOid(typeFromName(typeName)), typeMod: -1, typeName, isKey, nullable: !isKey };
}

function table(name: string, relationId: number, columns: ColumnSchema[]): TableSchema {
  const keyColumns = columns.flatMap((c, i) => (c.isKey ? [i] : []));
  return {
    schema: 'public',
    name,
    relationId,
    columns,
    keyColumns,
    keyless: keyColumns.length === 0,
    enums: [],
  };
}

export const TEST_TABLES: readonly TableSchema[] = [
  table('orders', 1, [
    col('id', 'integer', true),
    col('customer_id', 'integer'),
    col('amount', 'numeric(12,2)'),
    col('status', 'text'),
    col('qty', 'smallint'),
    col('big', 'bigint'),
  ]),
  table('customers', 2, [
    col('id', 'integer', true),
    col('region', 'text'),
    col('name', 'text'),
    col('vip', 'boolean'),
  ]),
  table('lines', 3, [col('id', 'integer', true), col('order_id', 'integer'), col('qty', 'integer')]),
];

export function testCatalog(schema: string | null, name: string): TableSchema | undefined {
  return TEST_TABLES.find((t) => t.name === name && (schema === null || t.schema === schema));
}
