import { describe, expect, it } from 'vitest';
import { PgDate, PgInterval, PgTimestamp } from './temporal.ts';
import { dateTrunc, extract } from './temporal-fields.ts';

const ts = (s: string) => PgTimestamp.parse(s, { withTimeZone: false });
const tstz = (s: string) => PgTimestamp.parse(s, { withTimeZone: true });

// Expected texts were printed by PostgreSQL 15 (DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres).
describe('PgDate', () => {
  it('round-trips the ISO text form, BC years and infinity', () => {
    for (const t of [
      '2000-01-01',
      '2024-02-29',
      '0044-03-15 BC',
      '4714-11-24 BC',
      '10000-01-01',
      'infinity',
      '-infinity',
    ]) {
      expect(PgDate.parse(t).toString()).toBe(t);
    }
    expect(PgDate.parse('2000-01-02').days).toBe(1);
    expect(PgDate.parse('0001-12-31 BC').toYmd()).toEqual({ year: 0, month: 12, day: 31 });
  });
  it('refuses impossible dates', () => {
    for (const t of ['2023-02-29', '2024-13-01', '0000-01-01', '2024-1-1', 'yesterday']) {
      expect(() => PgDate.parse(t), t).toThrow(/VALUE_INVALID_TEXT/);
    }
  });
  it('orders and converts for sinks', () => {
    expect(PgDate.parse('-infinity').compare(PgDate.parse('0044-03-15 BC'))).toBeLessThan(0);
    expect(PgDate.parse('infinity').compare(PgDate.parse('10000-01-01'))).toBeGreaterThan(0);
    expect(PgDate.parse('1970-01-02').toDate()?.getTime()).toBe(86_400_000);
    expect(PgDate.parse('0044-03-15 BC').toISOString()).toBe('-000043-03-15');
  });
});

