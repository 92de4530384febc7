/**
 * MySQL/MariaDB column types, and their place in the pivot type system (PostgreSQL's types).
 *
 * One normalised `MysqlType` is built from either description of a column — the catalog's
 * `COLUMN_TYPE` text (`describe`, the snapshot, DDL text) or a binlog TABLE_MAP's type code and
 * metadata (the stream, where the row was written) — so both give the same `ColumnSchema`.
 *
 * | MySQL                              | pivot (PostgreSQL)          | cell text                                  |
 * |------------------------------------|-----------------------------|--------------------------------------------|
 * | TINYINT, SMALLINT, YEAR            | smallint                    | decimal                                    |
 * | SMALLINT UNSIGNED, MEDIUMINT, INT  | integer                     |                                            |
 * | INT UNSIGNED, BIGINT               | bigint                      |                                            |
 * | BIGINT UNSIGNED                    | numeric(20,0)               | exact, up to 18446744073709551615          |
 * | DECIMAL(p,s)                       | numeric(p,s)                | exact, s fraction digits                   |
 * | FLOAT / DOUBLE                     | real / double precision     | shortest round-trip digits                 |
 * | DATE                               | date                        | zero dates → NULL (column nullable)        |
 * | DATETIME(f)                        | timestamp(f) without time zone | wall clock as stored                    |
 * | TIMESTAMP(f)                       | timestamp(f) with time zone | UTC, `+00`                                 |
 * | TIME(f)                            | interval                    | -838:59:59 … 838:59:59                     |
 * | CHAR(n), VARCHAR(n) (text charset) | character varying(n)        | decoded from the column's charset          |
 * | TINYTEXT … LONGTEXT                | text                        |                                            |
 * | BINARY, VARBINARY, … BLOB          | bytea                       | `\x…` hex                                  |
 * | ENUM, SET                          | text                        | the label; SET labels comma-separated      |
 * | BIT(n)                             | bit(n)                      | `0101…`                                    |
 * | JSON                               | json                        | the document text                          |
 * | GEOMETRY (all spatial types)       | bytea                       | WKB without the SRID prefix                |
 *
 * CHAR maps to `character varying`: MySQL strips CHAR's trailing spaces when read, PostgreSQL's
 * `character` would pad them back. Temporal columns are always nullable in the pivot: the zero
 * date (`0000-00-00`, and dates with a zero month or day) has no value in any sink, so it
 * becomes NULL.
 */
import type { ColumnSchema } from '../../core/table-schema.ts';
import { PgTypeOid } from '../../decode/pg-type-oids.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';

export type MysqlType =
  | { readonly kind: 'int'; readonly bytes: 1 | 2 | 3 | 4 | 8; readonly unsigned: boolean }
  | { readonly kind: 'year' }
  | { readonly kind: 'float' }
  | { readonly kind: 'double' }
  | { readonly kind: 'decimal'; readonly precision: number; readonly scale: number }
  | { readonly kind: 'date' }
  | { readonly kind: 'time'; readonly fsp: number }
  | { readonly kind: 'datetime'; readonly fsp: number }
  | { readonly kind: 'timestamp'; readonly fsp: number }
  /** CHAR/VARCHAR/BINARY/VARBINARY: `length` in characters (bytes when binary). */
  | { readonly kind: 'string'; readonly varying: boolean; readonly length: number; readonly binary: boolean }
  /** TINYTEXT…LONGTEXT and TINYBLOB…LONGBLOB. */
  | { readonly kind: 'blob'; readonly binary: boolean }
  | { readonly kind: 'enum'; readonly labels: readonly string[] }
  | { readonly kind: 'set'; readonly labels: readonly string[] }
  | { readonly kind: 'bit'; readonly bits: number }
  | { readonly kind: 'json' }
  | { readonly kind: 'geometry' };

interface Pivot {
  readonly typeOid: number;
  readonly typeMod: number;
  readonly typeName: string;
}

