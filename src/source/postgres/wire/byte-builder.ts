/**
 * Builds protocol bytes field by field, for golden fixtures in tests and benchmarks (the wire
 * code itself writes buffers directly).
 */
export class ByteBuilder {
  private readonly parts: Buffer[] = [];

  u8(...values: number[]): this {
    this.parts.push(Buffer.from(values));
    return this;
  }
  char(c: string): this {
    return this.u8(c.charCodeAt(0));
  }
  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  cstring(s: string): this {
    this.parts.push(Buffer.from(s + '\0', 'utf8'));
    return this;
  }
  bytes(b: Buffer | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'utf8') : b);
    return this;
  }
  /** A text tuple column: 't', Int32 byte length, UTF-8 bytes. */
  text(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.char('t').i32(b.length).bytes(b);
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
  /** The built bytes as one backend frame: type byte, Int32 length, body. */
  frame(type: string): Buffer {
    const body = this.build();
    return new ByteBuilder()
      .char(type)
      .i32(body.length + 4)
      .bytes(body)
      .build();
  }
}