describe('PgTimestamp', () => {
  it('round-trips timestamp and timestamptz text', () => {
    for (const t of [
      '2024-01-02 03:04:05',
      '2024-01-02 03:04:05.12',
      '1900-01-01 00:00:00.000001',
      '0044-03-15 12:00:00 BC',
    ]) {
      expect(ts(t).toString()).toBe(t);
    }
    for (const t of [
      '2024-01-02 03:04:05.123456+00',
      '0001-01-01 00:00:00.5+00 BC',
      '294276-12-31 23:59:59.999999+00',
      'infinity',
    ]) {
      expect(tstz(t).toString()).toBe(t);
    }
  });
  it('applies offsets of timestamptz input and orders by instant', () => {
    expect(tstz('2024-01-02 05:04:05+02').toString()).toBe('2024-01-02 03:04:05+00');
    expect(tstz('2024-01-01 22:34:05-04:30').toString()).toBe('2024-01-02 03:04:05+00');
    expect(ts('1999-12-31 23:59:59.999999').compare(ts('2000-01-01 00:00:00'))).toBeLessThan(0);
    expect(ts('-infinity').compare(ts('4714-11-24 00:00:00 BC'))).toBeLessThan(0);
  });
  it('converts to ISO 8601 and JS dates', () => {
    expect(tstz('2024-01-02 03:04:05.123456+00').toISOString()).toBe('2024-01-02T03:04:05.123456Z');
    expect(tstz('1969-12-31 23:59:59.9995+00').toDate()?.getTime()).toBe(-1);
    expect(tstz('1970-01-01 00:00:01+00').unixMicros()).toBe(1_000_000n);
  });
  it('extracts fields as PostgreSQL 15 does', () => {
    const t = ts('2024-01-02 03:04:05.123456');
    const got = (f: Parameters<typeof extract>[0], v: Parameters<typeof extract>[1]) =>
      extract(f, v)?.toString() ?? null;
    expect(got('epoch', t)).toBe('1704164645.123456');
    expect(got('milliseconds', t)).toBe('5123.456');
    expect(got('second', ts('2024-01-02 03:04:05'))).toBe('5.000000');
    expect(got('microseconds', ts('2024-01-02 03:04:05.5'))).toBe('5500000');
    expect(got('epoch', tstz('infinity'))).toBe('Infinity');
    expect(got('hour', ts('infinity'))).toBe(null);
    expect(got('year', ts('-infinity'))).toBe('-Infinity');
    expect(got('epoch', ts('1900-01-01 00:00:00.5'))).toBe('-2208988799.500000');
    expect(got('decade', PgDate.parse('0001-01-01 BC'))).toBe('0');
    expect(got('century', PgDate.parse('0001-01-01 BC'))).toBe('-1');
    expect(got('decade', PgDate.parse('0011-01-01 BC'))).toBe('-1');
    expect(got('century', PgDate.parse('0100-01-01'))).toBe('1');
    expect(got('century', PgDate.parse('0101-01-01'))).toBe('2');
    expect(got('year', PgDate.parse('0001-01-01 BC'))).toBe('-1');
    expect(got('week', PgDate.parse('2024-01-02'))).toBe('1');
    expect(got('week', PgDate.parse('2021-01-03'))).toBe('53');
    expect(got('dow', PgDate.parse('2024-01-07'))).toBe('0');
    expect(got('doy', PgDate.parse('2024-12-31'))).toBe('366');
    expect(got('epoch', PgInterval.parse('1 year 2 mons 3 days 04:05:06.789'))).toBe('37015506.789000');
    expect(() => extract('hour', PgDate.parse('2024-01-02'))).toThrow(/not supported for type date/);
  });
  it('truncates as date_trunc does', () => {
    const tr = (f: Parameters<typeof dateTrunc>[0], v: PgTimestamp | PgDate) => dateTrunc(f, v).toString();
    expect(tr('week', ts('2024-01-02 03:04:05'))).toBe('2024-01-01 00:00:00');
    expect(tr('decade', ts('0005-06-01 00:00:00 BC'))).toBe('0011-01-01 00:00:00 BC');
    expect(tr('century', ts('0005-06-01 00:00:00 BC'))).toBe('0100-01-01 00:00:00 BC');
    expect(tr('century', ts('2024-06-01 00:00:00'))).toBe('2001-01-01 00:00:00');
    expect(tr('quarter', tstz('2024-06-01 10:00:00+00'))).toBe('2024-04-01 00:00:00+00');
    expect(tr('milliseconds', ts('2024-01-02 03:04:05.123456'))).toBe('2024-01-02 03:04:05.123');
    expect(tr('day', PgDate.parse('2024-01-02'))).toBe('2024-01-02 00:00:00+00');
    expect(tr('decade', ts('0001-06-01 00:00:00 BC'))).toBe('0001-01-01 00:00:00 BC');
    expect(tr('decade', ts('0010-06-01 00:00:00 BC'))).toBe('0011-01-01 00:00:00 BC');
    expect(tr('century', ts('0101-06-01 00:00:00 BC'))).toBe('0200-01-01 00:00:00 BC');
    expect(tr('year', ts('infinity'))).toBe('infinity');
  });
});

describe('PgInterval', () => {
  it('round-trips IntervalStyle=postgres text', () => {
    for (const t of [
      '1 year 2 mons 3 days 04:05:06.789',
      '-1 years -2 mons +3 days -04:05:06',
      '00:00:00',
      '1 day',
      '-00:00:01',
      '1 mon -1 days',
      '-1 days +01:00:00',
      '100:00:00',
      '11 mons',
      '178000000 years',
    ]) {
      expect(PgInterval.parse(t).toString()).toBe(t);
    }
  });
  it('compares as PostgreSQL: 1 mon = 30 days', () => {
    expect(PgInterval.parse('1 mon').equals(PgInterval.parse('30 days'))).toBe(true);
    expect(PgInterval.parse('1 day').equals(PgInterval.parse('24:00:00'))).toBe(true);
    expect(PgInterval.parse('-1 days +01:00:00').compare(PgInterval.parse('00:00:00'))).toBeLessThan(0);
    expect(PgInterval.parse('-1 years -2 mons +3 days -04:05:06').toISOString()).toBe('P-1Y-2M3DT-4H-5M-6S');
    expect(() => PgInterval.parse('1 fortnight')).toThrow(/VALUE_INVALID_TEXT/);
  });
});