/** The pivot column type of a MySQL type. */
export function pivotType(t: MysqlType): Pivot {
  const O = PgTypeOid;
  switch (t.kind) {
    case 'int':
      if (t.bytes === 1 || (t.bytes === 2 && !t.unsigned)) return plain(O.int2, 'smallint');
      if (t.bytes === 3 || (t.bytes === 2 && t.unsigned) || (t.bytes === 4 && !t.unsigned))
        return plain(O.int4, 'integer');
      if (t.bytes === 4 || !t.unsigned) return plain(O.int8, 'bigint');
      return numeric(20, 0);
    case 'year':
      return plain(O.int2, 'smallint');
    case 'float':
      return plain(O.float4, 'real');
    case 'double':
      return plain(O.float8, 'double precision');
    case 'decimal':
      return numeric(t.precision, t.scale);
    case 'date':
      return plain(O.date, 'date');
    case 'time':
      return plain(O.interval, 'interval');
    case 'datetime':
      return { typeOid: O.timestamp, typeMod: t.fsp, typeName: `timestamp(${t.fsp}) without time zone` };
    case 'timestamp':
      return { typeOid: O.timestamptz, typeMod: t.fsp, typeName: `timestamp(${t.fsp}) with time zone` };
    case 'string':
      if (t.binary) return plain(O.bytea, 'bytea');
      return { typeOid: O.varchar, typeMod: t.length + 4, typeName: `character varying(${t.length})` };
    case 'blob':
      return t.binary ? plain(O.bytea, 'bytea') : plain(O.text, 'text');
    case 'enum':
    case 'set':
      return plain(O.text, 'text');
    case 'bit':
      return { typeOid: O.bit, typeMod: t.bits, typeName: `bit(${t.bits})` };
    case 'json':
      return plain(O.json, 'json');
    case 'geometry':
      return plain(O.bytea, 'bytea');
  }
}

function plain(typeOid: number, typeName: string): Pivot {
  return { typeOid, typeMod: -1, typeName };
}

function numeric(precision: number, scale: number): Pivot {
  return {
    typeOid: PgTypeOid.numeric,
    typeMod: ((precision << 16) | scale) + 4,
    typeName: `numeric(${precision},${scale})`,
  };
}

/** Whether NULL may appear in the pivot column even where MySQL says NOT NULL (zero dates). */
export function forcedNullable(t: MysqlType): boolean {
  return t.kind === 'date' || t.kind === 'datetime' || t.kind === 'timestamp';
}

export function columnSchema(
  name: string,
  type: MysqlType,
  options: { readonly isKey: boolean; readonly nullable: boolean },
): ColumnSchema {
  return {
    name,
    ...pivotType(type),
    isKey: options.isKey,
    nullable: options.nullable || forcedNullable(type),
  };
}

/**
 * Parses the catalog's `COLUMN_TYPE` (`int(10) unsigned`, `decimal(12,2)`, `enum('a','b')`,
 * `varchar(20)`, `datetime(6)`, `longtext`) with the column's character set (`binary` or null
 * for the binary string types). Also reads the column types of DDL text. Throws
 * SOURCE_UNSUPPORTED_TYPE naming `where` for a type Tidemark cannot replicate faithfully.
 */
