/**
 * Date, timestamp and interval arithmetic as PostgreSQL does it (timestamp.c, date.c), and
 * interval literals with field qualifiers (`interval '90' day`, `interval '1-2' year to month`):
 *
 *   date ± integer → date          date − date → integer        date ± interval → timestamp
 *   timestamp[tz] ± interval → timestamp[tz]                     timestamp[tz] − timestamp[tz] → interval
 *   interval ± interval → interval  interval × number, number × interval, interval ÷ number → interval
 *
 * Months are added first (the day clamped to the month's end), then days, then microseconds;
 * timestamptz is calendar arithmetic in UTC (the session's TimeZone). Infinite values stay
 * infinite where PostgreSQL keeps them and fail where it fails.
 */
import { date2j, j2date, POSTGRES_EPOCH_JDATE, USECS_PER_DAY } from '../decode/calendar.ts';
import { PgDate, PgInterval, PgTimestamp } from '../decode/temporal.ts';
import type { Value } from '../decode/value.ts';
import type { ArithOp } from './value-ops.ts';
import { SqlRuntimeError } from './value-ops.ts';
import type { SqlKind } from './sql-type.ts';
import { isNumericFamily } from './sql-type.ts';

/** What `left op right` computes when one side is temporal; undefined when PostgreSQL has no such operator. */
export interface TemporalOp {
  readonly result: SqlKind;
  /** Kinds the operands are cast to first (e.g. date → timestamp before `date − timestamp`). */
  readonly left: SqlKind;
  readonly right: SqlKind;
  readonly fn: (a: Value, b: Value) => Value;
}

const INTS = new Set<SqlKind>(['int2', 'int4', 'unknown']);
const TS = new Set<SqlKind>(['timestamp', 'timestamptz']);

export function temporalOp(op: ArithOp, l: SqlKind, r: SqlKind): TemporalOp | undefined {
  const iv: SqlKind = 'interval';
  if (op === '+' || op === '-') {
    if (l === 'date' && INTS.has(r) && r !== 'unknown')
      return {
        result: 'date',
        left: 'date',
        right: 'int4',
        fn: (a, b) => addDays(a as PgDate, sign(op) * (b as number)),
      };
    if (op === '+' && INTS.has(l) && l !== 'unknown' && r === 'date')
      return { result: 'date', left: 'int4', right: 'date', fn: (a, b) => addDays(b as PgDate, a as number) };
    if (l === 'date' && r === 'date' && op === '-')
      return {
        result: 'int4',
        left: 'date',
        right: 'date',
        fn: (a, b) => dateDiff(a as PgDate, b as PgDate),
      };
    if ((l === 'date' || TS.has(l)) && r === iv) {
      const t: SqlKind = l === 'timestamptz' ? 'timestamptz' : 'timestamp';
      return {
        result: t,
        left: t,
        right: iv,
        fn: (a, b) => addInterval(a as PgTimestamp, b as PgInterval, sign(op)),
      };
    }
    if (op === '+' && l === iv && (r === 'date' || TS.has(r))) {
      const t: SqlKind = r === 'timestamptz' ? 'timestamptz' : 'timestamp';
      return {
        result: t,
        left: iv,
        right: t,
        fn: (a, b) => addInterval(b as PgTimestamp, a as PgInterval, 1),
      };
    }
    if (
      op === '-' &&
      (l === 'date' || TS.has(l)) &&
      (r === 'date' || TS.has(r)) &&
      !(l === 'date' && r === 'date')
    ) {
      const t: SqlKind = l === 'timestamptz' || r === 'timestamptz' ? 'timestamptz' : 'timestamp';
      return {
        result: iv,
        left: t,
        right: t,
        fn: (a, b) => timestampDiff(a as PgTimestamp, b as PgTimestamp),
      };
    }
    if (l === iv && r === iv)
      return {
        result: iv,
        left: iv,
        right: iv,
        fn: (a, b) => addIntervals(a as PgInterval, b as PgInterval, sign(op)),
      };
    return undefined;
  }
  if (op === '*' && l === iv && (isNumericFamily(r) || r === 'unknown'))
    return { result: iv, left: iv, right: 'float8', fn: (a, b) => mulInterval(a as PgInterval, b as number) };
  if (op === '*' && r === iv && isNumericFamily(l))
    return { result: iv, left: 'float8', right: iv, fn: (a, b) => mulInterval(b as PgInterval, a as number) };
  if (op === '/' && l === iv && (isNumericFamily(r) || r === 'unknown'))
    return {
      result: iv,
      left: iv,
      right: 'float8',
      fn: (a, b) => {
        if ((b as number) === 0) throw new SqlRuntimeError('division by zero');
        return mulInterval(a as PgInterval, 1 / (b as number));
      },
    };
  return undefined;
}

const sign = (op: ArithOp): 1 | -1 => (op === '-' ? -1 : 1);

function addDays(d: PgDate, n: number): PgDate {
  if (!d.isFinite()) return d;
  return PgDate.fromDays(d.days + n);
}

function dateDiff(a: PgDate, b: PgDate): number {
  if (!a.isFinite() || !b.isFinite()) throw new SqlRuntimeError('cannot subtract infinite dates');
  return a.days - b.days;
}

