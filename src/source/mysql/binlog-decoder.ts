import { crc32 } from 'node:zlib';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { BinlogReader, protocolError } from './binlog-reader.ts';
import {
  EventType as E,
  type BinlogEvent,
  type DecodedEvent,
  type EventHeader,
  type RowsKind,
  type TableMapColumn,
  type XaId,
} from './binlog-events.ts';
import { T, isCharacterType, isEnumOrSet, isNumericType } from './type-codes.ts';

/**
 * Decodes binlog events (v4 format, MariaDB ≥ 10.0 and MySQL ≥ 5.6): the 19-byte header, the
 * CRC32 trailer when the stream has checksums, and each event's body. No I/O and no state but
 * the checksum setting, which the FORMAT_DESCRIPTION event announces and the dump requested.
 *
 * Every read is bounded by the event's end less its checksum; malformed input throws
 * SOURCE_PROTOCOL naming the event type and offset, a checksum mismatch names both values.
 * Events that would silently lose rows (compressed or encrypted binlogs, transaction payloads,
 * partial JSON updates) throw SOURCE_UNSUPPORTED_EVENT; an INCIDENT is returned for the caller
 * to raise.
 */
export const HEADER_BYTES = 19;

export function readHeader(buf: Buffer, start = 0): EventHeader {
  if (buf.length - start < HEADER_BYTES) {
    throw protocolError(`event header needs ${HEADER_BYTES} bytes, got ${buf.length - start}`, start);
  }
  return {
    timestamp: buf.readUInt32LE(start),
    type: buf[start + 4]!,
    serverId: buf.readUInt32LE(start + 5),
    size: buf.readUInt32LE(start + 9),
    logPos: buf.readUInt32LE(start + 13),
    flags: buf.readUInt16LE(start + 17),
  };
}

/**
 * Decodes one event occupying `buf[start, start + header.size)`. `checksum`: whether the event
 * ends with a CRC32 (the FORMAT_DESCRIPTION event says so for itself).
 */
export function decodeEvent(buf: Buffer, start: number, checksum: boolean): DecodedEvent {
  const header = readHeader(buf, start);
  const eventEnd = start + header.size;
  if (header.size < HEADER_BYTES || eventEnd > buf.length) {
    throw protocolError(
      `event of type ${header.type} claims ${header.size} bytes, ${buf.length - start} present`,
      start,
    );
  }
  let hasChecksum = checksum;
  if (header.type === E.FORMAT_DESCRIPTION) hasChecksum = formatHasChecksum(buf, start, eventEnd);
  const end = hasChecksum ? eventEnd - 4 : eventEnd;
  if (end < start + HEADER_BYTES)
    throw protocolError(`event of type ${header.type} is shorter than its checksum`, start);
  if (hasChecksum) {
    const want = buf.readUInt32LE(end);
    const got = eventCrc(buf, start, end, header);
    if (want !== got) {
      throw protocolError(
        `event of type ${header.type} at log position ${header.logPos} fails its CRC32 (stored ${hex(want)}, computed ${hex(got)})`,
        start,
      );
    }
  }
  const r = new BinlogReader(buf, start + HEADER_BYTES, end);
  try {
    return { header, event: decodeBody(header, r, buf, end) };
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    throw protocolError(`event of type ${header.type} is malformed`, r.pos, err);
  }
}

/**
 * The CRC32 of an event. A FORMAT_DESCRIPTION with LOG_EVENT_BINLOG_IN_USE_F (the file is still
 * being written) was checksummed before the server set that flag, so the flag is cleared first.
 */
function eventCrc(buf: Buffer, start: number, end: number, h: EventHeader): number {
  if (h.type !== E.FORMAT_DESCRIPTION || (h.flags & 1) === 0) return crc32(buf.subarray(start, end));
  const copy = Buffer.from(buf.subarray(start, end));
  copy.writeUInt16LE(h.flags & ~1, 17);
  return crc32(copy);
}

/** FORMAT_DESCRIPTION: checksum algorithm byte just before the (optional) 4-byte CRC. */
function formatHasChecksum(buf: Buffer, start: number, eventEnd: number): boolean {
  // binlog_version 2, server_version 50, create_timestamp 4, header_length 1, post-header
  // lengths …, checksum_alg 1, [crc 4]. Servers before checksums (MySQL < 5.6.1) have no alg byte.
  const bodyStart = start + HEADER_BYTES;
  const version = buf.toString('latin1', bodyStart + 2, bodyStart + 52).replace(/\0.*$/s, '');
  if (!hasChecksumAlgorithm(version)) return false;
  const alg = buf[eventEnd - 5];
  return alg === 1;
}

