import { describe, expect, it } from 'vitest';
import { packCells, type PackedCells } from '../../core/packed-cells.ts';
import { UNCHANGED } from '../../core/row.ts';
import { Lsn } from './lsn.ts';
import { decodeCopyData, decodePgoutput } from './pgoutput-decoder.ts';
import type { PgoutputMessage } from './pgoutput-messages.ts';
import { BackendFrameDecoder, type BackendFrame } from './wire/backend-frame-decoder.ts';
import { ByteBuilder } from './wire/byte-builder.ts';

const b = () => new ByteBuilder();
const lsn = (text: string) => Lsn.parse(text);
/** 2024-01-02T03:04:05.123456Z as µs since 2000-01-01. */
const T_US = 757_479_845_123_456n;
const T_MS = Date.parse('2024-01-02T03:04:05.123Z');

// Golden fixtures: hand-built bytes of each pgoutput v1 message and what they decode to.
const fixtures: [string, Buffer, PgoutputMessage][] = [
  [
    'begin',
    b().char('B').u64(0x1_0000_0028n).u64(T_US).u32(0xfffffff0).build(),
    {
      tag: 'begin',
      finalLsn: lsn('1/28'),
      commitTimeMs: T_MS,
      commitTimeUs: T_MS * 1000 + 456,
      xid: 0xfffffff0,
    },
  ],
  [
    'commit',
    b().char('C').u8(0).u64(0x1_0000_0028n).u64(0x1_0000_0058n).u64(T_US).build(),
    {
      tag: 'commit',
      flags: 0,
      commitLsn: lsn('1/28'),
      endLsn: lsn('1/58'),
      commitTimeMs: T_MS,
      commitTimeUs: T_MS * 1000 + 456,
    },
  ],
  [
    'origin',
    b().char('O').u64(0x7n).cstring('node_a').build(),
    { tag: 'origin', originLsn: lsn('0/7'), name: 'node_a' },
  ],
  [
    'relation',
    b()
      .char('R')
      .u32(16384)
      .cstring('public')
      .cstring('données')
      .char('d')
      .i16(2)
      .u8(1)
      .cstring('id')
      .u32(23)
      .i32(-1)
      .u8(0)
      .cstring('amount')
      .u32(1700)
      .i32(786438)
      .build(),
    {
      tag: 'relation',
      relationId: 16384,
      schema: 'public',
      name: 'données',
      replicaIdentity: 'd',
      columns: [
        { isKey: true, name: 'id', typeOid: 23, typeMod: -1 },
        { isKey: false, name: 'amount', typeOid: 1700, typeMod: 786438 },
      ],
    },
  ],
  [
    'type',
    b().char('Y').u32(16400).cstring('public').cstring('mood').build(),
    { tag: 'type', typeOid: 16400, schema: 'public', name: 'mood' },
  ],
  [
    'insert: empty string vs NULL, emoji, CJK',
    b().char('I').u32(16384).char('N').i16(4).text('').char('n').text('🙂👍🏽').text('日本語テキスト').build(),
    { tag: 'insert', relationId: 16384, row: ['', null, '🙂👍🏽', '日本語テキスト'] },
  ],
  [
    'update without old tuple, unchanged TOAST',
    b().char('U').u32(16384).char('N').i16(2).text('1').char('u').build(),
    { tag: 'update', relationId: 16384, oldKind: null, old: null, row: ['1', UNCHANGED] },
  ],
  [
    'update with old key',
    b()
      .char('U')
      .u32(16384)
      .char('K')
      .i16(2)
      .text('1')
      .char('n')
      .char('N')
      .i16(2)
      .text('2')
      .text('x')
      .build(),
    { tag: 'update', relationId: 16384, oldKind: 'key', old: ['1', null], row: ['2', 'x'] },
  ],
  [
    'update with old full row',
    b().char('U').u32(7).char('O').i16(1).text('a').char('N').i16(1).text('b').build(),
    { tag: 'update', relationId: 7, oldKind: 'full', old: ['a'], row: ['b'] },
  ],
  [
    'delete by key',
    b().char('D').u32(16384).char('K').i16(2).text('1').char('n').build(),
    { tag: 'delete', relationId: 16384, oldKind: 'key', old: ['1', null] },
  ],
  [
    'delete full',
    b().char('D').u32(7).char('O').i16(2).text('a').text('').build(),
    { tag: 'delete', relationId: 7, oldKind: 'full', old: ['a', ''] },
  ],
  [
    'truncate cascade + restart identity',
    b().char('T').u32(2).u8(3).u32(16384).u32(16390).build(),
    { tag: 'truncate', cascade: true, restartIdentity: true, relationIds: [16384, 16390] },
  ],
  [
    'truncate plain',
    b().char('T').u32(1).u8(0).u32(5).build(),
    { tag: 'truncate', cascade: false, restartIdentity: false, relationIds: [5] },
  ],
  [
    'message',
    b().char('M').u8(1).u64(0x30n).cstring('tidemark').u32(1).bytes('x').build(),
    { tag: 'message', transactional: true, lsn: lsn('0/30'), prefix: 'tidemark', content: Buffer.from('x') },
  ],
];

