import { TidemarkError } from '../../errors/tidemark-error.ts';

/**
 * A bounds-checked little-endian cursor over one binlog event (or one wire packet). Every read
 * checks the end it was given (the event's end less its checksum), so a short or corrupt event
 * throws SOURCE_PROTOCOL naming the offset instead of reading the next event's bytes.
 */
export class BinlogReader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
    /** One past the last byte this reader may read. */
    public end = buf.length,
  ) {
    this.pos = start;
  }

  remaining(): number {
    return this.end - this.pos;
  }

  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw protocolError(`${what}: ${n} bytes needed, ${this.end - this.pos} left`, this.pos);
    }
  }

  u8(): number {
    this.need(1, 'u8');
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2, 'u16');
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3, 'u24');
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4, 'u32');
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  /** 6-byte table id: exact as a number (below 2^48). */
  u48(): number {
    this.need(6, 'u48');
    const v = this.buf.readUIntLE(this.pos, 6);
    this.pos += 6;
    return v;
  }
  u64(): bigint {
    this.need(8, 'u64');
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  /** Length-encoded integer (packed integer of the protocol); 0xfb (NULL) is refused here. */
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) return this.u24();
    if (first === 0xfe) {
      const v = this.u64();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw protocolError(`length ${v} is too large`, this.pos - 8);
      return Number(v);
    }
    throw protocolError(`invalid length-encoded integer 0x${first.toString(16)}`, this.pos - 1);
  }
  bytes(n: number): Buffer {
    this.need(n, 'bytes');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  skip(n: number): void {
    this.need(n, 'skip');
    this.pos += n;
  }
  /** A string of `n` bytes (identifiers and statements: utf8 on MariaDB and MySQL). */
  str(n: number): string {
    this.need(n, 'string');
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  /** The rest of the event as a string. */
  rest(): string {
    return this.str(this.end - this.pos);
  }
  /** One byte that must be NUL (the terminator after a length-prefixed name). */
  nul(): void {
    const at = this.pos;
    if (this.u8() !== 0) throw protocolError('expected a NUL terminator', at);
  }
}

export function protocolError(what: string, offset: number, cause?: unknown): TidemarkError {
  return new TidemarkError('SOURCE_PROTOCOL', {
    detail: `${what} at offset ${offset}`,
    ...(cause === undefined ? {} : { cause }),
  });
}
