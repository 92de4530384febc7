/**
 * Hand-built schemas, epochs and a text-form reader for the PostgreSQL sink tests.
 */
import type pg from 'pg';
import type { Row } from '../../src/core/row.ts';
import type { ColumnSchema, EnumType, TableSchema } from '../../src/core/table-schema.ts';
import type { Epoch, SnapshotRows, TableChanges } from '../../src/core/epoch.ts';
import type { TestDatabase } from '../support/db.ts';

export function col(
  name: string,
  typeName: string,
  opts: { key?: boolean; nullable?: boolean } = {},
): ColumnSchema {
  const isKey = opts.key ?? false;
  return { name, typeOid: 0, typeMod: -1, typeName, isKey, nullable: opts.nullable ?? !isKey };
}

export function table(
  name: string,
  columns: ColumnSchema[],
  opts: { schema?: string; enums?: EnumType[]; keyless?: boolean } = {},
): TableSchema {
  const keyColumns = columns.flatMap((c, i) => (c.isKey ? [i] : []));
  return {
    schema: opts.schema ?? 'public',
    name,
    relationId: 1000,
    columns,
    keyColumns,
    keyless: opts.keyless ?? keyColumns.length === 0,
    enums: opts.enums ?? [],
  };
}

export function changes(t: TableSchema, over: Partial<Omit<TableChanges, 'table'>>): TableChanges {
  return { table: t, truncate: false, deletes: [], upserts: [], partialUpdates: [], rowDeltas: [], ...over };
}

export function epoch(n: number, tables: TableChanges[]): Epoch {
  return {
    checkpoint: { position: `0/${(0x1000 + n * 0x100).toString(16).toUpperCase()}`, epoch: n },
    commitTimeMs: 1_700_000_000_000 + n,
    sourceChanges: tables.length,
    tables,
  };
}

/** A client whose session prints values the way the sink's source does. */
export async function reader(db: TestDatabase): Promise<pg.Client> {
  const c = await db.connect();
  await c.query(
    "SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = postgres; SET extra_float_digits = 3",
  );
  return c;
}

/** Every row as text cells (NULL stays null), as PostgreSQL prints them. */
export async function textRows(c: pg.Client, sql: string): Promise<Row[]> {
  const res = await c.query<Row>({
    text: sql,
    rowMode: 'array',
    types: { getTypeParser: () => (v: string) => v },
  });
  return res.rows;
}

export async function tableExists(c: pg.Client, name: string): Promise<boolean> {
  const { rows } = await c.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [name]);
  return rows[0]?.r != null;
}

/** A keyed table with one column of each kind whose text form is easy to get wrong. */
const mood: EnumType = { schema: 'public', name: 'mood', labels: ['sad', 'ok', 'happy 😀'] };
export const rich = table(
  'rich',
  [
    col('id', 'integer', { key: true }),
    col('n', 'numeric(20,6)'),
    col('ts', 'timestamp with time zone'),
    col('arr', 'text[]'),
    col('j', 'json'),
    col('jb', 'jsonb'),
    col('b', 'bytea'),
    col('m', 'public.mood'),
    col('t', 'text'),
    col('iv', 'interval'),
    col('f', 'double precision', { nullable: false }),
  ],
  { enums: [mood] },
);
/** A row of `rich` with every cell in PostgreSQL's text form; `t` varies. */
export const richRow = (id: number, t: string | null): Row => [
  String(id),
  '12345678901234.123456',
  '2024-02-29 23:59:59.123456+00',
  '{a,"b c","d\\"e",NULL,""}',
  '{"a": [1, 2.50], "b": "ü"}',
  '{"a": 1, "b": [true, null]}',
  '\\x00ff0a5c',
  'happy 😀',
  t,
  '1 year 2 mons 3 days 04:05:06.789',
  '0.1',
];

export async function* chunksOf(...parts: SnapshotRows[]): AsyncIterable<SnapshotRows> {
  yield* parts;
}
