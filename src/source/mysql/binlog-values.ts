/**
 * One column value of a binlog row image → its cell: the PostgreSQL text form of the column's
 * pivot type (`column-types.ts`). Formats (MySQL `sql/field.cc`, `pack()`): integers little-endian,
 * DECIMAL and the `…2` temporal types big-endian with offsets, strings with a 1–4 byte length.
 */
import { formatFloat4, formatFloat8 } from '../../decode/pg-values.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { BinlogReader } from './binlog-reader.ts';
import type { TableMapColumn } from './binlog-events.ts';
import type { CollationTable } from './charsets.ts';
import type { MysqlType } from './column-types.ts';
import { decodeMysqlJson } from './mysql-json.ts';
import { T } from './type-codes.ts';

/** Reads one non-NULL value; returns its cell (NULL for a zero date). */
export type CellDecoder = (r: BinlogReader) => string | null;

export function cellDecoder(
  c: TableMapColumn,
  type: MysqlType,
  collations: CollationTable,
  where: string,
): CellDecoder {
  switch (c.type) {
    case T.TINY:
      return c.unsigned ? (r) => String(r.u8()) : (r) => String((r.u8() << 24) >> 24);
    case T.SHORT:
      return c.unsigned ? (r) => String(r.u16()) : (r) => String((r.u16() << 16) >> 16);
    case T.INT24:
      return c.unsigned ? (r) => String(r.u24()) : (r) => String((r.u24() << 8) >> 8);
    case T.LONG:
      return c.unsigned ? (r) => String(r.u32()) : (r) => String(r.u32() | 0);
    case T.LONGLONG:
      return c.unsigned ? (r) => r.u64().toString() : (r) => BigInt.asIntN(64, r.u64()).toString();
    case T.YEAR:
      return (r) => {
        const y = r.u8();
        return y === 0 ? '0' : String(1900 + y);
      };
    case T.FLOAT:
      return (r) => {
        r.need(4, 'float');
        const v = r.buf.readFloatLE(r.pos);
        r.pos += 4;
        return formatFloat4(v);
      };
    case T.DOUBLE:
      return (r) => {
        r.need(8, 'double');
        const v = r.buf.readDoubleLE(r.pos);
        r.pos += 8;
        return formatFloat8(v);
      };
    case T.NEWDECIMAL:
      return decimalDecoder(c.meta, c.meta2);
    case T.DATE:
    case T.NEWDATE:
      return (r) => {
        const v = r.u24();
        return formatDate(v >> 9, (v >> 5) & 15, v & 31);
      };
    case T.TIME2:
      return time2Decoder(c.meta);
    case T.TIME:
      return (r) => {
        const v = (r.u24() << 8) >> 8;
        const a = Math.abs(v);
        return `${v < 0 ? '-' : ''}${pad2(Math.floor(a / 10000))}:${pad2(Math.floor(a / 100) % 100)}:${pad2(a % 100)}`;
      };
    case T.DATETIME2:
      return datetime2Decoder(c.meta);
    case T.DATETIME:
      return (r) => {
        const v = r.u64();
        const d = Number(v / 1000000n);
        const t = Number(v % 1000000n);
        const date = formatDate(Math.floor(d / 10000), Math.floor(d / 100) % 100, d % 100);
        return date === null
          ? null
          : `${date} ${pad2(Math.floor(t / 10000))}:${pad2(Math.floor(t / 100) % 100)}:${pad2(t % 100)}`;
      };
    case T.TIMESTAMP2:
      return (r) => {
        r.need(4, 'timestamp');
        const seconds = r.buf.readUInt32BE(r.pos);
        r.pos += 4;
        const micros = readFraction(r, c.meta);
        return seconds === 0 && micros === 0 ? null : formatTimestamptz(seconds, micros);
      };
    case T.TIMESTAMP:
      return (r) => {
        const seconds = r.u32();
        return seconds === 0 ? null : formatTimestamptz(seconds, 0);
      };
    case T.BIT: {
      const bits = c.meta2 * 8 + c.meta;
      const bytes = (bits + 7) >> 3;
      return (r) => {
        const b = r.bytes(bytes);
        let s = '';
        for (const byte of b) s += byte.toString(2).padStart(8, '0');
        return s.slice(s.length - bits);
      };
    }
    case T.BLOB:
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
      return stringDecoder(c.meta, type, c, collations);
    case T.VARCHAR:
    case T.VAR_STRING:
      return stringDecoder(c.meta < 256 ? 1 : 2, type, c, collations);
    case T.STRING:
      if (type.kind === 'enum') {
        const labels = type.labels;
        return (r) => {
          const i = c.meta === 1 ? r.u8() : r.u16();
          return i === 0 ? '' : (labels[i - 1] ?? '');
        };
      }
      if (type.kind === 'set') {
        const labels = type.labels;
        return (r) => {
          const b = r.bytes(c.meta);
          const chosen: string[] = [];
          for (let i = 0; i < labels.length; i++)
            if ((b[i >> 3]! & (1 << (i & 7))) !== 0) chosen.push(labels[i]!);
          return chosen.join(',');
        };
      }
      return stringDecoder(c.meta < 256 ? 1 : 2, type, c, collations);
    case T.GEOMETRY:
      return (r) => {
        const len = packedLength(r, c.meta);
        if (len < 4)
          throw new TidemarkError('SOURCE_PROTOCOL', { detail: `${where}: geometry of ${len} bytes` });
        r.skip(4); // SRID
        return `\\x${r.bytes(len - 4).toString('hex')}`;
      };
    case T.JSON:
      return (r) => decodeMysqlJson(r.bytes(packedLength(r, c.meta)), where);
    default:
      throw new TidemarkError('SOURCE_UNSUPPORTED_TYPE', {
        detail: `${where} has binlog type code ${c.type}`,
      });
  }
}

