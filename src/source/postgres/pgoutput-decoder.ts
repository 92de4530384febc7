import { PackedCells, unpackCells } from '../../core/packed-cells.ts';
import type { Cell, Row } from '../../core/row.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { Lsn } from './lsn.ts';
import type {
  KeepaliveMessage,
  PgoutputMessage,
  RelationColumn,
  ReplicaIdentity,
  XLogData,
} from './pgoutput-messages.ts';

/**
 * Decodes the replication stream's CopyData bodies: the XLogData/keepalive envelope, then the
 * pgoutput protocol-version-1 message inside. No I/O, no state: every message stands alone
 * (relation metadata is the caller's to keep). Text cells are decoded straight from the received
 * buffer with `toString('utf8', start, end)`; no payload is copied. Decoded `packed`, a tuple's
 * cells are copied as bytes into packed cells (core/packed-cells.ts) instead, with no string made
 * (the change hub writes them to its log as they are).
 *
 * Any malformed input (unknown type byte, a length past the end, binary tuple data) throws
 * SOURCE_PROTOCOL naming the byte and its offset in the message.
 */

/** Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000;
const PG_EPOCH_US = PG_EPOCH_MS * 1000;

/** Decodes a CopyData body of the replication stream: XLogData ('w') or primary keepalive ('k'). */
export function decodeCopyData(body: Buffer): XLogData | KeepaliveMessage {
  const kind = body[0];
  if (kind === 0x77 && body.length >= 25) {
    return {
      tag: 'xlog',
      walStart: readLsn(body, 1),
      walEnd: readLsn(body, 9),
      sendTimeMs: pgTimeMs(readPgMicros(body, 17)),
      payload: body.subarray(25),
    };
  }
  if (kind === 0x6b && body.length >= 18) {
    return {
      tag: 'keepalive',
      walEnd: readLsn(body, 1),
      sendTimeMs: pgTimeMs(readPgMicros(body, 9)),
      replyRequested: body[17] === 1,
    };
  }
  throw protocolError(
    `unknown or short replication message (byte ${describeByte(kind)}, ${body.length} bytes)`,
    0,
  );
}

/** Decodes one pgoutput message (the payload of an XLogData); see above for `packed`. */
export function decodePgoutput(buf: Buffer, packed = false): PgoutputMessage {
  const r = new Reader(buf);
  try {
    return packed ? decodePacked(r) : decodeMessage(r);
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    throw protocolError(`message ${describeByte(buf[0])} is truncated`, r.pos, err);
  }
}

function decodeMessage(r: Reader): PgoutputMessage {
  const type = r.u8();
  switch (type) {
    case 0x42: {
      // B
      const finalLsn = r.lsn();
      const us = r.pgMicros();
      return {
        tag: 'begin',
        finalLsn,
        commitTimeMs: pgTimeMs(us),
        commitTimeUs: us + PG_EPOCH_US,
        xid: r.u32(),
      };
    }
    case 0x43: {
      // C
      const flags = r.u8();
      const commitLsn = r.lsn();
      const endLsn = r.lsn();
      const us = r.pgMicros();
      return {
        tag: 'commit',
        flags,
        commitLsn,
        endLsn,
        commitTimeMs: pgTimeMs(us),
        commitTimeUs: us + PG_EPOCH_US,
      };
    }
    case 0x4f: // O
      return { tag: 'origin', originLsn: r.lsn(), name: r.cstring() };
    case 0x52: // R
      return decodeRelation(r);
    case 0x59: // Y
      return { tag: 'type', typeOid: r.u32(), schema: r.cstring(), name: r.cstring() };
    case 0x49: {
      // I
      const relationId = r.u32();
      r.expect(0x4e, 'N');
      return { tag: 'insert', relationId, row: decodeTuple(r, false) as (string | null)[] };
    }
    case 0x55: {
      // U
      const relationId = r.u32();
      let sub = r.u8();
      let oldKind: 'key' | 'full' | null = null;
      let old: Cell[] | null = null;
      if (sub === 0x4b || sub === 0x4f) {
        oldKind = sub === 0x4b ? 'key' : 'full';
        old = decodeTuple(r, true);
        sub = r.u8();
      }
      if (sub !== 0x4e) throw protocolError(`update expects N, got ${describeByte(sub)}`, r.pos - 1);
      return { tag: 'update', relationId, oldKind, old, row: decodeTuple(r, true) };
    }
    case 0x44: {
      // D
      const relationId = r.u32();
      const sub = r.u8();
      if (sub !== 0x4b && sub !== 0x4f)
        throw protocolError(`delete expects K or O, got ${describeByte(sub)}`, r.pos - 1);
      const oldKind = sub === 0x4b ? 'key' : 'full';
      return { tag: 'delete', relationId, oldKind, old: decodeTuple(r, false) as (string | null)[] };
    }
    case 0x54: {
      // T
      const count = r.u32();
      const options = r.u8();
      const relationIds: number[] = new Array<number>(count);
      for (let i = 0; i < count; i++) relationIds[i] = r.u32();
      return {
        tag: 'truncate',
        cascade: (options & 1) !== 0,
        restartIdentity: (options & 2) !== 0,
        relationIds,
      };
    }
    case 0x4d: {
      // M
      const flags = r.u8();
      const lsn = r.lsn();
      const prefix = r.cstring();
      const length = r.u32();
      return { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix, content: r.bytes(length) };
    }
    default:
      throw protocolError(`unknown pgoutput message type ${describeByte(type)}`, 0);
  }
}

