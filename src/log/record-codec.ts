/**
 * The bytes of one change-log record (one ChangeMessage), and the framing that strings records
 * together. Tables are referred to by a schema id the log interns (change-log.ts), so a row costs
 * its cells and a few bytes more. The log knows no database: a position is the bytes its codec
 * made (`core/position.ts`).
 *
 *   begin     01 | commitTimeMs f64 LE | txn varint (optional: the source's transaction id)
 *   insert    03 | schemaId varint | cells(row)
 *   update    04 | schemaId varint | flags u8 (1 = old present, 2 = old is full) | cells(row) | cells(old)?
 *   delete    05 | schemaId varint | cells(old)
 *   truncate  06 | n varint | schemaId varint × n
 *   commit    07 | commitTimeMs f64 LE | position bytes (the rest, as the connector's codec encoded it)
 *   segment   08 | records varint | bytes varint | file name UTF-8 (the rest)
 *             (a spilled transaction's reference: its records are framed in spill/<file name>)
 *   schema    09 | schemaId varint (the table's shape after it) | SchemaChange JSON UTF-8 (the rest)
 *   10, 11    reserved for backfill watermarks (online snapshots)
 *
 *   cells     n varint | cell × n ;  cell = varint h: 0 NULL, 1 UNCHANGED, h ≥ 2: h − 2 UTF-8 bytes follow
 *             (core/packed-cells.ts: packed cells are copied in and read out as they lie)
 *
 *   frame     len varint | record (len bytes)
 *   pack      frame+          an LMDB data value: the records of one transaction, in order;
 *                             a `segment` record is always alone in its pack
 *   segment   frame*          a spill file: nothing else, no header
 *
 * Varints are unsigned LEB128 (7 bits a byte, low first): at most 5 bytes for ids, counts and
 * lengths, up to 8 for the segment's byte count (files may pass 4 GiB).
 */
import { checkPackedCells, PackedCells, PackedCellsError } from '../core/packed-cells.ts';
import { UNCHANGED, type Cell } from '../core/row.ts';

export const TAG = {
  begin: 1,
  insert: 3,
  update: 4,
  delete: 5,
  truncate: 6,
  commit: 7,
  segment: 8,
  schema: 9,
} as const;

export type RecordTag = keyof typeof TAG;

/** A row's cells in a record: as strings, or packed (decoded with `packed`, or appended so). */
export type RecordCells = Cell[] | PackedCells;

/** A decoded record with tables still as schema ids; the reader resolves them. */
export type LogRecord =
  | { readonly tag: 'begin'; readonly commitTimeMs: number; readonly txn?: number }
  | { readonly tag: 'insert'; readonly schemaId: number; readonly row: RecordCells }
  | {
      readonly tag: 'update';
      readonly schemaId: number;
      readonly row: RecordCells;
      readonly old: RecordCells | null;
      readonly oldIsFull: boolean;
    }
  | { readonly tag: 'delete'; readonly schemaId: number; readonly old: RecordCells }
  | { readonly tag: 'truncate'; readonly schemaIds: number[] }
  | {
      readonly tag: 'commit';
      readonly commitTimeMs: number;
      /** The source position, as the connector's codec encoded it. */
      readonly position: Buffer;
    }
  | {
      readonly tag: 'schema';
      /** The interned shape of the table after the change (a dropped table: as it was). */
      readonly schemaId: number;
      /** The `SchemaChange` (core/schema-change.ts) as JSON. */
      readonly json: string;
    }
  | {
      readonly tag: 'segment';
      /** The spill file's name inside the log's `spill/` directory. */
      readonly file: string;
      /** Records framed in the file. */
      readonly records: number;
      /** Bytes of the file (the frames and nothing else). */
      readonly bytes: number;
    };

/** Thrown by decode on malformed bytes; the log wraps it with the key into CHANGELOG_CORRUPT. */
export class RecordFormatError extends Error {}

/** A growable output buffer, reused across records to avoid an allocation per row. */
export class RecordWriter {
  private buf = Buffer.allocUnsafe(4096);
  private pos = 0;

  /** Encodes one record and returns a copy of its bytes. */
  encode(rec: LogRecord): Buffer {
    return Buffer.from(this.encodeView(rec));
  }

  /**
   * Encodes one record and returns a view of this writer's buffer: valid only until the next
   * call (the writer copies it into a pack or a segment at once, saving an allocation per row).
   */
  encodeView(rec: LogRecord): Buffer {
    return this.buf.subarray(0, this.encodeLength(rec));
  }

  /** The writer's buffer: after `encodeLength`, the record is its first bytes. */
  get bytes(): Buffer {
    return this.buf;
  }