function packedLength(r: BinlogReader, bytes: number): number {
  switch (bytes) {
    case 1:
      return r.u8();
    case 2:
      return r.u16();
    case 3:
      return r.u24();
    default:
      return r.u32();
  }
}

function stringDecoder(
  lengthBytes: number,
  type: MysqlType,
  c: TableMapColumn,
  collations: CollationTable,
): CellDecoder {
  const binary = (type.kind === 'string' || type.kind === 'blob') && type.binary;
  if (binary && type.kind === 'string' && !type.varying) {
    // BINARY(n) is stored right-padded with NULs and logged without them; a read gives all n.
    const n = type.length;
    return (r) =>
      `\\x${r
        .bytes(packedLength(r, lengthBytes))
        .toString('hex')
        .padEnd(2 * n, '0')}`;
  }
  if (binary) {
    return (r) => `\\x${r.bytes(packedLength(r, lengthBytes)).toString('hex')}`;
  }
  const decode = collations.get(c.collation ?? 45).decode!;
  return (r) => {
    const len = packedLength(r, lengthBytes);
    r.need(len, 'string');
    const s = decode(r.buf, r.pos, r.pos + len);
    r.pos += len;
    return s;
  };
}

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** DECIMAL(p,s) in MySQL's binary format: groups of 9 digits in 4 bytes, sign in the top bit. */
function decimalDecoder(precision: number, scale: number): CellDecoder {
  const intg = precision - scale;
  const intg0 = Math.floor(intg / 9);
  const intg0x = intg % 9;
  const frac0 = Math.floor(scale / 9);
  const frac0x = scale % 9;
  const size = intg0 * 4 + DIG2BYTES[intg0x]! + frac0 * 4 + DIG2BYTES[frac0x]!;
  return (r) => {
    const raw = r.bytes(size);
    const b = Buffer.from(raw);
    const negative = (b[0]! & 0x80) === 0;
    b[0]! ^= 0x80;
    if (negative) for (let i = 0; i < b.length; i++) b[i] = ~b[i]! & 0xff;
    let pos = 0;
    const group = (bytes: number, digits: number): string => {
      const v = bytes === 0 ? 0 : b.readUIntBE(pos, bytes);
      pos += bytes;
      return String(v).padStart(digits, '0');
    };
    let ip = '';
    if (intg0x > 0) ip += group(DIG2BYTES[intg0x]!, intg0x);
    for (let i = 0; i < intg0; i++) ip += group(4, 9);
    let fp = '';
    for (let i = 0; i < frac0; i++) fp += group(4, 9);
    if (frac0x > 0) fp += group(DIG2BYTES[frac0x]!, frac0x);
    ip = ip.replace(/^0+/, '') || '0';
    const text = scale > 0 ? `${ip}.${fp}` : ip;
    return negative && /[1-9]/.test(text) ? `-${text}` : text;
  };
}

