import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { UNCHANGED, type Cell } from '../core/row.ts';
import {
  decodeRecord,
  frameHeaderBytes,
  readFrame,
  recordSchemaId,
  RecordFormatError,
  RecordWriter,
  segmentOfPack,
  writeFrameHeader,
  type LogRecord,
} from './record-codec.ts';
import { wrapLmdbError } from './lmdb-errors.ts';

const cell: fc.Arbitrary<Cell> = fc.oneof(
  fc.constant(null),
  fc.constant(UNCHANGED),
  fc.string({ unit: 'binary' }),
);
const cells = fc.array(cell, { maxLength: 12 });
const id = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const record: fc.Arbitrary<LogRecord> = fc.oneof(
  fc.record({ tag: fc.constant('begin' as const), commitTimeMs: fc.double({ noNaN: true }) }),
  fc.record({ tag: fc.constant('begin' as const), commitTimeMs: fc.double({ noNaN: true }), txn: id }),
  fc.record({
    tag: fc.constant('commit' as const),
    commitTimeMs: fc.double({ noNaN: true }),
    position: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)),
  }),
  fc.record({ tag: fc.constant('schema' as const), schemaId: id, json: fc.json() }),
  fc.record({ tag: fc.constant('insert' as const), schemaId: id, row: cells }),
  fc.record({
    tag: fc.constant('update' as const),
    schemaId: id,
    row: cells,
    old: fc.option(cells, { nil: null }),
    oldIsFull: fc.boolean(),
  }),
  fc.record({ tag: fc.constant('delete' as const), schemaId: id, old: cells }),
  fc.record({ tag: fc.constant('truncate' as const), schemaIds: fc.array(id, { maxLength: 5 }) }),
  fc.record({
    tag: fc.constant('segment' as const),
    file: fc.string(),
    records: fc.integer({ min: 0, max: 2 ** 40 }),
    bytes: fc.maxSafeNat(),
  }),
);

describe('record codec', () => {
  it('round-trips every record (seeded)', () => {
    const w = new RecordWriter();
    fc.assert(
      fc.property(record, (r) => {
        const bytes = w.encode(r);
        expect(decodeRecord(bytes)).toEqual(r);
        if ('schemaId' in r && r.tag !== 'schema') expect(recordSchemaId(bytes)).toBe(r.schemaId);
      }),
      { seed: 4242, numRuns: 2000 },
    );
  });

  it('is compact: a 3-column insert costs its text plus 6 bytes', () => {
    const bytes = new RecordWriter().encode({ tag: 'insert', schemaId: 7, row: ['42', null, 'hello'] });
    expect(bytes.length).toBe(1 + 1 + 1 + (1 + 2) + 1 + (1 + 5));
    const upd = new RecordWriter().encode({
      tag: 'update',
      schemaId: 7,
      row: [UNCHANGED],
      old: null,
      oldIsFull: false,
    });
    expect(decodeRecord(upd)).toMatchObject({ row: [UNCHANGED] });
  });

  it('rejects truncated and unknown records', () => {
    const bytes = new RecordWriter().encode({ tag: 'insert', schemaId: 1, row: ['abcdef'] });
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(() => decodeRecord(bytes.subarray(0, cut))).toThrow(RecordFormatError);
    }
    expect(() => decodeRecord(Buffer.from([99]))).toThrow(RecordFormatError);
    expect(() => decodeRecord(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(RecordFormatError);
  });

  it('frames records: a pack parsed whole, and cut at every offset, yields whole records only', () => {
    const w = new RecordWriter();
    const recs = [
      w.encode({ tag: 'begin', commitTimeMs: 1 }),
      w.encode({ tag: 'insert', schemaId: 3, row: ['1', 'x'.repeat(200)] }), // 2-byte frame header
      w.encode({ tag: 'delete', schemaId: 3, old: ['1', null] }),
      w.encode({ tag: 'commit', commitTimeMs: 2, position: Buffer.from([0, 0, 0, 0, 0, 0, 1, 2]) }),
    ];
    const pack = Buffer.alloc(recs.reduce((n, r) => n + frameHeaderBytes(r.length) + r.length, 0));
    let pos = 0;
    for (const r of recs) {
      pos = writeFrameHeader(pack, pos, r.length);
      pos += r.copy(pack, pos);
    }
    expect(pos).toBe(pack.length);
    const framesIn = (end: number) => {
      const out: Buffer[] = [];
      for (let p = 0, f = readFrame(pack, p, end); f; p = f.end, f = readFrame(pack, p, end)) {
        out.push(pack.subarray(f.start, f.end));
      }
      return out;
    };
    expect(framesIn(pack.length)).toEqual(recs);
    for (let cut = 0; cut <= pack.length; cut++) {
      const got = framesIn(cut);
      expect(got).toEqual(recs.slice(0, got.length));
      const whole = got.reduce((n, r) => n + frameHeaderBytes(r.length) + r.length, 0);
      expect(whole).toBeLessThanOrEqual(cut);
    }
    expect(() => readFrame(Buffer.from([0]), 0, 1)).toThrow(RecordFormatError);
    expect(() => readFrame(Buffer.alloc(6, 0xff), 0, 6)).toThrow(RecordFormatError);
    expect(segmentOfPack(pack)).toBeNull();
  });

  it('finds the segment reference of a pack that holds only it', () => {
    const w = new RecordWriter();
    const ref = w.encode({ tag: 'segment', file: '00000000000000ff.seg', records: 5e6, bytes: 5 * 2 ** 32 });
    const pack = Buffer.alloc(frameHeaderBytes(ref.length) + ref.length);
    ref.copy(pack, writeFrameHeader(pack, 0, ref.length));
    expect(segmentOfPack(pack)).toEqual({
      tag: 'segment',
      file: '00000000000000ff.seg',
      records: 5e6,
      bytes: 5 * 2 ** 32,
    });
    expect(() => segmentOfPack(Buffer.concat([pack, pack]))).toThrow(/shares its pack/);
  });

  it('classifies LMDB errors', () => {
    const full = Object.assign(new Error('MDB_MAP_FULL: Environment mapsize limit reached'), {
      code: -30792,
    });
    expect(wrapLmdbError(full, '/x', 'appending').code).toBe('CHANGELOG_DISK_FULL');
    const nospc = Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
    expect(wrapLmdbError(nospc, '/x', 'appending')).toMatchObject({
      code: 'CHANGELOG_DISK_FULL',
      retriable: true,
    });
    expect(wrapLmdbError(new Error('MDB_INVALID: File is not an LMDB file'), '/x', 'opening').code).toBe(
      'CHANGELOG_CORRUPT',
    );
  });
});