export function parseColumnType(columnType: string, charset: string | null, where: string): MysqlType {
  const text = columnType.trim();
  const m = /^([a-z0-9_]+)\s*(?:\((.*)\))?\s*(.*)$/is.exec(text);
  if (!m) throw unsupported(where, columnType);
  const base = m[1]!.toLowerCase();
  const args = m[2] ?? '';
  const attrs = (m[3] ?? '').toLowerCase();
  const unsigned = /\bunsigned\b/.test(attrs);
  const nums = args
    .split(',')
    .map((s) => s.trim())
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
  const binaryCharset = charset === 'binary';
  switch (base) {
    case 'tinyint':
    case 'bool':
    case 'boolean':
      return { kind: 'int', bytes: 1, unsigned };
    case 'smallint':
      return { kind: 'int', bytes: 2, unsigned };
    case 'mediumint':
      return { kind: 'int', bytes: 3, unsigned };
    case 'int':
    case 'integer':
      return { kind: 'int', bytes: 4, unsigned };
    case 'bigint':
      return { kind: 'int', bytes: 8, unsigned };
    case 'serial':
      return { kind: 'int', bytes: 8, unsigned: true };
    case 'year':
      return { kind: 'year' };
    case 'float':
      if (nums.length === 1 && nums[0]! > 24) return { kind: 'double' };
      return { kind: 'float' };
    case 'double':
    case 'real':
      return { kind: 'double' };
    case 'decimal':
    case 'dec':
    case 'numeric':
    case 'fixed':
      return { kind: 'decimal', precision: nums[0] ?? 10, scale: nums[1] ?? 0 };
    case 'date':
      return { kind: 'date' };
    case 'time':
      return { kind: 'time', fsp: nums[0] ?? 0 };
    case 'datetime':
      return { kind: 'datetime', fsp: nums[0] ?? 0 };
    case 'timestamp':
      return { kind: 'timestamp', fsp: nums[0] ?? 0 };
    case 'char':
    case 'character':
      return { kind: 'string', varying: false, length: nums[0] ?? 1, binary: binaryCharset };
    case 'varchar':
      return { kind: 'string', varying: true, length: nums[0] ?? 0, binary: binaryCharset };
    case 'binary':
      return { kind: 'string', varying: false, length: nums[0] ?? 1, binary: true };
    case 'varbinary':
      return { kind: 'string', varying: true, length: nums[0] ?? 0, binary: true };
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
      return { kind: 'blob', binary: binaryCharset };
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
      return { kind: 'blob', binary: true };
    case 'enum':
      return { kind: 'enum', labels: parseLabels(args, where) };
    case 'set':
      return { kind: 'set', labels: parseLabels(args, where) };
    case 'bit':
      return { kind: 'bit', bits: nums[0] ?? 1 };
    case 'json':
      return { kind: 'json' };
    case 'geometry':
    case 'point':
    case 'linestring':
    case 'polygon':
    case 'multipoint':
    case 'multilinestring':
    case 'multipolygon':
    case 'geometrycollection':
    case 'geomcollection':
      return { kind: 'geometry' };
    default:
      throw unsupported(where, columnType);
  }
}

/** `'a','b''c'` → ['a', "b'c"] (the catalog doubles quotes; DDL may also backslash-escape). */
export function parseLabels(args: string, where: string): string[] {
  const labels: string[] = [];
  let i = 0;
  while (i < args.length) {
    while (i < args.length && /[\s,]/.test(args[i]!)) i++;
    if (i >= args.length) break;
    const q = args[i];
    if (q !== "'" && q !== '"') throw unsupported(where, `enum/set (${args})`);
    i++;
    let label = '';
    for (;;) {
      if (i >= args.length) throw unsupported(where, `enum/set (${args})`);
      const c = args[i]!;
      if (c === '\\' && i + 1 < args.length) {
        label += unescapeChar(args[i + 1]!);
        i += 2;
      } else if (c === q && args[i + 1] === q) {
        label += q;
        i += 2;
      } else if (c === q) {
        i++;
        break;
      } else {
        label += c;
        i++;
      }
    }
    labels.push(label);
  }
  return labels;
}

function unescapeChar(c: string): string {
  switch (c) {
    case 'n':
      return '\n';
    case 't':
      return '\t';
    case 'r':
      return '\r';
    case '0':
      return '\0';
    default:
      return c;
  }
}

export function unsupported(where: string, type: string): TidemarkError {
  return new TidemarkError('SOURCE_UNSUPPORTED_TYPE', {
    detail: `${where} has type ${type}, which Tidemark cannot replicate faithfully`,
  });
}
