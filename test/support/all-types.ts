/**
 * The shared all-types fixture: one column per built-in type family, each with the edge cases a
 * sink's type round-trip test must survive. Use:
 *
 *   for (const sql of allTypesSetupSql()) await db.query(sql);   // CREATE TYPE …; CREATE TABLE …
 *   for (const sql of allTypesInsertSql()) await db.query(sql);  // one INSERT per row
 *
 * Row `id` = i holds `values[i]` of every column (NULL where a column has fewer values); the last
 * row is all NULLs, so every column also carries NULL (and text carries both '' and NULL).
 */

export interface TypeCase {
  /** Column name in the all_types table. */
  readonly column: string;
  /** The column's SQL type as written in CREATE TABLE. */
  readonly sqlType: string;
  /** SQL literals (already quoted/cast), one per row. */
  readonly values: readonly string[];
}

/** The enum type the `c_enum` columns use. */
export const ALL_TYPES_ENUM = {
  name: 'all_types_mood',
  labels: ['sad', 'ok', 'happy', 'très "bien"'],
} as const;

export const ALL_TYPES: readonly TypeCase[] = [
  { column: 'c_int2', sqlType: 'smallint', values: ['-32768', '32767', '0'] },
  { column: 'c_int4', sqlType: 'integer', values: ['-2147483648', '2147483647', '0', '-1'] },
  {
    column: 'c_int8',
    sqlType: 'bigint',
    values: ['-9223372036854775808', '9223372036854775807', '0', '9007199254740993'],
  },
  {
    column: 'c_numeric',
    sqlType: 'numeric',
    values: [
      '123456789012345678901234567890.123456789',
      "'NaN'",
      '1.50',
      '-0.000000000000000000000000000001',
      '0',
      "'Infinity'",
      "'-Infinity'",
      '1e20',
    ],
  },
  { column: 'c_numeric_12_2', sqlType: 'numeric(12,2)', values: ['1234567890.12', '-0.5', '0', '3'] },
  {
    column: 'c_float4',
    sqlType: 'real',
    values: [
      "'NaN'",
      "'Infinity'",
      "'-Infinity'",
      "'-0'",
      '3.4028235e38',
      '1.17549435e-38',
      '0.1',
      '1234567',
    ],
  },
  {
    column: 'c_float8',
    sqlType: 'double precision',
    values: [
      "'NaN'",
      "'Infinity'",
      "'-Infinity'",
      "'-0'",
      '1e-300',
      '1.7976931348623157e308',
      '0.1',
      '5e-324',
      '1e15',
    ],
  },
  {
    column: 'c_text',
    sqlType: 'text',
    values: [
      "'plain'",
      "''",
      "'emoji 😀 and CJK 漢字'",
      "'it''s \"quoted\"'",
      "E'back\\\\slash'",
      "E'tab\\there\\nnewline\\r\\n'",
      "'NULL'",
      "E'\\u00e9 combining e\\u0301'",
      "' padded  '",
    ],
  },
  { column: 'c_varchar', sqlType: 'varchar(10)', values: ["'short'", "''", "'ten chars!'", "'ünïcødé'"] },
  { column: 'c_char', sqlType: 'char(5)', values: ["'ab'", "''", "'abcde'"] },
  { column: 'c_bytea', sqlType: 'bytea', values: ["'\\x00'", "''", "'\\x00ff00deadbeef'", "'\\x5c78'"] },
  { column: 'c_bool', sqlType: 'boolean', values: ['true', 'false'] },
  {
    column: 'c_uuid',
    sqlType: 'uuid',
    values: ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"],
  },
  {
    column: 'c_json',
    sqlType: 'json',
    values: [
      `'{"b": 1, "a": [1, 2.50, null], "s": "\\u00e9\\n"}'`,
      "'[]'",
      '\'"str"\'',
      '\'  {"spaces" :  true }\'',
    ],
  },
  {
    column: 'c_jsonb',
    sqlType: 'jsonb',
    values: [`'{"b": 1, "a": {"nested": [1, 2.50, null]}, "s": "\\u00e9 😀"}'`, "'[]'", "'null'", "'1e3'"],
  },
  {
    column: 'c_date',
    sqlType: 'date',
    values: [
      "'2024-02-29'",
      "'infinity'",
      "'-infinity'",
      "'0044-03-15 BC'",
      "'4714-11-24 BC'",
      "'5874897-12-31'",
      "'2000-01-01'",
    ],
  },
  {
    column: 'c_time',
    sqlType: 'time',
    values: ["'00:00:00'", "'23:59:59.999999'", "'12:34:56.5'", "'24:00:00'"],
  },
  {
    column: 'c_timetz',
    sqlType: 'timetz',
    values: ["'12:34:56+05:30'", "'00:00:00-12'", "'23:59:59.999999+00'"],
  },
  {
    column: 'c_timestamp',
    sqlType: 'timestamp',
    values: [
      "'2024-01-02 03:04:05.123456'",
      "'infinity'",
      "'-infinity'",
      "'0001-01-01 00:00:00 BC'",
      "'1999-12-31 23:59:59.999999'",
      "'294276-12-31 23:59:59.999999'",
      "'4714-11-24 00:00:00 BC'",
    ],
  },
  {
    column: 'c_timestamptz',
    sqlType: 'timestamptz',
    values: [
      "'2024-01-02 03:04:05.123456+00'",
      "'infinity'",
      "'-infinity'",
      "'2024-06-30 23:59:59.5-07:00'",
      "'0044-03-15 12:00:00+00 BC'",
      "'1970-01-01 00:00:00+00'",
    ],
  },
  {
    column: 'c_interval',
    sqlType: 'interval',
    values: [
      "'1 year 2 mons 3 days 04:05:06.789'",
      "'-1 year +2 mons -3 days +04:05:06'",
      "'0'",
      "'-00:00:00.000001'",
      "'1 mon -1 day'",
      "'100 hours'",
      "'178000000 years'",
    ],
  },
  {
    column: 'c_int4_arr',
    sqlType: 'integer[]',
    values: ["'{1,NULL,3}'", "'{}'", "'[0:2]={7,8,9}'", "'{-2147483648}'"],
  },
  {
    column: 'c_text_arr',
    sqlType: 'text[]',
    values: [`'{"a b","q\\"x","back\\\\slash",NULL,"NULL","",",","{}"}'`, "'{}'", "'{😀,漢字}'"],
  },
  {
    column: 'c_int4_2d',
    sqlType: 'integer[][]',
    values: ["'{{1,2},{3,4}}'", "'[0:1][1:2]={{1,NULL},{3,4}}'"],
  },
  { column: 'c_numeric_arr', sqlType: 'numeric[]', values: ["'{1.50,NaN,-Infinity,0.0}'"] },
  {
    column: 'c_timestamptz_arr',
    sqlType: 'timestamptz[]',
    values: [`'{"2024-01-02 03:04:05.5+00",infinity,NULL}'`],
  },
  { column: 'c_enum', sqlType: ALL_TYPES_ENUM.name, values: ["'sad'", "'happy'", `'très "bien"'`] },
  { column: 'c_enum_arr', sqlType: `${ALL_TYPES_ENUM.name}[]`, values: [`'{sad,"très \\"bien\\""}'`] },
  {
    column: 'c_inet',
    sqlType: 'inet',
    values: ["'127.0.0.1'", "'::1/128'", "'10.1.2.3/8'", "'2001:db8::1'"],
  },
  { column: 'c_cidr', sqlType: 'cidr', values: ["'10.0.0.0/8'", "'2001:db8::/32'"] },
  { column: 'c_macaddr', sqlType: 'macaddr', values: ["'08:00:2b:01:02:03'"] },
  { column: 'c_point', sqlType: 'point', values: ["'(1.5,-2)'", "'(0,0)'"] },
  { column: 'c_money', sqlType: 'money', values: ["'12.34'", "'-92233720368547758.08'"] },
  { column: 'c_varbit', sqlType: 'bit varying(16)', values: ["B'1010'", "B''"] },
  { column: 'c_tsvector', sqlType: 'tsvector', values: ["'a fat cat sat on a mat'", "''"] },
  { column: 'c_xml', sqlType: 'xml', values: ['\'<a x="1">text &amp; more</a>\'', "'<empty/>'"] },
];