/** Row messages with packed cells; any other message as `decodeMessage` decodes it. */
function decodePacked(r: Reader): PgoutputMessage {
  switch (r.buf[0]) {
    case 0x49: {
      // I
      r.pos = 1;
      const relationId = r.u32();
      r.expect(0x4e, 'N');
      return new InsertMessage(relationId, packTuple(r, false));
    }
    case 0x55: {
      // U
      r.pos = 1;
      const relationId = r.u32();
      let sub = r.u8();
      let oldKind: 'key' | 'full' | null = null;
      let old: PackedCells | null = null;
      if (sub === 0x4b || sub === 0x4f) {
        oldKind = sub === 0x4b ? 'key' : 'full';
        old = packTuple(r, true);
        sub = r.u8();
      }
      if (sub !== 0x4e) throw protocolError(`update expects N, got ${describeByte(sub)}`, r.pos - 1);
      return new UpdateMessage(relationId, oldKind, old, packTuple(r, true));
    }
    case 0x44: {
      // D
      r.pos = 1;
      const relationId = r.u32();
      const sub = r.u8();
      if (sub !== 0x4b && sub !== 0x4f)
        throw protocolError(`delete expects K or O, got ${describeByte(sub)}`, r.pos - 1);
      return new DeleteMessage(relationId, sub === 0x4b ? 'key' : 'full', packTuple(r, false));
    }
    default:
      return decodeMessage(r);
  }
}

class InsertMessage {
  readonly tag = 'insert';
  private cells: Row | undefined;
  constructor(
    readonly relationId: number,
    readonly packedRow: PackedCells,
  ) {}
  get row(): Row {
    return (this.cells ??= unpackCells(this.packedRow) as Row);
  }
}

class UpdateMessage {
  readonly tag = 'update';
  private cells: Cell[] | undefined;
  private oldCells: Cell[] | null | undefined;
  constructor(
    readonly relationId: number,
    readonly oldKind: 'key' | 'full' | null,
    readonly packedOld: PackedCells | null,
    readonly packedRow: PackedCells,
  ) {}
  get row(): Cell[] {
    return (this.cells ??= unpackCells(this.packedRow));
  }
  get old(): Cell[] | null {
    if (this.oldCells === undefined) this.oldCells = this.packedOld && unpackCells(this.packedOld);
    return this.oldCells;
  }
}

class DeleteMessage {
  readonly tag = 'delete';
  private cells: Row | undefined;
  constructor(
    readonly relationId: number,
    readonly oldKind: 'key' | 'full',
    readonly packedOld: PackedCells,
  ) {}
  get old(): Row {
    return (this.cells ??= unpackCells(this.packedOld) as Row);
  }
}

/**
 * Packed tuples are written into a slab shared by the messages decoded one after another, never
 * overwritten: a message's cells stay valid as long as it is kept. A new slab when one is full.
 */
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

/**
 * A tuple's cells transcoded into packed cells: pgoutput's `t len:int32 bytes | n | u` become
 * `varint(len + 2) bytes | 0 | 1`, the same bytes. Checked as `decodeTuple` checks them.
 */
