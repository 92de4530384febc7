/**
 * PostgreSQL → MySQL / MariaDB / TiDB column types, and text-form cells → bound values.
 * The mapping keeps every value exact; a column it cannot map fails at table creation
 * (SINK_UNSUPPORTED_TYPE naming table, column and type), a value a column cannot hold fails the
 * epoch (SINK_VALUE_OUT_OF_RANGE), never a silent rounding or truncation (sessions also run in
 * STRICT_ALL_TABLES).
 *
 * | PostgreSQL                  | MySQL                  | note                                     |
 * |-----------------------------|------------------------|------------------------------------------|
 * | bool                        | TINYINT(1)             | 1 / 0                                    |
 * | int2 / int4 / int8, oid     | SMALLINT / INT / BIGINT| oid → BIGINT                              |
 * | float4 / float8             | FLOAT / DOUBLE         | NaN and ±Infinity refused                |
 * | numeric(p,s)                | DECIMAL(p,s)           | p ≤ 65, 0 ≤ s ≤ 30, else refused          |
 * | numeric                     | DECIMAL(65,30)         | values with > 35 integer or > 30 fraction digits refused |
 * | text, name                  | LONGTEXT               | VARCHAR(255) when part of the key        |
 * | varchar(n) / char(n)        | VARCHAR(n) / CHAR(n)   | CHAR drops trailing spaces when read     |
 * | bytea                       | LONGBLOB               | VARBINARY(255) when part of the key      |
 * | timestamptz                 | DATETIME(6)            | converted to UTC; years 1000–9999        |
 * | timestamp / date / time     | DATETIME(6) / DATE / TIME(6) |                                    |
 * | json, jsonb                 | JSON                   |                                          |
 * | uuid                        | CHAR(36)               |                                          |
 * | arrays                      | JSON                   | nested JSON arrays (see shared/pg-array-json.ts)     |
 * | enums                       | VARCHAR(255)           |                                          |
 * | interval, inet, cidr, macaddr, money, timetz, xml, bit, varbit, tsvector, pg_lsn | LONGTEXT | PostgreSQL text form |
 * | anything else (geometric, ranges, composites, domains) | refused |                             |
 */
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { arrayElementKind } from '../shared/json-values.ts';
import { byteaFromText, charLength, numericPrecision, pgTypeKind } from '../shared/pg-type-kind.ts';
import { pgArrayToJson } from '../shared/pg-array-json.ts';

export type MysqlValue = string | number | Buffer | null;
export type MysqlConverter = (text: string) => MysqlValue;

export interface MysqlColumnType {
  /** The column type in DDL, e.g. `DECIMAL(12,2)`. */
  readonly ddl: string;
  readonly convert: MysqlConverter;
  /** True for JSON columns (compared with CAST(? AS JSON)). */
  readonly json: boolean;
}

/** Text-form types stored as LONGTEXT (OIDs: interval, inet, cidr, macaddr(8), money, timetz, xml, bit, varbit, tsvector, tsquery, pg_lsn). */
const TEXT_LIKE_OIDS = new Set([1186, 869, 650, 829, 774, 790, 1266, 142, 1560, 1562, 3614, 3615, 3220]);
const KEY_TEXT = 'VARCHAR(255)';