/** Number of rows `allTypesInsertSql` inserts (the longest value list plus the all-NULL row). */
export const ALL_TYPES_ROW_COUNT = Math.max(...ALL_TYPES.map((c) => c.values.length)) + 1;

/** `CREATE TYPE` for the enum, then `CREATE TABLE <table> (id int primary key, <cols>)`. */
export function allTypesSetupSql(options: { table?: string } = {}): string[] {
  const table = options.table ?? 'all_types';
  const labels = ALL_TYPES_ENUM.labels.map((l) => `'${l.replaceAll("'", "''")}'`).join(', ');
  const cols = ALL_TYPES.map((c) => `${c.column} ${c.sqlType}`).join(',\n  ');
  return [
    `CREATE TYPE ${ALL_TYPES_ENUM.name} AS ENUM (${labels})`,
    `CREATE TABLE ${table} (\n  id int PRIMARY KEY,\n  ${cols}\n)`,
  ];
}

/** One `INSERT` per row: row i holds `values[i]` of each column, NULL past a column's list. */
export function allTypesInsertSql(options: { table?: string } = {}): string[] {
  const table = options.table ?? 'all_types';
  const names = ALL_TYPES.map((c) => c.column).join(', ');
  const out: string[] = [];
  for (let i = 0; i < ALL_TYPES_ROW_COUNT; i++) {
    const vals = ALL_TYPES.map((c) => c.values[i] ?? 'NULL').join(', ');
    out.push(`INSERT INTO ${table} (id, ${names}) VALUES (${i}, ${vals})`);
  }
  return out;
}