/** timestamp_pl_interval: months (day clamped), then days, then microseconds. */
export function addInterval(ts: PgTimestamp, iv: PgInterval, s: 1 | -1): PgTimestamp {
  if (!ts.isFinite()) return ts;
  const options = { withTimeZone: ts.withTimeZone };
  let micros = ts.micros;
  const months = s * iv.months;
  const days = s * iv.days;
  if (months !== 0 || days !== 0) {
    let dayNo = micros / USECS_PER_DAY;
    let time = micros - dayNo * USECS_PER_DAY;
    if (time < 0n) {
      dayNo -= 1n;
      time += USECS_PER_DAY;
    }
    let jd = Number(dayNo) + POSTGRES_EPOCH_JDATE;
    if (months !== 0) {
      const { year, month, day } = j2date(jd);
      const total = year * 12 + (month - 1) + months;
      const y = Math.floor(total / 12);
      const m = total - y * 12 + 1;
      jd = date2j(y, m, Math.min(day, daysInMonth(y, m)));
    }
    jd += days;
    micros = BigInt(jd - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY + time;
  }
  micros += BigInt(s) * iv.micros;
  return PgTimestamp.fromMicros(micros, options);
}

function daysInMonth(year: number, month: number): number {
  return date2j(month === 12 ? year + 1 : year, month === 12 ? 1 : month + 1, 1) - date2j(year, month, 1);
}

/** timestamp_mi: the difference in microseconds, whole days moved into the day field (justify_hours). */
function timestampDiff(a: PgTimestamp, b: PgTimestamp): PgInterval {
  if (!a.isFinite() || !b.isFinite()) throw new SqlRuntimeError('cannot subtract infinite timestamps');
  const diff = a.micros - b.micros;
  const days = diff / USECS_PER_DAY;
  return new PgInterval(0, Number(days), diff - days * USECS_PER_DAY);
}

function addIntervals(a: PgInterval, b: PgInterval, s: 1 | -1): PgInterval {
  return new PgInterval(a.months + s * b.months, a.days + s * b.days, a.micros + BigInt(s) * b.micros);
}

/** interval_mul: fractional months cascade into days (30 per month), fractional days into time. */
function mulInterval(iv: PgInterval, factor: number): PgInterval {
  if (Number.isNaN(factor)) throw new SqlRuntimeError('interval out of range');
  const monthsF = iv.months * factor;
  const months = Math.trunc(monthsF);
  const monthRemainderDays = (monthsF - months) * 30;
  const daysF = iv.days * factor;
  let days = Math.trunc(daysF);
  let secRemainder = (daysF - days + monthRemainderDays - Math.trunc(monthRemainderDays)) * 86_400;
  secRemainder = Math.round(secRemainder * 1e6) / 1e6;
  if (Math.abs(secRemainder) >= 86_400) {
    days += Math.trunc(secRemainder / 86_400);
    secRemainder -= Math.trunc(secRemainder / 86_400) * 86_400;
  }
  days += Math.trunc(monthRemainderDays);
  const micros = Math.round(Number(iv.micros) * factor + secRemainder * 1e6);
  if (!Number.isFinite(micros) || !Number.isSafeInteger(months))
    throw new SqlRuntimeError('interval out of range');
  return new PgInterval(months, days, BigInt(micros));
}

// Interval typmod field bits (datetime.h INTERVAL_MASK).
const MONTH = 1 << 1;
const YEAR = 1 << 2;
const DAY = 1 << 3;
const HOUR = 1 << 10;
const MINUTE = 1 << 11;
const SECOND = 1 << 12;
const FULL_RANGE = 0x7fff;

/** The unit a bare number stands for under a field qualifier: its last (smallest) field. */
function bareUnit(mask: number): string | undefined {
  if (mask === FULL_RANGE) return undefined;
  if (mask & SECOND) return 'second';
  if (mask & MINUTE) return 'minute';
  if (mask & HOUR) return 'hour';
  if (mask & DAY) return 'day';
  if (mask & MONTH) return 'month';
  if (mask & YEAR) return 'year';
  return undefined;
}

/**
 * An interval literal under a field qualifier: a bare number is in the qualifier's last unit
 * (`'90' day`), `Y-M` is years and months, `D H:M[:S]` days and a clock; then the fields below
 * the qualifier's range are cut off (AdjustIntervalForTypmod).
 */
export function qualifiedIntervalText(text: string, mask: number): string {
  const unit = bareUnit(mask);
  const s = text.trim();
  if (unit !== undefined && /^[+-]?\d+(\.\d+)?$/.test(s)) return `${s} ${unit}`;
  const ym = /^([+-])?(\d+)-(\d+)$/.exec(s);
  if (ym && mask & (YEAR | MONTH)) return `${ym[1] ?? ''}${ym[2]} years ${ym[1] ?? ''}${ym[3]} months`;
  const dayClock = /^([+-]?\d+)\s+([+-]?\d+:\d+(?::\d+(?:\.\d+)?)?)$/.exec(s);
  if (dayClock) return `${dayClock[1]} days ${dayClock[2]}`;
  return s;
}

/** AdjustIntervalForTypmod: drops the fields below the qualifier's range. */
export function truncateInterval(iv: PgInterval, mask: number): PgInterval {
  if (mask === FULL_RANGE || mask === 0) return iv;
  if (mask === YEAR) return new PgInterval(Math.trunc(iv.months / 12) * 12, 0, 0n);
  if (mask === MONTH || mask === (YEAR | MONTH)) return new PgInterval(iv.months, 0, 0n);
  if (mask === DAY) return new PgInterval(iv.months, iv.days, 0n);
  const unit = mask & SECOND ? 1n : mask & MINUTE ? 60_000_000n : mask & HOUR ? 3_600_000_000n : 0n;
  if (unit === 0n || unit === 1n) return iv;
  return new PgInterval(iv.months, iv.days, (iv.micros / unit) * unit);
}
