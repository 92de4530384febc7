import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { decodeMysqlJson } from './mysql-json.ts';

/**
 * MySQL binary JSON, encoded by hand from the format's specification (`json_binary.h`): no
 * MySQL server is available here, so these are not captured bytes.
 */
describe('MySQL binary JSON', () => {
  it('decodes scalars', () => {
    expect(decodeMysqlJson(Buffer.from([0x04, 0x00]), 'j')).toBe('null');
    expect(decodeMysqlJson(Buffer.from([0x04, 0x01]), 'j')).toBe('true');
    expect(decodeMysqlJson(Buffer.from([0x05, 0xff, 0xff]), 'j')).toBe('-1');
    expect(decodeMysqlJson(Buffer.from([0x0c, 0x03, 0x61, 0x22, 0x62]), 'j')).toBe('"a\\"b"');
    const d = Buffer.alloc(9);
    d[0] = 0x0b;
    d.writeDoubleLE(2.5, 1);
    expect(decodeMysqlJson(d, 'j')).toBe('2.5');
    const u = Buffer.alloc(9);
    u[0] = 0x0a;
    u.writeBigUInt64LE(18446744073709551615n, 1);
    expect(decodeMysqlJson(u, 'j')).toBe('18446744073709551615');
  });

  it('decodes a small object holding an inlined int, a string and a nested array', () => {
    // {"a": 1, "bb": "x", "c": [true]}: count 3, size, key entries (offset u16, len u16),
    // value entries (type u8, offset-or-inline u16), keys, then the non-inlined values.
    const keys = Buffer.from('abbc');
    const header = 4 + 3 * 4 + 3 * 3;
    const keysAt = header;
    const strAt = keysAt + keys.length;
    const str = Buffer.from([0x01, 0x78]);
    const arrAt = strAt + str.length;
    const arr = Buffer.from([0x01, 0x00, 0x07, 0x00, 0x04, 0x01, 0x00]); // [true]: count 1, size 7, literal true
    const size = arrAt + arr.length;
    const obj = Buffer.alloc(size);
    let o = obj.writeUInt16LE(3, 0);
    o = obj.writeUInt16LE(size, o);
    for (const [off, len] of [
      [keysAt, 1],
      [keysAt + 1, 2],
      [keysAt + 3, 1],
    ]) {
      o = obj.writeUInt16LE(off!, o);
      o = obj.writeUInt16LE(len!, o);
    }
    for (const [type, v] of [
      [0x05, 1],
      [0x0c, strAt],
      [0x02, arrAt],
    ]) {
      o = obj.writeUInt8(type!, o);
      o = obj.writeUInt16LE(v!, o);
    }
    keys.copy(obj, keysAt);
    str.copy(obj, strAt);
    arr.copy(obj, arrAt);
    expect(decodeMysqlJson(Buffer.concat([Buffer.from([0x00]), obj]), 'j')).toBe(
      '{"a": 1, "bb": "x", "c": [true]}',
    );
  });

  it('refuses truncated documents and opaque values with a TidemarkError', () => {
    expect(() => decodeMysqlJson(Buffer.from([0x0c, 0x05, 0x61]), 'j')).toThrow(TidemarkError);
    expect(() => decodeMysqlJson(Buffer.from([0x0f, 0xf6, 0x01, 0x00]), 'j')).toThrow(/opaque/);
  });
});
