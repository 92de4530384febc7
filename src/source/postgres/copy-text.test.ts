import { describe, expect, it } from 'vitest';
import { CopyTextBatcher, CopyTextDecoder, encodeCopyField } from './copy-text.ts';
import type { SnapshotRows } from '../../core/epoch.ts';
import type { TableSchema } from '../../core/table-schema.ts';

const fixture = Buffer.from(
  '1\thello\t\\N\t\n' + // id, text, NULL, empty string
    '2\ttab\\there\\nnewline\\\\back\t\\N\t😀 日本\n' +
    '3\t\\101\\x42c\t\\N\t\\r\\b\\f\\v\n',
  'utf8',
);
const expected = [
  ['1', 'hello', null, ''],
  ['2', 'tab\there\nnewline\\back', null, '😀 日本'],
  ['3', 'ABc', null, '\r\b\f\v'],
];

describe('CopyTextDecoder', () => {
  it('decodes a whole buffer', () => {
    const d = new CopyTextDecoder();
    expect(d.push(fixture)).toEqual(expected);
    d.end();
  });

  it('decodes the same rows when split at every offset', () => {
    for (let cut = 0; cut <= fixture.length; cut++) {
      const d = new CopyTextDecoder();
      const rows = [...d.push(fixture.subarray(0, cut)), ...d.push(fixture.subarray(cut))];
      expect(rows, `split at ${cut}`).toEqual(expected);
      d.end();
    }
  });

  it('reports a stream cut inside a row', () => {
    const d = new CopyTextDecoder();
    d.push(Buffer.from('1\tpartial'));
    expect(() => d.end()).toThrow(/ended inside a row/);
  });

  it('encodeCopyField is the inverse of decoding', () => {
    const values = ['', 'a\\b', 'x\ty\nz\r', '😀', null, '\\N'];
    const line = Buffer.from(values.map(encodeCopyField).join('\t') + '\n');
    expect(new CopyTextDecoder().push(line)).toEqual([values]);
  });
});

describe('CopyTextBatcher', () => {
  const table = { schema: 'public', name: 't' } as TableSchema;
  const collect = (pieces: Buffer[], batchBytes: number): SnapshotRows[] => {
    const b = new CopyTextBatcher(table, batchBytes);
    const out = pieces.flatMap((p) => b.push(p));
    const last = b.end();
    return last ? [...out, last] : out;
  };

  it('passes the bytes on in whole rows, counted, split at every offset', () => {
    for (const batchBytes of [1, 20, 1 << 20]) {
      for (let cut = 0; cut <= fixture.length; cut++) {
        const chunks = collect([fixture.subarray(0, cut), fixture.subarray(cut)], batchBytes);
        const what = `split at ${cut}, batches of ${batchBytes} bytes`;
        expect(Buffer.concat(chunks.map((c) => c.copyText!.bytes)).equals(fixture), what).toBe(true);
        for (const c of chunks) {
          expect(c.copyText!.bytes.at(-1), what).toBe(0x0a);
          expect(c.rows.length, what).toBe(c.copyText!.rows);
        }
        expect(
          chunks.flatMap((c) => c.rows),
          what,
        ).toEqual(expected);
      }
    }
  });

  it('keeps decoded rows when a chunk is copied by spreading', () => {
    const [chunk] = collect([fixture], 1 << 20);
    expect({ ...chunk! }.rows).toEqual(expected);
  });

  it('reports a stream cut inside a row', () => {
    const b = new CopyTextBatcher(table, 10);
    b.push(Buffer.from('1\tx\n2\tpartial'));
    expect(() => b.end()).toThrow(/ended inside a row/);
  });
});