  /**
   * Encodes one record at the start of `bytes` and returns its length: `encodeView` without the
   * Buffer view (an object per record on the append path).
   */
  encodeLength(rec: LogRecord): number {
    this.pos = 0;
    this.byte(TAG[rec.tag]);
    switch (rec.tag) {
      case 'begin':
        this.ensure(8);
        this.buf.writeDoubleLE(rec.commitTimeMs, this.pos);
        this.pos += 8;
        if (rec.txn !== undefined) this.varint(rec.txn);
        break;
      case 'commit':
        this.ensure(8 + rec.position.length);
        this.buf.writeDoubleLE(rec.commitTimeMs, this.pos);
        this.pos += 8;
        this.pos += rec.position.copy(this.buf, this.pos);
        break;
      case 'schema': {
        this.varint(rec.schemaId);
        const len = Buffer.byteLength(rec.json, 'utf8');
        this.ensure(len);
        this.pos += this.buf.write(rec.json, this.pos, 'utf8');
        break;
      }
      case 'insert':
        this.varint(rec.schemaId);
        this.cells(rec.row);
        break;
      case 'update':
        this.varint(rec.schemaId);
        this.byte((rec.old ? 1 : 0) | (rec.oldIsFull ? 2 : 0));
        this.cells(rec.row);
        if (rec.old) this.cells(rec.old);
        break;
      case 'delete':
        this.varint(rec.schemaId);
        this.cells(rec.old);
        break;
      case 'truncate':
        this.varint(rec.schemaIds.length);
        for (const id of rec.schemaIds) this.varint(id);
        break;
      case 'segment': {
        this.bigVarint(rec.records);
        this.bigVarint(rec.bytes);
        const len = Buffer.byteLength(rec.file, 'utf8');
        this.ensure(len);
        this.pos += this.buf.write(rec.file, this.pos, 'utf8');
        break;
      }
    }
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  private varint(n: number): void {
    this.ensure(5);
    let v = n >>> 0;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  /** A varint of a non-negative safe integer (up to 8 bytes), for counts that may pass 2^32. */
  private bigVarint(n: number): void {
    this.ensure(8);
    let v = n;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  private cells(cells: RecordCells): void {
    if (cells instanceof PackedCells) {
      const len = cells.end - cells.start;
      this.ensure(len);
      // A byte loop for a short row: Buffer#copy's native call costs more than it copies.
      if (len > 64) this.pos += cells.bytes.copy(this.buf, this.pos, cells.start, cells.end);
      else {
        const src = cells.bytes;
        const out = this.buf;
        let o = this.pos;
        for (let k = cells.start; k < cells.end; k++) out[o++] = src[k]!;
        this.pos = o;
      }
      return;
    }
    this.varint(cells.length);
    for (const c of cells) {
      if (c === null) this.varint(0);
      else if (c === UNCHANGED) this.varint(1);
      else {
        const len = Buffer.byteLength(c, 'utf8');
        this.varint(len + 2);
        this.ensure(len);
        this.pos += this.buf.write(c, this.pos, 'utf8');
      }
    }
  }
}

/** The tag of a record, without decoding the rest. */
export function recordTag(bytes: Uint8Array): RecordTag {
  return tagOf(bytes[0]);
}

function tagOf(byte: number | undefined): RecordTag {
  switch (byte) {
    case 1:
      return 'begin';
    case 3:
      return 'insert';
    case 4:
      return 'update';
    case 5:
      return 'delete';
    case 6:
      return 'truncate';
    case 7:
      return 'commit';
    case 8:
      return 'segment';
    case 9:
      return 'schema';
    default:
      throw new RecordFormatError(`unknown record tag ${byte}`);
  }
}

/** Reads `bytes[pos, end)`: the record in place, inside a larger buffer (no view is made). */
class Cursor {
  constructor(
    readonly bytes: Buffer,
    public pos: number,
    readonly end: number,
    /** Cells come packed, pointing into `bytes` (which must then outlive them), not as strings. */
    readonly packed = false,
  ) {}

  byte(): number {
    if (this.pos >= this.end) throw new RecordFormatError('record ends early');
    return this.bytes[this.pos++]!;
  }

  varint(maxBytes = 5): number {
    let v = 0;
    for (let shift = 0; shift < 7 * maxBytes; shift += 7) {
      const b = this.byte();
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    throw new RecordFormatError('varint too long');
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new RecordFormatError('record ends early');
    const v = this.bytes.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  cells(): RecordCells {
    if (this.packed) {
      const start = this.pos;
      try {
        this.pos = checkPackedCells(this.bytes, start, this.end);
      } catch (err) {
        if (err instanceof PackedCellsError) throw new RecordFormatError(err.message);
        throw err;
      }
      return new PackedCells(this.bytes, start, this.pos);
    }
    const n = this.varint();
    const out: Cell[] = new Array<Cell>(n);
    for (let i = 0; i < n; i++) {
      const h = this.varint();
      if (h === 0) out[i] = null;
      else if (h === 1) out[i] = UNCHANGED;
      else {
        const end = this.pos + h - 2;
        if (end > this.end) throw new RecordFormatError('cell runs past the record');
        out[i] = this.bytes.toString('utf8', this.pos, end);
        this.pos = end;
      }
    }
    return out;
  }
}

/** The schema id of a row record (insert, update, delete), or null for the others. */
export function recordSchemaId(bytes: Buffer, start = 0, end = bytes.length): number | null {
  const tag = tagOf(start < end ? bytes[start] : undefined);
  if (tag !== 'insert' && tag !== 'update' && tag !== 'delete') return null;
  return new Cursor(bytes, start + 1, end).varint();
}

export function decodeRecord(bytes: Buffer): LogRecord {
  return decodeRecordAt(bytes, 0, bytes.length);
}

/**
 * Decodes the record `bytes[start, end)` where it lies (a reader's buffer holds many): no view
 * of it is made, only the record and its cells. With `packed`, cells are checked and returned
 * as `PackedCells` over `bytes`, with no string made: `bytes` must then never be overwritten.
 */
export function decodeRecordAt(bytes: Buffer, start: number, end: number, packed = false): LogRecord {
  if (start >= end) throw new RecordFormatError('empty record');
  const tag = tagOf(bytes[start]!);
  const c = new Cursor(bytes, start + 1, end, packed);
  let rec: LogRecord;
  switch (tag) {
    case 'begin': {
      const commitTimeMs = c.double();
      // Logs written before the field existed end the record here.
      rec = c.pos < end ? { tag, commitTimeMs, txn: c.varint() } : { tag, commitTimeMs };
      break;
    }
    case 'commit': {
      const commitTimeMs = c.double();
      rec = { tag, commitTimeMs, position: Buffer.from(bytes.subarray(c.pos, end)) };
      c.pos = end;
      break;
    }
    case 'schema': {
      const schemaId = c.varint();
      rec = { tag, schemaId, json: bytes.toString('utf8', c.pos, end) };
      c.pos = end;
      break;
    }
    case 'insert':
      rec = { tag, schemaId: c.varint(), row: c.cells() };
      break;
    case 'update': {
      const schemaId = c.varint();
      const flags = c.byte();
      const row = c.cells();
      const old = flags & 1 ? c.cells() : null;
      rec = { tag, schemaId, row, old, oldIsFull: (flags & 2) !== 0 };
      break;
    }
    case 'delete':
      rec = { tag, schemaId: c.varint(), old: c.cells() };
      break;
    case 'truncate': {
      const n = c.varint();
      const schemaIds: number[] = [];
      for (let i = 0; i < n; i++) schemaIds.push(c.varint());
      rec = { tag, schemaIds };
      break;
    }
    case 'segment': {
      const records = c.varint(8);
      const bytesOfFile = c.varint(8);
      const file = bytes.toString('utf8', c.pos, end);
      c.pos = end;
      rec = { tag, file, records, bytes: bytesOfFile };
      break;
    }
  }
  if (c.pos !== end) throw new RecordFormatError(`${end - c.pos} trailing bytes`);
  return rec;
}

/** Bytes of the frame header (the length varint) of a record of `len` bytes. */
export function frameHeaderBytes(len: number): number {
  let n = 1;
  for (let v = len >>> 7; v > 0; v >>>= 7) n++;
  return n;
}

/** Writes the frame header of a record of `len` bytes at `at`; returns the offset after it. */
export function writeFrameHeader(into: Buffer, at: number, len: number): number {
  let v = len >>> 0;
  let pos = at;
  while (v >= 0x80) {
    into[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  into[pos++] = v;
  return pos;
}

/**
 * The frame at `pos` of `bytes[0, end)`: where its record starts and ends, or null when the
 * frame's header or record runs past `end` (the rest is still on disk). Throws on a malformed
 * header (more than 5 bytes, or a zero length: every record has at least its tag).
 */
export function readFrame(bytes: Buffer, pos: number, end: number): { start: number; end: number } | null {
  let len = 0;
  for (let i = 0, shift = 0; ; i++, shift += 7) {
    if (i === 5) throw new RecordFormatError('frame length varint too long');
    if (pos + i >= end) return null;
    const b = bytes[pos + i]!;
    len += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) {
      if (len === 0) throw new RecordFormatError('empty frame');
      const start = pos + i + 1;
      return start + len <= end ? { start, end: start + len } : null;
    }
  }
}

/**
 * The reference a pack holds when it is a spilled transaction's `segment` record (alone in its
 * pack), else null. Cheap enough to ask of every value read.
 */
export function segmentOfPack(pack: Buffer): Extract<LogRecord, { tag: 'segment' }> | null {
  const frame = readFrame(pack, 0, pack.length);
  if (frame === null || pack[frame.start] !== TAG.segment) return null;
  if (frame.end !== pack.length) throw new RecordFormatError('a segment record shares its pack');
  const rec = decodeRecord(pack.subarray(frame.start, frame.end));
  return rec.tag === 'segment' ? rec : null;
}