function packTuple(r: Reader, allowUnchanged: boolean): PackedCells {
  const buf = r.buf;
  const count = r.u16();
  // The packed form never takes more than the tuple's bytes (5 of header per text cell shrink to
  // at most 5) plus the count's varint.
  const most = buf.length - r.pos + 3;
  if (slabUsed + most > slab.length) {
    slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, most));
    slabUsed = 0;
  }
  const out = slab;
  const start = slabUsed;
  let o = start;
  let v = count;
  while (v >= 0x80) {
    out[o++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[o++] = v;
  let pos = r.pos;
  for (let i = 0; i < count; i++) {
    const kind = buf[pos];
    if (kind === 0x74) {
      // t: Int32 length + text
      if (pos + 5 > buf.length) throw protocolError(`column ${i + 1} is truncated`, pos);
      const len =
        ((buf[pos + 1]! << 24) | (buf[pos + 2]! << 16) | (buf[pos + 3]! << 8) | buf[pos + 4]!) >>> 0;
      const from = pos + 5;
      const end = from + len;
      if (len > 0x7fffffff || end > buf.length)
        throw protocolError(`column ${i + 1} length ${len | 0} runs past the message`, pos);
      let h = len + 2;
      while (h >= 0x80) {
        out[o++] = (h & 0x7f) | 0x80;
        h = Math.floor(h / 0x80);
      }
      out[o++] = h;
      if (len < 32) for (let k = from; k < end; k++) out[o++] = buf[k]!;
      else o += buf.copy(out, o, from, end);
      pos = end;
    } else if (kind === 0x6e) {
      out[o++] = 0;
      pos += 1;
    } else if (kind === 0x75 && allowUnchanged) {
      out[o++] = 1;
      pos += 1;
    } else if (kind === 0x62) {
      throw protocolError(`column ${i + 1} is in binary format, which Tidemark never requests`, pos);
    } else {
      throw protocolError(`unexpected tuple column kind ${describeByte(kind)} in column ${i + 1}`, pos);
    }
  }
  r.pos = pos;
  slabUsed = o;
  return new PackedCells(out, start, o);
}

function decodeRelation(r: Reader): PgoutputMessage {
  const relationId = r.u32();
  const schema = r.cstring();
  const name = r.cstring();
  const identityByte = r.u8();
  const replicaIdentity = String.fromCharCode(identityByte);
  if (!'dnfi'.includes(replicaIdentity)) {
    throw protocolError(`unknown replica identity ${describeByte(identityByte)}`, r.pos - 1);
  }
  const count = r.u16();
  const columns: RelationColumn[] = new Array<RelationColumn>(count);
  for (let i = 0; i < count; i++) {
    const flags = r.u8();
    columns[i] = { isKey: (flags & 1) !== 0, name: r.cstring(), typeOid: r.u32(), typeMod: r.i32() };
  }
  return {
    tag: 'relation',
    relationId,
    schema,
    name,
    replicaIdentity: replicaIdentity as ReplicaIdentity,
    columns,
  };
}

/** A tuple's cells as strings: the packed form, unpacked (one parser for both forms). */
function decodeTuple(r: Reader, allowUnchanged: boolean): Cell[] {
  return unpackCells(packTuple(r, allowUnchanged));
}

/** A cursor over one message; bounds are enforced by Buffer's readers (RangeError → truncated). */
class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  u8(): number {
    if (this.pos >= this.buf.length) throw new RangeError('end of message');
    return this.buf[this.pos++]!;
  }
  u16(): number {
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  lsn(): Lsn {
    const v = readLsn(this.buf, this.pos);
    this.pos += 8;
    return v;
  }
  pgMicros(): number {
    const v = readPgMicros(this.buf, this.pos);
    this.pos += 8;
    return v;
  }
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw protocolError('unterminated string', this.pos);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(length: number): Buffer {
    const end = this.pos + length;
    if (end > this.buf.length) throw protocolError(`${length} bytes run past the message`, this.pos);
    const b = this.buf.subarray(this.pos, end);
    this.pos = end;
    return b;
  }
  expect(byte: number, name: string): void {
    const at = this.pos;
    const got = this.u8();
    if (got !== byte) throw protocolError(`expected ${name}, got ${describeByte(got)}`, at);
  }
}

function readLsn(buf: Buffer, pos: number): Lsn {
  return Lsn.fromBigInt(buf.readBigUInt64BE(pos));
}

/** Microseconds since 2000-01-01 as a double: exact (two 32-bit halves, no bigint) below 2^53. */
function readPgMicros(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * 4_294_967_296 + buf.readUInt32BE(pos + 4);
}

function pgTimeMs(pgMicros: number): number {
  return Math.floor(pgMicros / 1000) + PG_EPOCH_MS;
}

function describeByte(b: number | undefined): string {
  if (b === undefined) return '<end>';
  const ch = b >= 0x20 && b < 0x7f ? ` '${String.fromCharCode(b)}'` : '';
  return `0x${b.toString(16).padStart(2, '0')}${ch}`;
}

function protocolError(what: string, offset: number, cause?: unknown): TidemarkError {
  return new TidemarkError('SOURCE_PROTOCOL', {
    detail: `${what} at offset ${offset}`,
    ...(cause === undefined ? {} : { cause }),
  });
}
