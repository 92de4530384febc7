import type { Row } from '../../core/row.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { BinlogReader, protocolError } from './binlog-reader.ts';
import type { RowsEvent, TableMap, TableMapColumn } from './binlog-events.ts';
import type { CollationTable } from './charsets.ts';
import type { MysqlType } from './column-types.ts';
import { T } from './type-codes.ts';
import { cellDecoder, type CellDecoder } from './binlog-values.ts';

/**
 * Row images of WRITE/UPDATE/DELETE_ROWS events, decoded with their TABLE_MAP: the map is the
 * shape in force where the row was written (binlog_row_metadata=FULL adds names, signedness,
 * charsets, enum labels and the key), so rows never depend on the catalog as it is now.
 */
export interface MappedColumn {
  readonly name: string;
  readonly type: MysqlType;
  readonly nullable: boolean;
  readonly decode: CellDecoder;
}

export interface MappedTable {
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly MappedColumn[];
  /** Key column indexes from the map (empty: none). */
  readonly primaryKey: readonly number[];
}

/** Compiles a table map into per-column types and decoders. */
export function mapTable(map: TableMap, collations: CollationTable): MappedTable {
  if (!map.full) {
    throw new TidemarkError('SOURCE_BINLOG_ROW_METADATA', {
      detail: `the table map of ${map.schema}.${map.table} carries no column names`,
    });
  }
  const columns = map.columns.map((c, i) => {
    const where = `${map.schema}.${map.table}.${c.name ?? `#${i + 1}`}`;
    const type = typeOfMapColumn(c, collations, where);
    return {
      name: c.name ?? `col${i + 1}`,
      type,
      nullable: c.nullable,
      decode: cellDecoder(c, type, collations, where),
    };
  });
  return { schema: map.schema, table: map.table, columns, primaryKey: map.primaryKey ?? [] };
}

export function typeOfMapColumn(c: TableMapColumn, collations: CollationTable, where: string): MysqlType {
  const charset = () => (c.collation === null ? null : collations.get(c.collation));
  switch (c.type) {
    case T.TINY:
      return { kind: 'int', bytes: 1, unsigned: c.unsigned };
    case T.SHORT:
      return { kind: 'int', bytes: 2, unsigned: c.unsigned };
    case T.INT24:
      return { kind: 'int', bytes: 3, unsigned: c.unsigned };
    case T.LONG:
      return { kind: 'int', bytes: 4, unsigned: c.unsigned };
    case T.LONGLONG:
      return { kind: 'int', bytes: 8, unsigned: c.unsigned };
    case T.YEAR:
      return { kind: 'year' };
    case T.FLOAT:
      return { kind: 'float' };
    case T.DOUBLE:
      return { kind: 'double' };
    case T.NEWDECIMAL:
      return { kind: 'decimal', precision: c.meta, scale: c.meta2 };
    case T.DATE:
    case T.NEWDATE:
      return { kind: 'date' };
    case T.TIME:
      return { kind: 'time', fsp: 0 };
    case T.TIME2:
      return { kind: 'time', fsp: c.meta };
    case T.DATETIME:
      return { kind: 'datetime', fsp: 0 };
    case T.DATETIME2:
      return { kind: 'datetime', fsp: c.meta };
    case T.TIMESTAMP:
      return { kind: 'timestamp', fsp: 0 };
    case T.TIMESTAMP2:
      return { kind: 'timestamp', fsp: c.meta };
    case T.BIT:
      return { kind: 'bit', bits: c.meta2 * 8 + c.meta };
    case T.JSON:
      return { kind: 'json' };
    case T.GEOMETRY:
      return { kind: 'geometry' };
    case T.BLOB:
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB: {
      const cs = charset();
      return { kind: 'blob', binary: cs === null || cs.decode === null };
    }
    case T.VARCHAR:
    case T.VAR_STRING:
    case T.STRING: {
      if (c.realType === T.ENUM || c.realType === T.SET) {
        if (c.labels === null) {
          throw new TidemarkError('SOURCE_BINLOG_ROW_METADATA', {
            detail: `${where}: the table map carries no labels`,
          });
        }
        return c.realType === T.ENUM ? { kind: 'enum', labels: c.labels } : { kind: 'set', labels: c.labels };
      }
      const cs = charset();
      const binary = cs === null || cs.decode === null;
      const varying = c.type !== T.STRING;
      return { kind: 'string', varying, length: binary ? c.meta : Math.floor(c.meta / cs.maxBytes), binary };
    }
    default:
      throw new TidemarkError('SOURCE_UNSUPPORTED_TYPE', {
        detail: `${where} has binlog type code ${c.type}, which Tidemark cannot decode`,
      });
  }
}

/** One decoded row change: `before` for update/delete, `after` for insert/update. */
export interface RowImage {
  readonly before: Row | null;
  readonly after: Row | null;
}

/**
 * Decodes every row of a rows event. Columns missing from the image (MINIMAL/NOBLOB row images)
 * would be silently wrong downstream, so an image that does not carry every column throws.
 */
export function decodeRows(event: RowsEvent, table: MappedTable): RowImage[] {
  const r = new BinlogReader(event.buf, event.bodyStart, event.bodyEnd);
  const where = `${table.schema}.${table.table}`;
  try {
    const count = r.lenenc();
    if (count !== table.columns.length) {
      throw protocolError(
        `rows event of ${where} has ${count} columns, its table map ${table.columns.length}`,
        r.pos,
      );
    }
    const bitmapBytes = (count + 7) >> 3;
    checkAllPresent(r.bytes(bitmapBytes), count, where);
    if (event.kind === 'update') checkAllPresent(r.bytes(bitmapBytes), count, where);
    const out: RowImage[] = [];
    while (r.remaining() > 0) {
      const first = readImage(r, table);
      if (event.kind === 'insert') out.push({ before: null, after: first });
      else if (event.kind === 'delete') out.push({ before: first, after: null });
      else out.push({ before: first, after: readImage(r, table) });
    }
    return out;
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    throw protocolError(`rows event of ${where} is malformed`, r.pos, err);
  }
}

function checkAllPresent(bitmap: Buffer, count: number, where: string): void {
  for (let i = 0; i < count; i++) {
    if ((bitmap[i >> 3]! & (1 << (i & 7))) === 0) {
      throw new TidemarkError('SOURCE_BINLOG_ROW_IMAGE', {
        detail: `a row event of ${where} leaves out column ${i + 1}`,
      });
    }
  }
}

function readImage(r: BinlogReader, table: MappedTable): Row {
  const columns = table.columns;
  const n = columns.length;
  const nulls = r.bytes((n + 7) >> 3);
  const row: Row = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    if ((nulls[i >> 3]! & (1 << (i & 7))) !== 0) row[i] = null;
    else row[i] = columns[i]!.decode(r);
  }
  return row;
}
