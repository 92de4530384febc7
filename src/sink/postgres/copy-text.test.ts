import { describe, expect, it } from 'vitest';
import { copyField, copyLine } from './copy-text.ts';

describe('COPY text format', () => {
  it('writes NULL as \\N and keeps the empty string distinct', () => {
    expect(copyLine([null, '', 'a'])).toBe('\\N\t\ta\n');
  });

  it('escapes backslash, tab, newline and carriage return', () => {
    expect(copyField('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(copyField('\\x00ff')).toBe('\\\\x00ff');
  });

  it('passes any other Unicode through unchanged', () => {
    expect(copyField('héllo 🌊 "quoted" \'x\' \u0001')).toBe('héllo 🌊 "quoted" \'x\' \u0001');
    expect(copyField('\\N')).toBe('\\\\N');
  });
});
