import { describe, expect, it } from 'vitest';
import { Numeric } from './numeric.ts';

const n = (s: string) => Numeric.parse(s);

describe('Numeric', () => {
  it('prints what numeric_out prints, keeping the scale', () => {
    const cases: [string, string][] = [
      ['1.50', '1.50'],
      ['-0.001', '-0.001'],
      ['-0', '0'],
      ['-0.00', '0.00'],
      ['.5', '0.5'],
      ['5.', '5'],
      ['  +12.30  ', '12.30'],
      ['1e3', '1000'],
      ['1.5e-3', '0.0015'],
      ['1.50E1', '15.0'],
      ['123456789012345678901234567890.123456789', '123456789012345678901234567890.123456789'],
      ['nan', 'NaN'],
      ['Infinity', 'Infinity'],
      ['-inf', '-Infinity'],
    ];
    for (const [input, out] of cases) expect(n(input).toString(), input).toBe(out);
  });

  it('refuses what numeric_in refuses', () => {
    for (const bad of ['', '.', '1..2', 'abc', '1e', '1e+', '--1', '1 2', '-nan']) {
      expect(() => n(bad), bad).toThrow(/VALUE_INVALID_TEXT/);
    }
  });

  it('adds, subtracts and multiplies with PostgreSQL scales', () => {
    expect(n('1.5').add(n('2.25')).toString()).toBe('3.75');
    expect(n('1.50').add(n('2')).toString()).toBe('3.50');
    expect(n('1.5').sub(n('1.50')).toString()).toBe('0.00');
    expect(n('1.5').mul(n('2.25')).toString()).toBe('3.375');
    expect(n('1.0').mul(n('1.00')).toString()).toBe('1.000');
    expect(n('Infinity').add(n('-Infinity')).toString()).toBe('NaN');
    expect(n('Infinity').mul(n('0')).toString()).toBe('NaN');
    expect(n('-Infinity').mul(n('-2')).toString()).toBe('Infinity');
  });

  it('divides with select_div_scale (values checked against PostgreSQL 15)', () => {
    expect(n('1').div(n('3')).toString()).toBe('0.33333333333333333333');
    expect(n('2').div(n('3')).toString()).toBe('0.66666666666666666667');
    expect(n('10').div(n('4')).toString()).toBe('2.5000000000000000');
    expect(n('1.000000000000000000000').div(n('3')).toString()).toBe('0.333333333333333333333');
    expect(n('123456789').div(n('0.001')).toString()).toBe('123456789000.00000000');
    expect(n('0.0001').div(n('7')).toString()).toBe('0.000014285714285714285714');
    expect(n('12345.678').div(n('9999.9')).toString()).toBe('1.2345801458014580');
    expect(n('1').div(n('10000')).toString()).toBe('0.000100000000000000000000');
    expect(n('-7').div(n('2')).toString()).toBe('-3.5000000000000000');
    expect(n('5').div(n('Infinity')).toString()).toBe('0');
    expect(n('-Infinity').div(n('2')).toString()).toBe('-Infinity');
    expect(() => n('1').div(n('0.00'))).toThrow(/VALUE_DIVISION_BY_ZERO/);
    expect(n('NaN').div(n('0')).toString()).toBe('NaN');
  });

  it('rounds half away from zero and truncates, also left of the point', () => {
    expect(n('2.5').round().toString()).toBe('3');
    expect(n('-2.5').round().toString()).toBe('-3');
    expect(n('1.2345').round(2).toString()).toBe('1.23');
    expect(n('1.235').round(2).toString()).toBe('1.24');
    expect(n('1.2').round(3).toString()).toBe('1.200');
    expect(n('1250').round(-2).toString()).toBe('1300');
    expect(n('-1.99').trunc(1).toString()).toBe('-1.9');
    expect(n('1299.9').trunc(-2).toString()).toBe('1200');
  });

  it('orders as PostgreSQL and ignores trailing zeros in equality and canonical()', () => {
    const sorted = ['-Infinity', '-1e100', '-1', '0', '0.0001', '1', '1.5', 'Infinity', 'NaN'].map(n);
    for (let i = 0; i + 1 < sorted.length; i++) expect(sorted[i]!.compare(sorted[i + 1]!)).toBeLessThan(0);
    expect(n('1.0').equals(n('1.00'))).toBe(true);
    expect(n('NaN').equals(n('nan'))).toBe(true);
    expect(n('1.0').canonical()).toBe(n('1.000').canonical());
    expect(n('0.00').canonical()).toBe('0');
    expect(n('-1.10').canonical()).toBe('-1.1');
    expect(n('10').canonical()).toBe('10');
  });

  it('converts from and to numbers and bigints', () => {
    expect(Numeric.fromNumber(2 ** 60).toString()).toBe('1152921504606846976');
    expect(Numeric.fromNumber(0.1).toString()).toBe('0.1');
    expect(Numeric.fromNumber(1e-300).toString()).toBe('0.' + '0'.repeat(299) + '1');
    expect(Numeric.fromNumber(NaN).isNaN()).toBe(true);
    expect(Numeric.fromBigInt(-5n).toString()).toBe('-5');
    expect(n('0.1').toNumber()).toBe(0.1);
    expect(n('-Infinity').toNumber()).toBe(-Infinity);
    expect(n('-3.2').abs().toString()).toBe('3.2');
    expect(n('-3.2').neg().toString()).toBe('3.2');
    expect(n('-3.2').sign()).toBe(-1);
    expect(n('0.000').isZero()).toBe(true);
  });
});
