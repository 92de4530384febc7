/**
 * PostgreSQL's date, timestamp[tz] and interval, held exactly as PostgreSQL stores them and
 * printed exactly as it prints them with `DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres`
 * (the source session settings). Field extraction and truncation live in `temporal-fields.ts`.
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import {
  POSTGRES_EPOCH_JDATE,
  UNIX_EPOCH_JDATE,
  USECS_PER_DAY,
  date2j,
  displayYear,
  fractionText,
  j2date,
  pad2,
  type YearMonthDay,
} from './calendar.ts';

/** Milliseconds a JS Date can hold either side of 1970 (ECMA-262 §21.4.1.22). */
const JS_DATE_LIMIT_MS = 8.64e15;
const UNIX_EPOCH_DAYS = UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE;
const UNIX_EPOCH_USECS = BigInt(UNIX_EPOCH_DAYS) * USECS_PER_DAY;

function invalid(text: string, type: string): TidemarkError {
  return new TidemarkError('VALUE_INVALID_TEXT', { detail: `"${text}" is not a ${type} in ISO style` });
}

function checkYmd(text: string, type: string, ymd: YearMonthDay): void {
  const { year, month, day } = ymd;
  if (month < 1 || month > 12 || day < 1 || j2date(date2j(year, month, day)).day !== day) {
    throw invalid(text, type);
  }
}

/** `YYYY-MM-DD` (4+ digit year) with an optional ` BC`, as the astronomical year. */
function parseYmd(text: string, type: string, m: RegExpExecArray, bc: boolean): YearMonthDay {
  const y = Number(m[1]);
  const ymd = { year: bc ? 1 - y : y, month: Number(m[2]), day: Number(m[3]) };
  if (y === 0) throw invalid(text, type);
  checkYmd(text, type, ymd);
  return ymd;
}

function ymdText(ymd: YearMonthDay): { text: string; bc: boolean } {
  const y = displayYear(ymd.year);
  return { text: `${y.text}-${pad2(ymd.month)}-${pad2(ymd.day)}`, bc: y.bc };
}

/** ISO 8601 year for JSON and sinks: `2024`, or the expanded `+010000` / `-000043` form. */
function isoYear(year: number): string {
  if (year >= 0 && year <= 9999) return String(year).padStart(4, '0');
  return (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(6, '0');
}

// Biases that make sort keys non-negative over PostgreSQL's whole ranges (dates reach ±2^31
// days, timestamps ±2^63 µs, interval spans ±(2^31 × 30 days + 2^31 days + 2^63 µs)).
const DATE_SORT_BIAS = 2_200_000_000;
const MICROS_SORT_BIAS = 10n ** 19n;
const SPAN_SORT_BIAS = 10n ** 22n;

const DATE_RE = /^(\d{4,})-(\d\d)-(\d\d)$/;

/** A `date`: days since 2000-01-01, or ±Infinity for `infinity` / `-infinity`. */
export class PgDate {
  private constructor(readonly days: number) {}

  static readonly INFINITY = new PgDate(Infinity);
  static readonly NEGATIVE_INFINITY = new PgDate(-Infinity);

  static fromDays(days: number): PgDate {
    if (days === Infinity) return PgDate.INFINITY;
    if (days === -Infinity) return PgDate.NEGATIVE_INFINITY;
    if (!Number.isSafeInteger(days)) throw new RangeError(`date day count must be an integer: ${days}`);
    return new PgDate(days);
  }

  /** From an astronomical year (0 = 1 BC), month 1–12 and day. */
  static fromYmd(ymd: YearMonthDay): PgDate {
    return new PgDate(date2j(ymd.year, ymd.month, ymd.day) - POSTGRES_EPOCH_JDATE);
  }

  /** Parses `date_out`'s ISO form: `2024-01-02`, `0044-03-15 BC`, `infinity`, `-infinity`. */
  static parse(text: string): PgDate {
    if (text === 'infinity') return PgDate.INFINITY;
    if (text === '-infinity') return PgDate.NEGATIVE_INFINITY;
    const bc = text.endsWith(' BC');
    const m = DATE_RE.exec(bc ? text.slice(0, -3) : text);
    if (!m) throw invalid(text, 'date');
    return PgDate.fromYmd(parseYmd(text, 'date', m, bc));
  }

  isFinite(): boolean {
    return Number.isFinite(this.days);
  }

  /** Calendar fields; the year is astronomical (0 = 1 BC). Only for finite dates. */
  toYmd(): YearMonthDay {
    return j2date(this.days + POSTGRES_EPOCH_JDATE);
  }

  toString(): string {
    if (this.days === Infinity) return 'infinity';
    if (this.days === -Infinity) return '-infinity';
    const t = ymdText(this.toYmd());
    return t.bc ? t.text + ' BC' : t.text;
  }

  /** `YYYY-MM-DD` in ISO 8601 (expanded years outside 0000–9999); `infinity` / `-infinity` as is. */
  toISOString(): string {
    if (!this.isFinite()) return this.toString();
    const { year, month, day } = this.toYmd();
    return `${isoYear(year)}-${pad2(month)}-${pad2(day)}`;
  }

  /** Midnight UTC of this date, or undefined when a JS Date cannot hold it. */
  toDate(): Date | undefined {
    const ms = (this.days - UNIX_EPOCH_DAYS) * 86_400_000;
    return Math.abs(ms) <= JS_DATE_LIMIT_MS ? new Date(ms) : undefined;
  }

  /** Midnight of this date as a timestamp (PostgreSQL's date → timestamp cast, in UTC). */
  toTimestamp(options: { withTimeZone: boolean }): PgTimestamp {
    if (this.days === Infinity) return PgTimestamp.infinity(1, options);
    if (this.days === -Infinity) return PgTimestamp.infinity(-1, options);
    return PgTimestamp.fromMicros(BigInt(this.days) * USECS_PER_DAY, options);
  }

  compare(other: PgDate): number {
    return this.days < other.days ? -1 : this.days > other.days ? 1 : 0;
  }

  /** A string whose plain order is PostgreSQL's date order (-infinity first, infinity last). */
  sortKey(): string {
    if (this.days === -Infinity) return '0';
    if (this.days === Infinity) return '2';
    return '1' + String(this.days + DATE_SORT_BIAS).padStart(10, '0');
  }

  equals(other: PgDate): boolean {
    return this.days === other.days;
  }

  toJSON(): string {
    return this.toString();
  }
}

const TIMESTAMP_RE =
  /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|Z)?$/;

