import { describe, expect, it } from 'vitest';
import { Numeric } from './numeric.ts';
import { compareStringsC, compareValues, decodeCell, encodeText, hashKey, valuesEqual } from './pg-values.ts';
import { PgTypeOid as T } from './pg-type-oids.ts';
import { JsonText, OpaqueText, PgArray } from './value.ts';

const roundTrip = (text: string, oid: number, hint?: string) => encodeText(decodeCell(text, oid, hint), oid);

describe('decodeCell / encodeText', () => {
  it('maps built-in types to the value model', () => {
    expect(decodeCell('42', T.int4)).toBe(42);
    expect(decodeCell('-9223372036854775808', T.int8)).toBe(-9223372036854775808n);
    expect(decodeCell('t', T.bool)).toBe(true);
    expect(decodeCell('1.50', T.numeric)).toBeInstanceOf(Numeric);
    expect(decodeCell('\\x00ff', T.bytea)).toEqual(new Uint8Array([0, 255]));
    expect(decodeCell('{"a": 1}', T.jsonb)).toEqual(new JsonText('{"a": 1}'));
    expect(decodeCell('127.0.0.1', T.inet)).toEqual(new OpaqueText('127.0.0.1', 'inet'));
    expect(decodeCell('happy', 98765, 'enum:public.mood')).toBe('happy');
    expect(decodeCell('happy', 98765, 'public.mood')).toEqual(new OpaqueText('happy', 'public.mood'));
    expect(decodeCell('{sad,happy}', 98766, 'enum:public.mood[]')).toEqual(new PgArray(['sad', 'happy'], 0));
    expect(decodeCell(null, T.int4)).toBe(null);
    expect(() => decodeCell('x', T.int4)).toThrow(/VALUE_INVALID_TEXT/);
    expect(() => decodeCell('', T.int8)).toThrow(/VALUE_INVALID_TEXT/);
  });
  it('prints floats as float4_out / float8_out (PostgreSQL 15 texts)', () => {
    const f8 = [
      '1e+15',
      '100000000000000',
      '1.2345678901234568e+20',
      '1e-05',
      '0.0001',
      'NaN',
      '-0',
      '1e-300',
      '0.1',
      '-Infinity',
      '1.7976931348623157e+308',
      '5e-324',
    ];
    for (const t of f8) expect(roundTrip(t, T.float8)).toBe(t);
    for (const t of ['1.234567e+06', '100000', '1e+06', '3.4028235e+38', '0.1', '1.5', '1e-05']) {
      expect(roundTrip(t, T.float4)).toBe(t);
    }
  });
  it('round-trips arrays of every element kind', () => {
    const cases: [string, number][] = [
      ['{1,NULL,3}', 1007],
      ['[0:1][2:3]={{1,2},{3,4}}', 1007],
      ['{"a b","q\\"x",NULL,"NULL",""}', 1009],
      ['{1.50,NaN,-Infinity}', 1231],
      ['{"2024-01-02 03:04:05.5+00",infinity}', 1185],
      ['{"\\\\x00ff","\\\\x"}', 1001],
      ['{"{\\"a\\": [1, 2]}"}', 3807],
      ['{1.234567e+06,0.1}', 1021],
      ['{(3,4),(1,2);(5,6),(7,8)}', 1020],
      ['{"1 day 02:00:00",-00:00:01}', 1187],
    ];
    for (const [t, oid] of cases) expect(roundTrip(t, oid), t).toBe(t);
  });
});

describe('ordering and hashing', () => {
  it('orders NULLs last, NaN above numbers, text by code point (C collation)', () => {
    expect(compareValues(null, 1)).toBeGreaterThan(0);
    expect(compareValues(NaN, Infinity)).toBeGreaterThan(0);
    expect(compareValues(NaN, NaN)).toBe(0);
    expect(compareValues(-0, 0)).toBe(0);
    expect(compareStringsC('\uffff', '😀')).toBeLessThan(0); // U+FFFF < U+1F600 in UTF-8
    expect(compareStringsC('B', 'a')).toBeLessThan(0);
    expect(compareValues(decodeCell('{1,2}', 1007), decodeCell('{1,2,0}', 1007))).toBeLessThan(0);
    expect(compareValues(decodeCell('{1,NULL}', 1007), decodeCell('{1,5}', 1007))).toBeGreaterThan(0);
  });
  it('hashes PG-equal values alike and unequal values apart', () => {
    const n = (t: string) => decodeCell(t, T.numeric);
    expect(hashKey(n('1.0'))).toBe(hashKey(n('1.00')));
    expect(valuesEqual(n('1.0'), n('1.00'))).toBe(true);
    expect(hashKey(n('1.5'))).not.toBe(hashKey(n('15')));
    const iv = (t: string) => decodeCell(t, T.interval);
    expect(hashKey(iv('1 mon'))).toBe(hashKey(iv('30 days')));
    expect(valuesEqual(iv('1 mon'), iv('30 days'))).toBe(true);
    expect(hashKey(decodeCell('{1.0}', 1231))).toBe(hashKey(decodeCell('{1.00}', 1231)));
    expect(valuesEqual(decodeCell('{1.0}', 1231), decodeCell('{1.00}', 1231))).toBe(true);
    expect(hashKey(decodeCell('[0:0]={1}', 1007))).not.toBe(hashKey(decodeCell('{1}', 1007)));
    expect(hashKey('a,s1:b')).not.toBe(hashKey('a') + ',' + hashKey('b'));
    expect(hashKey(null)).not.toBe(hashKey('N'));
    expect(hashKey(-0)).toBe(hashKey(0));
  });
});
