/**
 * `extract(field from …)` and `date_trunc(field, …)` with PostgreSQL 14+ results: extract returns
 * numeric with PostgreSQL's scales (`second` has 6 digits, `milliseconds` 3, `epoch` 6 for
 * timestamps and intervals, 0 for dates). Ported from timestamp.c / date.c.
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { POSTGRES_EPOCH_JDATE, USECS_PER_DAY, date2isoweek, date2j, idiv, j2day } from './calendar.ts';
import { Numeric } from './numeric.ts';
import { PgDate, PgInterval, PgTimestamp, type TimestampParts } from './temporal.ts';

export const TEMPORAL_FIELDS = [
  'microseconds',
  'milliseconds',
  'second',
  'minute',
  'hour',
  'day',
  'dow',
  'doy',
  'week',
  'month',
  'quarter',
  'year',
  'decade',
  'century',
  'epoch',
] as const;
export type TemporalField = (typeof TEMPORAL_FIELDS)[number];

/** Fields whose value at ±infinity is ±Infinity rather than NULL (NonFiniteTimestampTzPart). */
const MONOTONIC_FIELDS = new Set<TemporalField>(['year', 'decade', 'century', 'epoch']);
const TIME_FIELDS = new Set<TemporalField>(['microseconds', 'milliseconds', 'second', 'minute', 'hour']);
const UNIX_EPOCH_USECS = -946_684_800_000_000n;
const INT64_MAX = 2n ** 63n - 1n;

function unsupported(field: string, type: string): TidemarkError {
  return new TidemarkError('VALUE_INVALID_TEXT', {
    detail: `unit "${field}" not supported for type ${type}`,
    hint: `Use one of: ${TEMPORAL_FIELDS.join(', ')} (time units are not defined for date).`,
  });
}

/**
 * PostgreSQL's `extract(field from v)`: a Numeric, or null where PostgreSQL returns NULL
 * (non-monotonic fields of ±infinity). Throws for units PostgreSQL rejects (time units of a date).
 */
export function extract(field: TemporalField, v: PgDate | PgTimestamp | PgInterval): Numeric | null {
  if (v instanceof PgInterval) return extractInterval(field, v);
  if (v instanceof PgDate) {
    if (TIME_FIELDS.has(field)) throw unsupported(field, 'date');
    if (!v.isFinite()) return infinite(field, v.days > 0 ? 1 : -1);
    if (field === 'epoch') return Numeric.fromBigInt(BigInt(v.days) * 86_400n + 946_684_800n);
    return extractTimestamp(field, v.toTimestamp({ withTimeZone: false }));
  }
  if (!v.isFinite()) return infinite(field, v.special === 'infinity' ? 1 : -1);
  return extractTimestamp(field, v);
}

function infinite(field: TemporalField, sign: 1 | -1): Numeric | null {
  if (!MONOTONIC_FIELDS.has(field)) return null;
  return sign > 0 ? Numeric.POSITIVE_INFINITY : Numeric.NEGATIVE_INFINITY;
}

function extractTimestamp(field: TemporalField, ts: PgTimestamp): Numeric {
  const p = ts.parts();
  const int = (n: number) => Numeric.fromBigInt(BigInt(n));
  const secUsec = BigInt(p.second) * 1_000_000n + BigInt(p.usec);
  const y = p.year;
  switch (field) {
    case 'microseconds':
      return Numeric.of(secUsec, 0);
    case 'milliseconds':
      return Numeric.of(secUsec, 3);
    case 'second':
      return Numeric.of(secUsec, 6);
    case 'minute':
      return int(p.minute);
    case 'hour':
      return int(p.hour);
    case 'day':
      return int(p.day);
    case 'dow':
      return int(j2day(date2j(y, p.month, p.day)));
    case 'doy':
      return int(date2j(y, p.month, p.day) - date2j(y, 1, 1) + 1);
    case 'week':
      return int(date2isoweek(y, p.month, p.day));
    case 'month':
      return int(p.month);
    case 'quarter':
      return int(idiv(p.month - 1, 3) + 1);
    case 'year':
      return int(y > 0 ? y : y - 1);
    case 'decade':
      return int(y >= 0 ? idiv(y, 10) : -idiv(8 - (y - 1), 10));
    case 'century':
      return int(y > 0 ? idiv(y + 99, 100) : -idiv(99 - (y - 1), 100));
    case 'epoch': {
      const usecs = ts.micros - UNIX_EPOCH_USECS;
      // Past int64, PostgreSQL divides as numeric (select_div_scale) and rounds to 6: mirror it.
      if (usecs <= INT64_MAX) return Numeric.of(usecs, 6);
      return Numeric.fromBigInt(usecs).div(Numeric.fromBigInt(1_000_000n)).round(6);
    }
  }
}