export interface TimestampParts extends YearMonthDay {
  hour: number;
  minute: number;
  second: number;
  /** Microseconds within the second, 0–999999. */
  usec: number;
}

/**
 * A `timestamp` or `timestamptz`: microseconds since 2000-01-01 00:00 (UTC for timestamptz), or
 * ±infinity (`special`, with `micros` 0).
 */
export class PgTimestamp {
  private constructor(
    readonly micros: bigint,
    readonly withTimeZone: boolean,
    readonly special: 'infinity' | '-infinity' | undefined,
  ) {}

  static fromMicros(micros: bigint, options: { withTimeZone: boolean }): PgTimestamp {
    return new PgTimestamp(micros, options.withTimeZone, undefined);
  }

  static infinity(sign: 1 | -1, options: { withTimeZone: boolean }): PgTimestamp {
    return new PgTimestamp(0n, options.withTimeZone, sign > 0 ? 'infinity' : '-infinity');
  }

  /** From microseconds since 1970-01-01 (UTC), e.g. a sink's epoch column. */
  static fromUnixMicros(unixMicros: bigint, options: { withTimeZone: boolean }): PgTimestamp {
    return PgTimestamp.fromMicros(unixMicros + UNIX_EPOCH_USECS, options);
  }

  /**
   * Parses the ISO form `timestamp_out` / `timestamptz_out` print: `2024-01-02 03:04:05.123456`,
   * `…+00` for timestamptz (any `±HH[:MM[:SS]]` offset is applied), ` BC`, `infinity`.
   */
  static parse(text: string, options: { withTimeZone: boolean }): PgTimestamp {
    const type = options.withTimeZone ? 'timestamptz' : 'timestamp';
    if (text === 'infinity') return PgTimestamp.infinity(1, options);
    if (text === '-infinity') return PgTimestamp.infinity(-1, options);
    const bc = text.endsWith(' BC');
    const m = TIMESTAMP_RE.exec(bc ? text.slice(0, -3) : text);
    if (!m) throw invalid(text, type);
    const ymd = parseYmd(text, type, m, bc);
    const hour = Number(m[4]);
    const minute = Number(m[5]);
    const second = Number(m[6]);
    if (hour > 24 || minute > 59 || second > 60) throw invalid(text, type);
    const usec = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0'));
    let offsetSec = 0;
    if (options.withTimeZone && m[8] !== undefined) {
      offsetSec = Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0);
      if (m[8] === '-') offsetSec = -offsetSec;
    }
    const days = date2j(ymd.year, ymd.month, ymd.day) - POSTGRES_EPOCH_JDATE;
    const secs = hour * 3600 + minute * 60 + second - offsetSec;
    return PgTimestamp.fromMicros(BigInt(days) * USECS_PER_DAY + BigInt(secs * 1_000_000 + usec), options);
  }

  isFinite(): boolean {
    return this.special === undefined;
  }

  /** Calendar and clock fields (UTC for timestamptz). Only for finite timestamps. */
  parts(): TimestampParts {
    let days = this.micros / USECS_PER_DAY;
    let rem = this.micros - days * USECS_PER_DAY;
    if (rem < 0n) {
      days -= 1n;
      rem += USECS_PER_DAY;
    }
    const t = Number(rem);
    const secs = Math.floor(t / 1_000_000);
    return {
      ...j2date(Number(days) + POSTGRES_EPOCH_JDATE),
      hour: Math.floor(secs / 3600),
      minute: Math.floor(secs / 60) % 60,
      second: secs % 60,
      usec: t % 1_000_000,
    };
  }

  toString(): string {
    if (this.special) return this.special;
    const p = this.parts();
    const d = ymdText(p);
    const time = `${pad2(p.hour)}:${pad2(p.minute)}:${pad2(p.second)}${fractionText(p.usec)}`;
    return `${d.text} ${time}${this.withTimeZone ? '+00' : ''}${d.bc ? ' BC' : ''}`;
  }

  /** ISO 8601 (`T`, expanded years, `Z` for timestamptz); `infinity` / `-infinity` as is. */
  toISOString(): string {
    if (this.special) return this.special;
    const p = this.parts();
    const time = `${pad2(p.hour)}:${pad2(p.minute)}:${pad2(p.second)}${fractionText(p.usec)}`;
    return `${isoYear(p.year)}-${pad2(p.month)}-${pad2(p.day)}T${time}${this.withTimeZone ? 'Z' : ''}`;
  }

  /** Microseconds since 1970-01-01 00:00 UTC. Only for finite timestamps. */
  unixMicros(): bigint {
    return this.micros - UNIX_EPOCH_USECS;
  }

  /** The instant as a JS Date (microseconds truncated to milliseconds, floor), or undefined. */
  toDate(): Date | undefined {
    if (this.special) return undefined;
    const us = this.unixMicros();
    let ms = us / 1000n;
    if (us < 0n && ms * 1000n !== us) ms -= 1n;
    const n = Number(ms);
    return Math.abs(n) <= JS_DATE_LIMIT_MS ? new Date(n) : undefined;
  }

  /** A string whose plain order is PostgreSQL's timestamp order (-infinity first, infinity last). */
  sortKey(): string {
    if (this.special === '-infinity') return '0';
    if (this.special === 'infinity') return '2';
    return '1' + (this.micros + MICROS_SORT_BIAS).toString().padStart(20, '0');
  }

  compare(other: PgTimestamp): number {
    const a = rank(this);
    const b = rank(other);
    if (a !== b) return a - b;
    return this.micros < other.micros ? -1 : this.micros > other.micros ? 1 : 0;
  }

  equals(other: PgTimestamp): boolean {
    return this.compare(other) === 0;
  }

  toJSON(): string {
    return this.toString();
  }
}

