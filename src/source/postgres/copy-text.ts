/**
 * Decoder for PostgreSQL's COPY text format (no I/O): rows end in `\n`, fields are separated by
 * `\t`, `\N` is NULL and backslash escapes stand for control characters. The fields are the
 * type output functions' text — the same text pgoutput sends for the same value.
 *
 * Raw newlines and tabs never occur inside a field (COPY escapes them), so the byte splits are
 * safe for any UTF-8 content; a chunk may end anywhere, even inside a multi-byte character.
 */
import type { Row } from '../../core/row.ts';
import type { SnapshotRows } from '../../core/epoch.ts';
import type { TableSchema } from '../../core/table-schema.ts';

const NL = 0x0a;
const TAB = 0x09;
const BACKSLASH = 0x5c;

export class CopyTextDecoder {
  private rest: Buffer | null = null;

  /** Feeds a chunk; returns the rows it completes. */
  push(chunk: Buffer): Row[] {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const rows: Row[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(NL, start);
      if (nl < 0) break;
      rows.push(decodeLine(buf, start, nl));
      start = nl + 1;
    }
    this.rest = start < buf.length ? Buffer.from(buf.subarray(start)) : null;
    return rows;
  }

  /** Call at the end of the stream: a trailing partial row means the stream was cut short. */
  end(): void {
    if (this.rest) throw new Error(`COPY stream ended inside a row (${this.rest.length} bytes pending)`);
  }
}

/**
 * Cuts a COPY text stream into snapshot chunks of whole rows, about `batchBytes` each, without
 * decoding them: a chunk carries the bytes (`copyText`, which a PostgreSQL sink sends on as they
 * are) and decodes its `rows` only if someone reads them. A piece may end anywhere, even inside a
 * row or a multi-byte character; the incomplete tail waits for the next piece.
 */
export class CopyTextBatcher {
  private pieces: Buffer[] = [];
  private size = 0;
  private rows = 0;
  private rest: Buffer | null = null;

  constructor(
    private readonly table: TableSchema,
    private readonly batchBytes: number,
  ) {}

  /** Feeds a piece of the stream; returns the chunks it completes. */
  push(piece: Buffer): SnapshotRows[] {
    const buf = this.rest ? Buffer.concat([this.rest, piece]) : piece;
    const lastNl = buf.lastIndexOf(NL);
    if (lastNl < 0) {
      this.rest = buf.length > 0 ? Buffer.from(buf) : null;
      return [];
    }
    const whole = buf.subarray(0, lastNl + 1);
    this.rest = lastNl + 1 < buf.length ? Buffer.from(buf.subarray(lastNl + 1)) : null;
    this.pieces.push(whole);
    this.size += whole.length;
    this.rows += countNewlines(whole);
    return this.size >= this.batchBytes ? [this.take()] : [];
  }

  /** The stream ended: the last chunk, if any. Throws when it ended inside a row. */
  end(): SnapshotRows | null {
    if (this.rest) throw new Error(`COPY stream ended inside a row (${this.rest.length} bytes pending)`);
    return this.size > 0 ? this.take() : null;
  }

  private take(): SnapshotRows {
    const bytes = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.size);
    const chunk = copyTextRows(this.table, bytes, this.rows);
    this.pieces = [];
    this.size = 0;
    this.rows = 0;
    return chunk;
  }
}

/**
 * A snapshot chunk over COPY text `bytes` (whole rows): `rows` is decoded on first access. An own
 * enumerable getter, so a copy made by spreading the chunk carries the decoded rows.
 */
export function copyTextRows(table: TableSchema, bytes: Buffer, count: number): SnapshotRows {
  let decoded: Row[] | null = null;
  return {
    table,
    get rows(): Row[] {
      if (decoded === null) {
        const d = new CopyTextDecoder();
        decoded = d.push(bytes);
        d.end();
      }
      return decoded;
    },
    copyText: { bytes, rows: count },
  };
}

function countNewlines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(NL); i >= 0; i = buf.indexOf(NL, i + 1)) n++;
  return n;
}

export function decodeLine(buf: Buffer, start: number, end: number): Row {
  const row: Row = [];
  let fieldStart = start;
  for (;;) {
    let tab = buf.indexOf(TAB, fieldStart);
    if (tab < 0 || tab > end) tab = end;
    row.push(decodeField(buf, fieldStart, tab));
    if (tab === end) return row;
    fieldStart = tab + 1;
  }
}

function decodeField(buf: Buffer, start: number, end: number): string | null {
  const bs = buf.indexOf(BACKSLASH, start);
  if (bs < 0 || bs >= end) return buf.toString('utf8', start, end);
  if (end - start === 2 && buf[start + 1] === 0x4e /* N */) return null;
  // Unescape into bytes, then decode UTF-8 once (octal/hex escapes may form multi-byte chars).
  const out = Buffer.allocUnsafe(end - start);
  let o = 0;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b !== BACKSLASH || i + 1 >= end) {
      out[o++] = b;
      continue;
    }
    const c = buf[++i]!;
    switch (c) {
      case 0x62:
        out[o++] = 0x08;
        break; // \b
      case 0x66:
        out[o++] = 0x0c;
        break; // \f
      case 0x6e:
        out[o++] = 0x0a;
        break; // \n
      case 0x72:
        out[o++] = 0x0d;
        break; // \r
      case 0x74:
        out[o++] = 0x09;
        break; // \t
      case 0x76:
        out[o++] = 0x0b;
        break; // \v
      case 0x78: {
        // \xHH
        let v = 0;
        let n = 0;
        while (n < 2 && i + 1 < end && isHex(buf[i + 1]!)) {
          v = v * 16 + hexVal(buf[++i]!);
          n++;
        }
        out[o++] = n === 0 ? 0x78 : v;
        break;
      }
      default:
        if (c >= 0x30 && c <= 0x37) {
          // \NNN octal
          let v = c - 0x30;
          let n = 1;
          while (n < 3 && i + 1 < end && buf[i + 1]! >= 0x30 && buf[i + 1]! <= 0x37) {
            v = v * 8 + (buf[++i]! - 0x30);
            n++;
          }
          out[o++] = v & 0xff;
        } else {
          out[o++] = c;
        }
    }
  }
  return out.toString('utf8', 0, o);
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function hexVal(b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10;
}

/** Encodes one field for COPY text input: the inverse of `decodeField`. */
export function encodeCopyField(v: string | null): string {
  if (v === null) return '\\N';
  if (!/[\\\t\n\r]/.test(v)) return v;
  return v.replace(/[\\\t\n\r]/g, (ch) =>
    ch === '\\' ? '\\\\' : ch === '\t' ? '\\t' : ch === '\n' ? '\\n' : '\\r',
  );
}