/** Fractional seconds of the `…2` types: ceil(fsp/2) big-endian bytes, scaled to microseconds. */
function readFraction(r: BinlogReader, fsp: number): number {
  switch (fsp) {
    case 1:
    case 2:
      return r.u8() * 10000;
    case 3:
    case 4: {
      r.need(2, 'fraction');
      const v = r.buf.readUInt16BE(r.pos);
      r.pos += 2;
      return v * 100;
    }
    case 5:
    case 6: {
      r.need(3, 'fraction');
      const v = r.buf.readUIntBE(r.pos, 3);
      r.pos += 3;
      return v;
    }
    default:
      return 0;
  }
}

function datetime2Decoder(fsp: number): CellDecoder {
  return (r) => {
    r.need(5, 'datetime');
    const packed = r.buf.readUIntBE(r.pos, 5) - 0x8000000000;
    r.pos += 5;
    const micros = readFraction(r, fsp);
    const ymd = Math.floor(packed / 2 ** 17);
    const hms = packed % 2 ** 17;
    const ym = Math.floor(ymd / 32);
    const date = formatDate(Math.floor(ym / 13), ym % 13, ymd % 32);
    if (date === null) return null;
    return `${date} ${pad2(Math.floor(hms / 4096))}:${pad2(Math.floor(hms / 64) % 64)}:${pad2(hms % 64)}${fraction(micros)}`;
  };
}

/** TIME2 (`my_time_packed_from_binary`, then `TIME_from_longlong_time_packed`). */
function time2Decoder(fsp: number): CellDecoder {
  return (r) => {
    let packed: bigint;
    if (fsp >= 5) {
      r.need(6, 'time');
      packed = BigInt(r.buf.readUIntBE(r.pos, 6)) - 0x800000000000n;
      r.pos += 6;
    } else {
      r.need(3, 'time');
      let intpart = r.buf.readUIntBE(r.pos, 3) - 0x800000;
      r.pos += 3;
      let frac = 0;
      if (fsp === 1 || fsp === 2) {
        frac = r.u8();
        if (intpart < 0 && frac !== 0) {
          intpart++;
          frac -= 0x100;
        }
        frac *= 10000;
      } else if (fsp === 3 || fsp === 4) {
        r.need(2, 'time');
        frac = r.buf.readUInt16BE(r.pos);
        r.pos += 2;
        if (intpart < 0 && frac !== 0) {
          intpart++;
          frac -= 0x10000;
        }
        frac *= 100;
      }
      packed = (BigInt(intpart) << 24n) + BigInt(frac);
    }
    const negative = packed < 0n;
    const a = negative ? -packed : packed;
    const hms = Number(a >> 24n);
    const micros = Number(a % (1n << 24n));
    const hour = Math.floor(hms / 4096) % 1024;
    const minute = Math.floor(hms / 64) % 64;
    const second = hms % 64;
    return `${negative ? '-' : ''}${pad2(hour)}:${pad2(minute)}:${pad2(second)}${fraction(micros)}`;
  };
}

/** `YYYY-MM-DD`, or null for MySQL's zero date and dates with a zero month or day. */
export function formatDate(year: number, month: number, day: number): string | null {
  if (month === 0 || day === 0) return null;
  return `${String(year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}`;
}

export function formatTimestamptz(seconds: number, micros: number): string {
  const iso = new Date(seconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction(micros)}+00`;
}

/** `.ffffff` with PostgreSQL's trailing zeros removed; '' for zero. */
export function fraction(micros: number): string {
  if (micros === 0) return '';
  return `.${String(micros).padStart(6, '0').replace(/0+$/, '')}`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
