import { describe, expect, it } from 'vitest';
import { formatArrayLiteral, parseArrayLiteral } from './pg-array.ts';

// Literals as PostgreSQL 15's array_out printed them.
describe('array literals', () => {
  it('parses quoting, escapes, NULL and nested dimensions, and prints them back', () => {
    const cases: [string, unknown][] = [
      ['{}', []],
      ['{1,2,3}', ['1', '2', '3']],
      ['{"a b","q\\"x","b\\\\s",NULL,"NULL",""," x"}', ['a b', 'q"x', 'b\\s', null, 'NULL', '', ' x']],
      ['{"{}","a,b","a\tb","null"}', ['{}', 'a,b', 'a\tb', 'null']],
      [
        '{{1,2},{3,4}}',
        [
          ['1', '2'],
          ['3', '4'],
        ],
      ],
      ['{{{a}},{{NULL}}}', [[['a']], [[null]]]],
    ];
    for (const [text, items] of cases) {
      const parsed = parseArrayLiteral(text);
      expect(parsed.items, text).toEqual(items);
      expect(formatArrayLiteral(parsed.items)).toBe(text);
    }
  });
  it('keeps lower bounds and the box delimiter', () => {
    const p = parseArrayLiteral('[0:1][2:3]={{1,2},{3,4}}');
    expect(p.lowerBounds).toEqual([0, 2]);
    expect(formatArrayLiteral(p.items, { lowerBounds: p.lowerBounds })).toBe('[0:1][2:3]={{1,2},{3,4}}');
    const box = parseArrayLiteral('{(3,4),(1,2);(5,6),(7,8)}', { delimiter: ';' });
    expect(box.items).toEqual(['(3,4),(1,2)', '(5,6),(7,8)']);
    expect(formatArrayLiteral(box.items, { delimiter: ';' })).toBe('{(3,4),(1,2);(5,6),(7,8)}');
  });
  it('accepts what array_in accepts around elements', () => {
    expect(parseArrayLiteral(' { a , "b" ,\\ c\\ , NuLl } ').items).toEqual(['a', 'b', ' c ', null]);
    expect(parseArrayLiteral('{\\NULL}').items).toEqual(['NULL']);
  });
  it('refuses malformed literals', () => {
    for (const bad of ['', '{', '{1,2', '{1,,2}', '{"a}', '{1}x', '[0:1]{1,2}', '{a"b}']) {
      expect(() => parseArrayLiteral(bad), bad).toThrow(/VALUE_INVALID_TEXT/);
    }
  });
});
