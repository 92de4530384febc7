import { describe, expect, it } from 'vitest';
import { canonicalizer, canonicalNumeric, canonicalTimestamptz, encodeCells } from './canonical-value.ts';

const col = (typeOid: number, typeName: string) => canonicalizer({ typeOid, typeName });

describe('canonical value text', () => {
  it('NULL and the empty string stay apart, in every family and in the row encoding', () => {
    for (const [oid, name] of [
      [25, 'text'],
      [1700, 'numeric'],
      [114, 'json'],
      [17, 'bytea'],
    ] as const) {
      const f = col(oid, name);
      expect(f(null)).toBeNull();
      expect(f('')).toBe('');
    }
    expect(encodeCells([null])).not.toBe(encodeCells(['']));
    expect(encodeCells(['a', 'b'])).not.toBe(encodeCells(['a,b']));
  });

  it('numeric: the scale is not part of the value; the digits are', () => {
    expect(canonicalNumeric('1.50')).toBe('1.5');
    expect(canonicalNumeric('1.5000')).toBe('1.5');
    expect(canonicalNumeric('001.5')).toBe('1.5');
    expect(canonicalNumeric('-0.000')).toBe('0');
    expect(canonicalNumeric('100')).toBe('100');
    expect(canonicalNumeric('100.00')).toBe('100');
    expect(canonicalNumeric('-0.0012300')).toBe('-0.00123');
    expect(canonicalNumeric('1e3')).toBe('1000');
    expect(canonicalNumeric('NaN')).toBe('NaN');
    expect(canonicalNumeric('-Infinity')).toBe('-Infinity');
    expect(canonicalNumeric('12345678901234567890.123456789012345678')).toBe(
      '12345678901234567890.123456789012345678',
    );
    expect(canonicalNumeric('1.51')).not.toBe(canonicalNumeric('1.5'));
  });

  it('integers from any store: no sign or leading zeros', () => {
    const f = col(20, 'bigint');
    expect(f('+0042')).toBe('42');
    expect(f('9223372036854775807')).toBe('9223372036854775807');
    expect(f('-9223372036854775808')).toBe('-9223372036854775808');
  });

  it('floats: the same double whatever its text; float4 at single precision; -0 is 0', () => {
    const f8 = col(701, 'double precision');
    expect(f8('0.1')).toBe(f8('0.10000000000000000555'));
    expect(f8('1e+100')).toBe(f8('1E100'));
    expect(f8('-0')).toBe('0');
    expect(f8('NaN')).toBe('NaN');
    expect(f8('-Infinity')).toBe('-Infinity');
    expect(f8('0.30000000000000004')).not.toBe(f8('0.3'));
    const f4 = col(700, 'real');
    expect(f4('0.1')).toBe(f4('0.100000001'));
    expect(f4('0.1')).not.toBe(f4('0.2'));
  });

  it('booleans: t/f from PostgreSQL text and from 1/0 stores', () => {
    const f = col(16, 'boolean');
    expect([f('t'), f('true'), f('1')]).toEqual(['t', 't', 't']);
    expect([f('f'), f('false'), f('0')]).toEqual(['f', 'f', 'f']);
  });

  it('timestamptz: one UTC form whatever the zone or the fraction digits', () => {
    expect(canonicalTimestamptz('2024-03-01 12:00:00.123456+02')).toBe('2024-03-01 10:00:00.123456Z');
    expect(canonicalTimestamptz('2024-03-01 10:00:00.123456+00')).toBe('2024-03-01 10:00:00.123456Z');
    expect(canonicalTimestamptz('2024-03-01 10:00:00.500000+00')).toBe('2024-03-01 10:00:00.5Z');
    expect(canonicalTimestamptz('2024-03-01 10:00:00+00')).toBe('2024-03-01 10:00:00Z');
    expect(canonicalTimestamptz('2024-01-01 00:30:00+05:30')).toBe('2023-12-31 19:00:00Z');
    expect(canonicalTimestamptz('2024-01-01 00:00:00-03:00')).toBe('2024-01-01 03:00:00Z');
    expect(canonicalTimestamptz('0044-03-15 12:00:00+00 BC')).toBe('0044-03-15 12:00:00Z BC');
    expect(canonicalTimestamptz('infinity')).toBe('infinity');
    expect(canonicalTimestamptz('2024-03-01 10:00:00.1+00')).not.toBe(
      canonicalTimestamptz('2024-03-01 10:00:00.01+00'),
    );
  });

  it('timestamp and time: the fraction without trailing zeros', () => {
    const ts = col(1114, 'timestamp without time zone');
    expect(ts('2024-03-01 10:00:00.500000')).toBe('2024-03-01 10:00:00.5');
    expect(ts('2024-03-01 10:00:00.000000')).toBe('2024-03-01 10:00:00');
    expect(ts('2024-03-01 10:00:00')).toBe('2024-03-01 10:00:00');
    const t = col(1083, 'time without time zone');
    expect(t('10:00:00.120000')).toBe('10:00:00.12');
  });

  it('bytea: lowercase hex', () => {
    const f = col(17, 'bytea');
    expect(f('\\xDEADBEEF')).toBe('\\xdeadbeef');
    expect(f('\\x')).toBe('\\x');
  });

  it('json and jsonb: key order and spacing are not part of the value', () => {
    const f = col(3802, 'jsonb');
    expect(f('{"b": 1, "a": [1, 2, {"d": null, "c": "x"}]}')).toBe('{"a":[1,2,{"c":"x","d":null}],"b":1}');
    expect(f('{"a":1}')).toBe(f('{ "a" : 1 }'));
    expect(f('{"a":1}')).not.toBe(f('{"a":2}'));
    expect(f('"text"')).toBe('"text"');
    expect(f('not json')).toBe('not json');
  });

  it('uuid lowercase; char(n) without trailing spaces; text untouched', () => {
    expect(col(2950, 'uuid')('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')).toBe(
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    );
    expect(col(1042, 'character(5)')('ab   ')).toBe('ab');
    expect(col(25, 'text')('ab  ')).toBe('ab  ');
    expect(col(25, 'text')('Ä')).not.toBe(col(25, 'text')('A'));
  });

  it('arrays: re-printed, each element canonical by the element type', () => {
    expect(col(1007, 'integer[]')('{"1","2",NULL}')).toBe(col(1007, 'integer[]')('{1,2,NULL}'));
    expect(col(1231, 'numeric(10,2)[]')('{1.50,2}')).toBe('{1.5,2}');
    expect(col(1009, 'text[]')('{"a b",c}')).toBe(col(1009, 'text[]')('{"a b","c"}'));
    expect(col(1000, 'boolean[]')('{t,f}')).toBe(col(1000, 'boolean[]')('{"t","f"}'));
    expect(col(1009, 'text[]')('{NULL}')).not.toBe(col(1009, 'text[]')('{"NULL"}'));
    expect(col(1007, 'integer[][]')('{{1,2},{3,4}}')).toBe('{{1,2},{3,4}}');
  });
});