describe('decodePgoutput', () => {
  for (const [name, bytes, expected] of fixtures) {
    it(`decodes ${name}`, () => {
      expect(decodePgoutput(bytes)).toEqual(expected);
    });
  }

  /** A packed message as the plain one it stands for (its getters read), and its packed cells. */
  const unpacked = (m: PgoutputMessage): { plain: PgoutputMessage; packed: (PackedCells | null)[] } => {
    switch (m.tag) {
      case 'insert':
        return { plain: { tag: m.tag, relationId: m.relationId, row: m.row }, packed: [m.packedRow!] };
      case 'update':
        return {
          plain: { tag: m.tag, relationId: m.relationId, oldKind: m.oldKind, old: m.old, row: m.row },
          packed: [m.packedRow!, m.packedOld!],
        };
      case 'delete':
        return {
          plain: { tag: m.tag, relationId: m.relationId, oldKind: m.oldKind, old: m.old },
          packed: [m.packedOld!],
        };
      default:
        return { plain: m, packed: [] };
    }
  };

  for (const [name, bytes, expected] of fixtures) {
    it(`decodes ${name} packed to the same cells`, () => {
      const { plain, packed } = unpacked(decodePgoutput(bytes, true));
      expect(plain).toEqual(expected);
      const cells =
        expected.tag === 'insert'
          ? [expected.row]
          : expected.tag === 'update'
            ? [expected.row, expected.old]
            : expected.tag === 'delete'
              ? [expected.old]
              : [];
      const bytesOf = (p: PackedCells | null) => p && p.bytes.subarray(p.start, p.end);
      expect(packed.map(bytesOf)).toEqual(cells.map((c) => c && bytesOf(packCells(c))));
    });
  }

  it('refuses an unknown message byte, naming it and its offset', () => {
    expect(() => decodePgoutput(Buffer.from('Zzz'))).toThrow(/SOURCE_PROTOCOL.*0x5a 'Z'.*offset 0/);
  });

  it('refuses binary tuple data and unknown column kinds', () => {
    const bin = b().char('I').u32(1).char('N').i16(1).char('b').i32(1).u8(0).build();
    expect(() => decodePgoutput(bin)).toThrow(/SOURCE_PROTOCOL.*binary format.*offset 8/);
    const odd = b().char('I').u32(1).char('N').i16(1).char('q').build();
    expect(() => decodePgoutput(odd)).toThrow(/SOURCE_PROTOCOL.*0x71 'q'/);
    const unchangedInInsert = b().char('I').u32(1).char('N').i16(1).char('u').build();
    expect(() => decodePgoutput(unchangedInInsert)).toThrow(/SOURCE_PROTOCOL/);
    expect(() => decodePgoutput(bin, true)).toThrow(/SOURCE_PROTOCOL.*binary format.*offset 8/);
    expect(() => decodePgoutput(odd, true)).toThrow(/SOURCE_PROTOCOL.*0x71 'q'/);
    expect(() => decodePgoutput(unchangedInInsert, true)).toThrow(/SOURCE_PROTOCOL/);
  });

  it('refuses every truncation of every fixture', () => {
    for (const [, bytes] of fixtures) {
      for (let end = 0; end < bytes.length; end++) {
        expect(() => decodePgoutput(bytes.subarray(0, end))).toThrow(/SOURCE_PROTOCOL/);
        expect(() => decodePgoutput(bytes.subarray(0, end), true)).toThrow(/SOURCE_PROTOCOL/);
      }
    }
  });
});