function rank(t: PgTimestamp): number {
  return t.special === 'infinity' ? 1 : t.special === '-infinity' ? -1 : 0;
}

const USECS_PER_HOUR = 3_600_000_000n;
const INTERVAL_UNIT_RE = /^([+-]?\d+) (years?|mons?|days?)$/;
const INTERVAL_TIME_RE = /^([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/;

/**
 * An `interval`: months, days and microseconds, kept apart as PostgreSQL keeps them (a month is
 * not a fixed number of days). Comparison and equality are PostgreSQL's: the fields are summed
 * with 1 month = 30 days and 1 day = 24 hours, so `1 mon` equals `30 days`.
 */
export class PgInterval {
  constructor(
    readonly months: number,
    readonly days: number,
    readonly micros: bigint,
  ) {}

  /** Parses `interval_out`'s `IntervalStyle=postgres` form, e.g. `1 year -2 mons +3 days -04:05:06.5`. */
  static parse(text: string): PgInterval {
    let months = 0;
    let days = 0;
    let micros = 0n;
    const words = text.split(' ');
    let i = 0;
    for (; i + 1 < words.length; i += 2) {
      const m = INTERVAL_UNIT_RE.exec(`${words[i]} ${words[i + 1]}`);
      if (!m) break;
      const n = Number(m[1]);
      const unit = m[2]!;
      if (unit.startsWith('year')) months += n * 12;
      else if (unit.startsWith('mon')) months += n;
      else days += n;
    }
    if (i < words.length) {
      const t = i + 1 === words.length ? INTERVAL_TIME_RE.exec(words[i]!) : null;
      if (!t) throw invalid(text, 'interval');
      const secs = BigInt(t[2]!) * 3600n + BigInt(Number(t[3]) * 60 + Number(t[4]));
      micros = secs * 1_000_000n + BigInt(t[5] === undefined ? 0 : Number(t[5].padEnd(6, '0')));
      if (t[1] === '-') micros = -micros;
    } else if (i === 0) {
      throw invalid(text, 'interval');
    }
    return new PgInterval(months, days, micros);
  }

  /** `interval_out` with `IntervalStyle=postgres`. */
  toString(): string {
    let out = '';
    let isZero = true;
    let isBefore = false;
    const part = (value: number, unit: string) => {
      if (value === 0) return;
      out += `${isZero ? '' : ' '}${isBefore && value > 0 ? '+' : ''}${value} ${unit}${value !== 1 ? 's' : ''}`;
      isBefore = value < 0;
      isZero = false;
    };
    part(Math.trunc(this.months / 12), 'year');
    part(this.months % 12, 'mon');
    part(this.days, 'day');
    if (isZero || this.micros !== 0n) {
      const minus = this.micros < 0n;
      const abs = minus ? -this.micros : this.micros;
      const hours = abs / USECS_PER_HOUR;
      const rest = Number(abs - hours * USECS_PER_HOUR);
      const secs = Math.floor(rest / 1_000_000);
      const hh = hours < 10n ? '0' + hours : String(hours);
      out += `${isZero ? '' : ' '}${minus ? '-' : isBefore ? '+' : ''}${hh}:${pad2(Math.floor(secs / 60))}:`;
      out += pad2(secs % 60) + fractionText(rest % 1_000_000);
    }
    return out;
  }

  /** ISO 8601 duration as PostgreSQL's `iso_8601` style prints it, e.g. `P1Y2M3DT4H5M6.5S`. */
  toISOString(): string {
    const y = Math.trunc(this.months / 12);
    const mo = this.months % 12;
    const neg = this.micros < 0n;
    const abs = neg ? -this.micros : this.micros;
    const s = neg ? '-' : '';
    const h = abs / USECS_PER_HOUR;
    const rest = Number(abs - h * USECS_PER_HOUR);
    const mi = Math.floor(rest / 60_000_000);
    const us = rest % 60_000_000;
    let out = 'P' + (y ? `${y}Y` : '') + (mo ? `${mo}M` : '') + (this.days ? `${this.days}D` : '');
    if (abs !== 0n) {
      out += 'T' + (h ? `${s}${h}H` : '') + (mi ? `${s}${mi}M` : '');
      if (us) out += `${s}${Math.floor(us / 1_000_000)}${fractionText(us % 1_000_000)}S`;
    }
    return out === 'P' ? 'PT0S' : out;
  }

  /** The total PostgreSQL compares and hashes: (months × 30 + days) days + micros. */
  spanMicros(): bigint {
    return BigInt(this.months * 30 + this.days) * USECS_PER_DAY + this.micros;
  }

  /** A string whose plain order is PostgreSQL's interval order (by `spanMicros`). */
  sortKey(): string {
    return (this.spanMicros() + SPAN_SORT_BIAS).toString().padStart(24, '0');
  }

  compare(other: PgInterval): number {
    const a = this.spanMicros();
    const b = other.spanMicros();
    return a < b ? -1 : a > b ? 1 : 0;
  }

  equals(other: PgInterval): boolean {
    return this.compare(other) === 0;
  }

  toJSON(): string {
    return this.toString();
  }
}
