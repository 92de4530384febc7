/**
 * Every MariaDB column type at its edges, shared by the connector's type test and the sinks'
 * round trip: column name, MariaDB type, pivot (PostgreSQL) type name, one SQL literal per row.
 * Row 3 holds the zero dates (they become NULL: README "MySQL / MariaDB as a source").
 */
export const MARIADB_TYPE_COLUMNS: [string, string, string, string[]][] = [
  ['ti', 'tinyint', 'smallint', ['-128', '127', 'NULL', '0']],
  ['tiu', 'tinyint unsigned', 'smallint', ['0', '255', 'NULL', '1']],
  ['si', 'smallint', 'smallint', ['-32768', '32767', 'NULL', '0']],
  ['siu', 'smallint unsigned', 'integer', ['0', '65535', 'NULL', '0']],
  ['mi', 'mediumint', 'integer', ['-8388608', '8388607', 'NULL', '0']],
  ['miu', 'mediumint unsigned', 'integer', ['0', '16777215', 'NULL', '0']],
  ['i', 'int', 'integer', ['-2147483648', '2147483647', 'NULL', '0']],
  ['iu', 'int unsigned', 'bigint', ['0', '4294967295', 'NULL', '0']],
  ['bi', 'bigint', 'bigint', ['-9223372036854775808', '9223372036854775807', 'NULL', '0']],
  ['biu', 'bigint unsigned', 'numeric(20,0)', ['0', '18446744073709551615', 'NULL', '9223372036854775808']],
  [
    'd65',
    'decimal(65,30)',
    'numeric(65,30)',
    [
      '-99999999999999999999999999999999999.999999999999999999999999999999',
      '99999999999999999999999999999999999.999999999999999999999999999999',
      'NULL',
      '0.000000000000000000000000000001',
    ],
  ],
  ['d52', 'decimal(5,2)', 'numeric(5,2)', ['-999.99', '999.99', 'NULL', '-0.01']],
  ['d180', 'decimal(18,0)', 'numeric(18,0)', ['-999999999999999999', '999999999999999999', 'NULL', '0']],
  ['d90', 'decimal(9,9)', 'numeric(9,9)', ['-0.999999999', '0.123456789', 'NULL', '0']],
  ['f', 'float', 'real', ['-3.40282e38', '3.40282e38', 'NULL', '1.1']],
  [
    'db',
    'double',
    'double precision',
    ['-1.7976931348623157e308', '1.7976931348623157e308', 'NULL', '0.30000000000000004'],
  ],
  ['dt', 'date', 'date', ["'1000-01-01'", "'9999-12-31'", 'NULL', "'0000-00-00'"]],
  [
    'dtm',
    'datetime(6)',
    'timestamp(6) without time zone',
    ["'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'", 'NULL', "'0000-00-00 00:00:00'"],
  ],
  [
    'dtm0',
    'datetime',
    'timestamp(0) without time zone',
    ["'1000-01-01 00:00:00'", "'9999-12-31 23:59:59'", 'NULL', "'2024-02-29 12:00:00'"],
  ],
  [
    'dtm3',
    'datetime(3)',
    'timestamp(3) without time zone',
    ["'2024-01-01 00:00:00.1'", "'2024-01-01 00:00:00.999'", 'NULL', "'2024-01-01 00:00:00.010'"],
  ],
  [
    'ts',
    'timestamp(6) NULL',
    'timestamp(6) with time zone',
    ["'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'", 'NULL', "'2024-06-30 12:34:56.5'"],
  ],
  ['tm', 'time(6)', 'interval', ["'-838:59:59'", "'838:59:59'", 'NULL', "'-00:00:00.000001'"]],
  ['tm0', 'time', 'interval', ["'-838:59:59'", "'838:59:59'", 'NULL', "'00:00:00'"]],
  ['tm2', 'time(2)', 'interval', ["'-838:59:58.99'", "'12:34:56.5'", 'NULL', "'-00:00:00.01'"]],
  ['tm4', 'time(4)', 'interval', ["'-838:59:58.9999'", "'12:34:56.0001'", 'NULL', "'-01:00:00.5'"]],
  ['y', 'year', 'smallint', ['1901', '2155', 'NULL', '0']],
  ['c', 'char(10)', 'character varying(10)', ["''", "'trail  '", 'NULL', "'日本語'"]],
  [
    'vc',
    'varchar(300)',
    'character varying(300)',
    ["''", "REPEAT('é', 300)", 'NULL', '\'tab\\there \\"q\\" 🙂\''],
  ],
  ['vcl', 'varchar(10) CHARACTER SET latin1', 'character varying(10)', ["''", "'café €'", 'NULL', "'x'"]],
  ['bin', 'binary(4)', 'bytea', ["x''", "x'ffffffff'", 'NULL', "x'01'"]],
  ['vbin', 'varbinary(300)', 'bytea', ["x''", "REPEAT(x'00ff', 150)", 'NULL', "x'00'"]],
  ['tt', 'tinytext', 'text', ["''", "REPEAT('a', 255)", 'NULL', "'x'"]],
  ['tx', 'text', 'text', ["''", "REPEAT('b', 65535)", 'NULL', "'line\\nbreak'"]],
  ['lt', 'longtext', 'text', ["''", "REPEAT('🙂', 100000)", 'NULL', "'x'"]],
  ['bl', 'blob', 'bytea', ["''", "REPEAT(x'01', 65535)", 'NULL', "x'00'"]],
  ['lb', 'longblob', 'bytea', ["''", "REPEAT(x'ab', 300000)", 'NULL', "x'00'"]],
  ['e', "enum('a','b c','é')", 'text', ["'a'", "'é'", 'NULL', "'b c'"]],
  ['st', "set('x','y','z')", 'text', ["''", "'x,y,z'", 'NULL', "'z'"]],
  ['b1', 'bit(1)', 'bit(1)', ["b'0'", "b'1'", 'NULL', "b'1'"]],
  ['b10', 'bit(10)', 'bit(10)', ["b'0'", "b'1111111111'", 'NULL', "b'1000000001'"]],
  ['b64', 'bit(64)', 'bit(64)', ["b'0'", "x'ffffffffffffffff'", 'NULL', "x'8000000000000001'"]],
  ['j', 'json', 'text', ["'{}'", `'{"a": [1, 2.5, null], "b": "é"}'`, 'NULL', '\' [ 1 , "x" ] \'']],
  [
    'g',
    'geometry',
    'bytea',
    [
      "ST_GeomFromText('POINT(1 2)')",
      "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 0))')",
      'NULL',
      "ST_GeomFromText('LINESTRING(0 0,1.5 -2)')",
    ],
  ],
];

export const MARIADB_TYPE_ROWS = MARIADB_TYPE_COLUMNS[0]![3].length;

/** `CREATE TABLE <name> (id int PRIMARY KEY, <every column>)`. */
export function mariaDbTypesTableSql(name: string): string {
  return `CREATE TABLE \`${name}\` (id int PRIMARY KEY, ${MARIADB_TYPE_COLUMNS.map(([n, t]) => `${n} ${t}`).join(', ')})`;
}

/** The rows, ids `base` … `base + 3`, inserted with zero dates allowed and the session in UTC. */
export function mariaDbTypesInsertSql(name: string, base: number): string {
  const cols = MARIADB_TYPE_COLUMNS.map((c) => c[0]).join(', ');
  const values = Array.from(
    { length: MARIADB_TYPE_ROWS },
    (_, r) => `(${base + r}, ${MARIADB_TYPE_COLUMNS.map((c) => c[3][r]).join(', ')})`,
  ).join(',\n');
  return `SET SESSION sql_mode = ''; SET SESSION time_zone = '+00:00'; INSERT INTO \`${name}\` (id, ${cols}) VALUES ${values}`;
}