function hasChecksumAlgorithm(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) return true;
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (/mariadb/i.test(version)) return a > 5 || (a === 5 && b >= 3);
  return a > 5 || (a === 5 && (b > 6 || (b === 6 && c >= 1)));
}

function decodeBody(h: EventHeader, r: BinlogReader, buf: Buffer, end: number): BinlogEvent {
  switch (h.type) {
    case E.FORMAT_DESCRIPTION: {
      const binlogVersion = r.u16();
      const serverVersion = r.str(50).replace(/\0.*$/s, '');
      return {
        tag: 'format',
        binlogVersion,
        serverVersion,
        checksum: hasChecksumAlgorithm(serverVersion) && buf[r.end - 1] === 1,
      };
    }
    case E.ROTATE: {
      const position = Number(r.u64());
      return { tag: 'rotate', position, file: r.rest(), fake: h.timestamp === 0 || h.logPos === 0 };
    }
    case E.GTID:
      return decodeGtid(h, r);
    case E.GTID_LIST: {
      const word = r.u32();
      const count = word & 0x0fffffff;
      const gtids: { domain: number; server: number; seq: bigint }[] = [];
      for (let i = 0; i < count; i++) gtids.push({ domain: r.u32(), server: r.u32(), seq: r.u64() });
      return { tag: 'gtid-list', gtids };
    }
    case E.MYSQL_GTID:
      return decodeMysqlGtid(r);
    case E.QUERY:
      return decodeQuery(r);
    case E.XID:
      return { tag: 'xid', xid: r.u64() };
    case E.XA_PREPARE: {
      const onePhase = r.u8() !== 0;
      const formatId = r.u32();
      const gtridLen = r.u32();
      const bqualLen = r.u32();
      return {
        tag: 'xa-prepare',
        onePhase,
        xid: { formatId, gtrid: r.bytes(gtridLen), bqual: r.bytes(bqualLen) },
      };
    }
    case E.TABLE_MAP:
      return decodeTableMap(r);
    case E.WRITE_ROWS_V1:
    case E.UPDATE_ROWS_V1:
    case E.DELETE_ROWS_V1:
      return decodeRows(r, buf, end, ROWS_KIND[h.type - E.WRITE_ROWS_V1]!, false);
    case E.WRITE_ROWS_V2:
    case E.UPDATE_ROWS_V2:
    case E.DELETE_ROWS_V2:
      return decodeRows(r, buf, end, ROWS_KIND[h.type - E.WRITE_ROWS_V2]!, true);
    case E.HEARTBEAT:
      return { tag: 'heartbeat', file: r.rest() };
    case E.HEARTBEAT_V2:
      return { tag: 'heartbeat', file: '' };
    case E.ANNOTATE_ROWS:
    case E.ROWS_QUERY:
      return { tag: 'annotate', sql: h.type === E.ROWS_QUERY ? (r.skip(1), r.rest()) : r.rest() };
    case E.INCIDENT: {
      const code = r.u16();
      const len = r.remaining() > 0 ? r.u8() : 0;
      return { tag: 'incident', code, message: r.str(Math.min(len, r.remaining())) };
    }
    case E.BINLOG_CHECKPOINT:
    case E.STOP:
    case E.INTVAR:
    case E.RAND:
    case E.USER_VAR:
    case E.MYSQL_ANONYMOUS_GTID:
    case E.MYSQL_PREVIOUS_GTIDS:
    case E.IGNORABLE:
      return { tag: 'ignored' };
    case E.START_ENCRYPTION:
      throw unsupportedEvent('an encrypted binary log (encrypt_binlog=ON)');
    case E.QUERY_COMPRESSED:
    case E.WRITE_ROWS_COMPRESSED_V1:
    case E.UPDATE_ROWS_COMPRESSED_V1:
    case E.DELETE_ROWS_COMPRESSED_V1:
    case E.WRITE_ROWS_COMPRESSED:
    case E.UPDATE_ROWS_COMPRESSED:
    case E.DELETE_ROWS_COMPRESSED:
      throw unsupportedEvent('a compressed binary log event (log_bin_compress=ON)');
    case E.TRANSACTION_PAYLOAD:
      throw unsupportedEvent('a compressed transaction (binlog_transaction_compression=ON)');
    case E.PARTIAL_UPDATE_ROWS:
      throw unsupportedEvent('a partial JSON update (binlog_row_value_options=PARTIAL_JSON)');
    default:
      // Flag LOG_EVENT_IGNORABLE_F (0x80): the server says a reader may skip it.
      if ((h.flags & 0x80) !== 0) return { tag: 'ignored' };
      throw unsupportedEvent(`event type ${h.type}`);
  }
}