describe('decodeCopyData', () => {
  it('decodes XLogData and keepalive envelopes', () => {
    const w = b().char('w').u64(0x10n).u64(0x20n).u64(T_US).bytes('B..').build();
    const x = decodeCopyData(w);
    expect(x).toMatchObject({ tag: 'xlog', walStart: lsn('0/10'), walEnd: lsn('0/20'), sendTimeMs: T_MS });
    expect(x.tag === 'xlog' && x.payload.toString()).toBe('B..');
    const k = b().char('k').u64(0x99n).u64(T_US).u8(1).build();
    expect(decodeCopyData(k)).toEqual({
      tag: 'keepalive',
      walEnd: lsn('0/99'),
      sendTimeMs: T_MS,
      replyRequested: true,
    });
    expect(() => decodeCopyData(Buffer.from('k'))).toThrow(/SOURCE_PROTOCOL/);
  });
});

/** A replication stream as the server sends it: CopyData frames of XLogData around each fixture. */
function streamOf(messages: Buffer[]): Buffer {
  return Buffer.concat(
    messages.map((m, i) =>
      b()
        .char('w')
        .u64(BigInt(i))
        .u64(BigInt(i + 1))
        .u64(T_US)
        .bytes(m)
        .frame('d'),
    ),
  );
}

function decodeStream(chunks: Buffer[]): PgoutputMessage[] {
  const decoder = new BackendFrameDecoder();
  const frames: BackendFrame[] = [];
  for (const c of chunks) decoder.push(c, frames);
  return frames.map((f) => {
    const env = decodeCopyData(f.payload);
    if (env.tag !== 'xlog') throw new Error('expected XLogData');
    return decodePgoutput(env.payload);
  });
}

describe('replication stream split at every offset', () => {
  const stream = streamOf(fixtures.map(([, bytes]) => bytes));
  const expected = fixtures.map(([, , m]) => m);

  it('decodes the same messages whatever the chunk boundary', () => {
    expect(decodeStream([stream])).toEqual(expected);
    for (let at = 0; at <= stream.length; at++) {
      expect(decodeStream([stream.subarray(0, at), stream.subarray(at)])).toEqual(expected);
    }
  });

  it('measures decode throughput (printed, not asserted)', () => {
    const insert = b()
      .char('I')
      .u32(16384)
      .char('N')
      .i16(4)
      .text('123456')
      .text('some text value')
      .char('n')
      .text('2024-01-02 03:04:05+00')
      .build();
    const rows = 200_000;
    const big = streamOf(new Array<Buffer>(rows).fill(insert));
    const chunks: Buffer[] = [];
    for (let at = 0; at < big.length; at += 65_536) chunks.push(big.subarray(at, at + 65_536));
    const started = process.hrtime.bigint();
    const out = decodeStream(chunks);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(out.length).toBe(rows);
    console.log(
      `pgoutput decode: ${rows} inserts in ${ms.toFixed(0)} ms = ${Math.round(rows / (ms / 1000))} rows/s`,
    );
  });
});