export function mysqlColumnType(column: ColumnSchema, table: TableSchema): MysqlColumnType {
  const kind = pgTypeKind(column, table);
  const where = `${table.schema}.${table.name}.${column.name}`;
  const plain = (ddl: string, convert: MysqlConverter = (t) => t): MysqlColumnType => ({
    ddl,
    convert,
    json: false,
  });
  switch (kind) {
    case 'bool':
      return plain('TINYINT(1)', (t) => (t === 't' ? 1 : 0));
    case 'int2':
      return plain('SMALLINT');
    case 'int4':
      return plain('INT');
    case 'int8':
      return plain('BIGINT');
    case 'float4':
    case 'float8':
      return plain(kind === 'float4' ? 'FLOAT' : 'DOUBLE', (t) => {
        if (!/^-?\d/.test(t)) throw outOfRange(where, t, 'MySQL has no NaN or Infinity');
        return t;
      });
    case 'numeric':
      return numericType(column, where);
    case 'text':
      return plain(column.isKey ? KEY_TEXT : 'LONGTEXT');
    case 'varchar':
    case 'bpchar': {
      const n = charLength(column);
      if (n === null) return plain(column.isKey ? KEY_TEXT : 'LONGTEXT');
      if (kind === 'bpchar' && n <= 255) return plain(`CHAR(${n})`);
      if (n <= (column.isKey ? 768 : 16383)) return plain(`VARCHAR(${n})`);
      if (column.isKey)
        throw unsupported(column, table, `a key column longer than 768 characters cannot be indexed`);
      return plain('LONGTEXT');
    }
    case 'bytea':
      return plain(column.isKey ? 'VARBINARY(255)' : 'LONGBLOB', byteaFromText);
    case 'timestamptz':
      return plain('DATETIME(6)', (t) => timestamptzToUtc(t, where));
    case 'timestamp':
      return plain('DATETIME(6)', (t) => checkYear(t, where));
    case 'date':
      return plain('DATE', (t) => checkYear(t, where));
    case 'time':
      return plain('TIME(6)', (t) => {
        if (t.startsWith('24:'))
          throw outOfRange(where, t, 'MySQL TIME(6) reads 24:00:00 back as a duration');
        return t;
      });
    case 'json':
      return { ddl: 'JSON', convert: (t) => t, json: true };
    case 'uuid':
      return plain('CHAR(36)');
    case 'array': {
      const element = arrayElementKind(column);
      return { ddl: 'JSON', convert: (t) => pgArrayToJson(t, element), json: true };
    }
    case 'enum':
      return plain('VARCHAR(255)');
    case 'interval':
    case 'other':
      if (TEXT_LIKE_OIDS.has(column.typeOid) || column.typeOid === 18) {
        return plain(column.isKey ? KEY_TEXT : 'LONGTEXT');
      }
      throw unsupported(column, table, 'no faithful MySQL type');
  }
}

function numericType(column: ColumnSchema, where: string): MysqlColumnType {
  const p = numericPrecision(column);
  const [precision, scale] = p ? [p.precision, p.scale] : [65, 30];
  if (precision > 65 || scale > 30 || scale < 0) {
    throw new TidemarkError('SINK_UNSUPPORTED_TYPE', {
      detail: `column ${where} of type ${column.typeName}: MySQL DECIMAL allows precision ≤ 65 and 0 ≤ scale ≤ 30`,
    });
  }
  const maxInt = precision - scale;
  return {
    ddl: `DECIMAL(${precision},${scale})`,
    json: false,
    convert: (t) => {
      const m = /^-?(\d+)(?:\.(\d+))?$/.exec(t);
      if (!m) throw outOfRange(where, t, 'MySQL DECIMAL has no NaN or Infinity');
      const intDigits = m[1]!.replace(/^0+/, '').length;
      const fracDigits = (m[2] ?? '').replace(/0+$/, '').length;
      if (intDigits > maxInt || fracDigits > scale) {
        throw outOfRange(where, t, `does not fit DECIMAL(${precision},${scale}) without rounding`);
      }
      return t;
    },
  };
}

/** `2024-02-29 12:34:56.123456+05:30` → `2024-02-29 07:04:56.123456` (UTC). */
export function timestamptzToUtc(text: string, where: string): string {
  const m = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/.exec(
    text,
  );
  if (!m) throw outOfRange(where, text, 'MySQL DATETIME holds years 1000–9999 and no infinity or BC dates');
  const [, y, mo, d, h, mi, s, frac, sign, oh, om, os] = m;
  const offsetS = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om ?? 0) * 60 + Number(os ?? 0));
  const utcMs =
    Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offsetS * 1000;
  const iso = new Date(utcMs).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  return checkYear(`${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ?? ''}`, where);
}

function checkYear(text: string, where: string): string {
  const m = /^(\d{4})-/.exec(text);
  if (!m || Number(m[1]) < 1000 || text.endsWith(' BC')) {
    throw outOfRange(where, text, 'MySQL DATE/DATETIME hold years 1000–9999 and no infinity or BC dates');
  }
  return text;
}

function outOfRange(where: string, value: string, why: string): TidemarkError {
  return new TidemarkError('SINK_VALUE_OUT_OF_RANGE', {
    detail: `column ${where}: value ${value.slice(0, 100)} ${why}`,
  });
}

function unsupported(column: ColumnSchema, table: TableSchema, why: string): TidemarkError {
  return new TidemarkError('SINK_UNSUPPORTED_TYPE', {
    detail: `table ${table.schema}.${table.name}, column ${column.name}, type ${column.typeName}: ${why}`,
  });
}