const ROWS_KIND: readonly RowsKind[] = ['insert', 'update', 'delete'];

/** MariaDB GTID flags2 bits (`Gtid_log_event`). */
const FL_STANDALONE = 1;
const FL_GROUP_COMMIT_ID = 2;
const FL_PREPARED_XA = 64;
const FL_COMPLETED_XA = 128;

function decodeGtid(h: EventHeader, r: BinlogReader): BinlogEvent {
  const seq = r.u64();
  const domain = r.u32();
  const flags2 = r.u8();
  if ((flags2 & FL_GROUP_COMMIT_ID) !== 0) r.skip(8);
  let xa: { phase: 'prepare' | 'complete'; xid: XaId } | null = null;
  if ((flags2 & (FL_PREPARED_XA | FL_COMPLETED_XA)) !== 0) {
    const formatId = r.u32();
    const gtridLen = r.u8();
    const bqualLen = r.u8();
    const xid = { formatId, gtrid: r.bytes(gtridLen), bqual: r.bytes(bqualLen) };
    xa = { phase: (flags2 & FL_PREPARED_XA) !== 0 ? 'prepare' : 'complete', xid };
  }
  return { tag: 'gtid', domain, server: h.serverId, seq, standalone: (flags2 & FL_STANDALONE) !== 0, xa };
}

/** MySQL's GTID event: commit flag, 16-byte UUID, GNO (and, 8.3+, a tag we do not support). */
function decodeMysqlGtid(r: BinlogReader): BinlogEvent {
  r.skip(1);
  const u = r.bytes(16).toString('hex');
  const uuid = `${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20)}`;
  return { tag: 'mysql-gtid', uuid, gno: r.u64(), tag2: null };
}

function decodeQuery(r: BinlogReader): BinlogEvent {
  r.skip(4); // thread id
  r.skip(4); // execution time
  const schemaLen = r.u8();
  const errorCode = r.u16();
  const statusLen = r.u16();
  r.skip(statusLen);
  const schema = r.str(schemaLen);
  r.nul();
  return { tag: 'query', schema, sql: r.rest(), errorCode };
}

/** Optional metadata field types (`Table_map_log_event::Optional_metadata_field_type`). */
const OPT = {
  SIGNEDNESS: 1,
  DEFAULT_CHARSET: 2,
  COLUMN_CHARSET: 3,
  COLUMN_NAME: 4,
  SET_STR_VALUE: 5,
  ENUM_STR_VALUE: 6,
  GEOMETRY_TYPE: 7,
  SIMPLE_PRIMARY_KEY: 8,
  PRIMARY_KEY_WITH_PREFIX: 9,
  ENUM_AND_SET_DEFAULT_CHARSET: 10,
  ENUM_AND_SET_COLUMN_CHARSET: 11,
  COLUMN_VISIBILITY: 12,
} as const;

interface MutableColumn {
  type: number;
  realType: number;
  meta: number;
  meta2: number;
  nullable: boolean;
  name: string | null;
  unsigned: boolean;
  collation: number | null;
  labels: readonly string[] | null;
}

