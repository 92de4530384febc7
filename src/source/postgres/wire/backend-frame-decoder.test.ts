import { describe, expect, it } from 'vitest';
import { BackendFrameDecoder, type BackendFrame } from './backend-frame-decoder.ts';
import { ByteBuilder } from './byte-builder.ts';

// A startup-phase and streaming-phase conversation, including an empty-bodied frame.
const frames = [
  new ByteBuilder().i32(0).frame('R'),
  new ByteBuilder().cstring('server_version').cstring('15.8').frame('S'),
  new ByteBuilder().i32(1234).i32(5678).frame('K'),
  new ByteBuilder().char('I').frame('Z'),
  new ByteBuilder().frame('W'),
  new ByteBuilder().char('w').u64(1n).u64(2n).u64(3n).bytes('B'.repeat(300)).frame('d'),
  new ByteBuilder().char('k').u64(9n).u64(0n).u8(1).frame('d'),
  new ByteBuilder().frame('c'),
];
const stream = Buffer.concat(frames);

function simplify(out: BackendFrame[]) {
  return out.map((f) => ({ type: String.fromCharCode(f.type), body: f.payload.toString('hex') }));
}
const expected = simplify(frames.map((f) => ({ type: f[0]!, payload: f.subarray(5) })));

function decodeChunks(chunks: Buffer[]): BackendFrame[] {
  const d = new BackendFrameDecoder();
  const out: BackendFrame[] = [];
  for (const c of chunks) d.push(c, out);
  expect(d.pendingBytes).toBe(0);
  return out;
}

describe('BackendFrameDecoder', () => {
  it('decodes a whole stream in one chunk, without copying', () => {
    const out = decodeChunks([stream]);
    expect(simplify(out)).toEqual(expected);
    for (const f of out) expect(f.payload.buffer).toBe(stream.buffer);
  });

  it('decodes the same frames when split at every offset', () => {
    for (let at = 0; at <= stream.length; at++) {
      expect(simplify(decodeChunks([stream.subarray(0, at), stream.subarray(at)]))).toEqual(expected);
    }
  });

  it('decodes the same frames when split at every pair of offsets (three chunks)', () => {
    const step = 13; // every pair would be ~200k decodes; the first split still covers every offset
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b += step) {
        const chunks = [stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)];
        expect(simplify(decodeChunks(chunks))).toEqual(expected);
      }
    }
  });

  it('decodes one byte at a time', () => {
    const chunks = [...stream].map((b) => Buffer.from([b]));
    expect(simplify(decodeChunks(chunks))).toEqual(expected);
  });

  it('reports bytes held for an incomplete frame', () => {
    const d = new BackendFrameDecoder();
    const out: BackendFrame[] = [];
    d.push(stream.subarray(0, 3), out);
    expect(d.pendingBytes).toBe(3);
    d.push(stream.subarray(3, 7), out);
    expect(d.pendingBytes).toBe(2); // header parsed; 2 of the 4 body bytes
  });

  it('refuses a length below 4 as a protocol error', () => {
    const bad = Buffer.from([0x64, 0, 0, 0, 3]);
    expect(() => new BackendFrameDecoder().push(bad, [])).toThrow(/SOURCE_PROTOCOL.*length 3/);
    const d = new BackendFrameDecoder();
    d.push(bad.subarray(0, 2), []);
    expect(() => d.push(bad.subarray(2), [])).toThrow(/SOURCE_PROTOCOL/);
  });
});