function extractInterval(field: TemporalField, v: PgInterval): Numeric {
  if (field === 'epoch') {
    // interval_part: 365.25-day years and 30-day months, as PostgreSQL.
    const years = Math.trunc(v.months / 12);
    const secs = BigInt(years) * 31_557_600n + BigInt((v.months % 12) * 30 + v.days) * 86_400n;
    return Numeric.of(secs * 1_000_000n + v.micros, 6);
  }
  const time = v.micros;
  const hours = time / 3_600_000_000n;
  const minuteUsec = time - hours * 3_600_000_000n;
  const minutes = minuteUsec / 60_000_000n;
  const secUsec = minuteUsec - minutes * 60_000_000n;
  switch (field) {
    case 'microseconds':
      return Numeric.of(secUsec, 0);
    case 'milliseconds':
      return Numeric.of(secUsec, 3);
    case 'second':
      return Numeric.of(secUsec, 6);
    case 'minute':
      return Numeric.fromBigInt(minutes);
    case 'hour':
      return Numeric.fromBigInt(hours);
    case 'day':
      return Numeric.fromBigInt(BigInt(v.days));
    case 'month':
      return Numeric.fromBigInt(BigInt(v.months % 12));
    case 'quarter':
      return Numeric.fromBigInt(BigInt(idiv(v.months % 12, 3) + 1));
    case 'year':
      return Numeric.fromBigInt(BigInt(Math.trunc(v.months / 12)));
    case 'decade':
      return Numeric.fromBigInt(BigInt(Math.trunc(v.months / 120)));
    case 'century':
      return Numeric.fromBigInt(BigInt(Math.trunc(v.months / 1200)));
    default:
      throw unsupported(field, 'interval');
  }
}

/**
 * PostgreSQL's `date_trunc(field, v)`. A date is truncated as the timestamptz at its midnight
 * (as PostgreSQL casts it); ±infinity stays as is. `week` truncates to the ISO week's Monday.
 */
export function dateTrunc(
  field: Exclude<TemporalField, 'dow' | 'doy' | 'epoch'>,
  v: PgTimestamp | PgDate,
): PgTimestamp {
  const ts = v instanceof PgDate ? v.toTimestamp({ withTimeZone: true }) : v;
  if (!ts.isFinite()) return ts;
  const p: TimestampParts = ts.parts();
  let { year, month, day } = p;
  let { hour, minute, second, usec } = p;
  if (field === 'week') {
    const jd = date2j(year, month, day);
    return fromFields(jd - ((j2day(jd) + 6) % 7), 0, 0, 0, 0, ts.withTimeZone);
  }
  const order = [
    'century',
    'decade',
    'year',
    'quarter',
    'month',
    'day',
    'hour',
    'minute',
    'second',
    'milliseconds',
  ];
  const from = order.indexOf(field);
  const at = (f: string) => from >= 0 && from <= order.indexOf(f);
  if (field === 'century') {
    year = year > 0 ? idiv(year + 99, 100) * 100 - 99 : -idiv(99 - (year - 1), 100) * 100 + 1;
  } else if (field === 'decade') {
    year = year > 0 ? idiv(year, 10) * 10 : -idiv(8 - (year - 1), 10) * 10;
  }
  if (at('year')) month = 1;
  if (at('quarter')) month = 3 * idiv(month - 1, 3) + 1;
  if (at('month')) day = 1;
  if (at('day')) hour = 0;
  if (at('hour')) minute = 0;
  if (at('minute')) second = 0;
  if (at('second')) usec = 0;
  if (field === 'milliseconds') usec = idiv(usec, 1000) * 1000;
  return fromFields(date2j(year, month, day), hour, minute, second, usec, ts.withTimeZone);
}

function fromFields(
  jd: number,
  hour: number,
  minute: number,
  second: number,
  usec: number,
  withTimeZone: boolean,
): PgTimestamp {
  const days = BigInt(jd - POSTGRES_EPOCH_JDATE);
  const micros = BigInt((hour * 3600 + minute * 60 + second) * 1_000_000 + usec);
  return PgTimestamp.fromMicros(days * USECS_PER_DAY + micros, { withTimeZone });
}