function decodeTableMap(r: BinlogReader): BinlogEvent {
  const tableId = r.u48();
  r.skip(2); // flags
  const schema = r.str(r.u8());
  r.nul();
  const table = r.str(r.u8());
  r.nul();
  const count = r.lenenc();
  const types = r.bytes(count);
  const metaLen = r.lenenc();
  const metaEnd = r.pos + metaLen;
  r.need(metaLen, 'table map metadata');
  const columns: MutableColumn[] = new Array<MutableColumn>(count);
  for (let i = 0; i < count; i++) {
    const type = types[i]!;
    let realType = type;
    let meta = 0;
    let meta2 = 0;
    switch (type) {
      case T.FLOAT:
      case T.DOUBLE:
      case T.BLOB:
      case T.TINY_BLOB:
      case T.MEDIUM_BLOB:
      case T.LONG_BLOB:
      case T.GEOMETRY:
      case T.JSON:
      case T.TIMESTAMP2:
      case T.DATETIME2:
      case T.TIME2:
      case T.BLOB_COMPRESSED:
        meta = r.u8();
        break;
      case T.VARCHAR:
      case T.VAR_STRING:
      case T.VARCHAR_COMPRESSED:
        meta = r.u16();
        break;
      case T.BIT:
      case T.NEWDECIMAL:
        meta = r.u8();
        meta2 = r.u8();
        break;
      case T.STRING:
      case T.ENUM:
      case T.SET: {
        const b0 = r.u8();
        const b1 = r.u8();
        if ((b0 & 0x30) !== 0x30) {
          realType = b0 | 0x30;
          meta = b1 | (((b0 & 0x30) ^ 0x30) << 4);
        } else {
          realType = b0;
          meta = b1;
        }
        break;
      }
      default:
        break;
    }
    columns[i] = {
      type,
      realType,
      meta,
      meta2,
      nullable: false,
      name: null,
      unsigned: false,
      collation: null,
      labels: null,
    };
  }
  if (r.pos !== metaEnd)
    throw protocolError(
      `table map metadata of ${schema}.${table} has ${metaEnd - r.pos} unread bytes`,
      r.pos,
    );
  const nullBits = r.bytes((count + 7) >> 3);
  for (let i = 0; i < count; i++) columns[i]!.nullable = (nullBits[i >> 3]! & (1 << (i & 7))) !== 0;
  let primaryKey: number[] | null = null;
  let full = false;
  while (r.remaining() > 0) {
    const fieldType = r.u8();
    const len = r.lenenc();
    r.need(len, 'optional metadata');
    const f = new BinlogReader(r.buf, r.pos, r.pos + len);
    r.skip(len);
    switch (fieldType) {
      case OPT.SIGNEDNESS: {
        let bit = 0;
        for (const c of columns) {
          if (!isNumericType(c.type)) continue;
          const byte = f.buf[f.pos + (bit >> 3)];
          c.unsigned = byte !== undefined && (byte & (0x80 >> (bit & 7))) !== 0;
          bit++;
        }
        break;
      }
      case OPT.DEFAULT_CHARSET: {
        const chars = columns.filter((c) => isCharacterType(c.realType));
        const dflt = f.lenenc();
        for (const c of chars) c.collation = dflt;
        while (f.remaining() > 0) {
          const index = f.lenenc();
          const collation = f.lenenc();
          const c = chars[index];
          if (c) c.collation = collation;
        }
        break;
      }
      case OPT.COLUMN_CHARSET: {
        for (const c of columns) if (isCharacterType(c.realType)) c.collation = f.lenenc();
        break;
      }
      case OPT.COLUMN_NAME:
        for (const c of columns) c.name = f.str(f.lenenc());
        full = true;
        break;
      case OPT.SET_STR_VALUE:
      case OPT.ENUM_STR_VALUE: {
        const want = fieldType === OPT.SET_STR_VALUE ? T.SET : T.ENUM;
        for (const c of columns) {
          if (c.realType !== want) continue;
          const n = f.lenenc();
          const labels: string[] = [];
          for (let k = 0; k < n; k++) labels.push(f.str(f.lenenc()));
          c.labels = labels;
        }
        break;
      }
      case OPT.SIMPLE_PRIMARY_KEY:
        primaryKey = [];
        while (f.remaining() > 0) primaryKey.push(f.lenenc());
        break;
      case OPT.PRIMARY_KEY_WITH_PREFIX:
        primaryKey = [];
        while (f.remaining() > 0) {
          primaryKey.push(f.lenenc());
          f.lenenc();
        }
        break;
      default:
        // GEOMETRY_TYPE, ENUM_AND_SET charsets, COLUMN_VISIBILITY: not needed to decode rows.
        break;
    }
  }
  for (const c of columns) {
    if (isEnumOrSet(c.realType) && c.collation === null) c.collation = null;
  }
  return { tag: 'table-map', tableId, schema, table, columns: columns as TableMapColumn[], primaryKey, full };
}

function decodeRows(r: BinlogReader, buf: Buffer, end: number, kind: RowsKind, v2: boolean): BinlogEvent {
  const tableId = r.u48();
  const flags = r.u16();
  if (v2) {
    const extra = r.u16();
    if (extra < 2) throw protocolError(`rows event extra data length ${extra} is below 2`, r.pos - 2);
    r.skip(extra - 2);
  }
  return { tag: 'rows', kind, tableId, flags, buf, bodyStart: r.pos, bodyEnd: end };
}

function unsupportedEvent(what: string): TidemarkError {
  return new TidemarkError('SOURCE_UNSUPPORTED_EVENT', { detail: `the binary log holds ${what}` });
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
