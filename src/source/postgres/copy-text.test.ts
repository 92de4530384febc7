import { describe, expect, it } from 'vitest';
import { CopyTextDecoder, encodeCopyField } from './copy-text.ts';

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
