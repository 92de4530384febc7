/**
 * Proleptic Gregorian calendar arithmetic as PostgreSQL does it (datetime.c `date2j`, `j2date`,
 * `j2day`, `date2isoweek`). Years are astronomical: 0 is 1 BC, -1 is 2 BC. Julian day numbers are
 * valid from 4714-11-24 BC (day 0), PostgreSQL's lower bound for dates and timestamps.
 */

/** Julian day of 2000-01-01, PostgreSQL's epoch for date and timestamp storage. */
export const POSTGRES_EPOCH_JDATE = 2451545;
/** Julian day of 1970-01-01. */
export const UNIX_EPOCH_JDATE = 2440588;
export const USECS_PER_SEC = 1_000_000n;
export const USECS_PER_DAY = 86_400_000_000n;

/** C integer division (truncates toward zero), as the ported formulas expect. */
export function idiv(a: number, b: number): number {
  return Math.trunc(a / b);
}

export function date2j(year: number, month: number, day: number): number {
  let y = year;
  let m = month;
  if (m > 2) {
    m += 1;
    y += 4800;
  } else {
    m += 13;
    y += 4799;
  }
  const century = idiv(y, 100);
  let julian = y * 365 - 32167;
  julian += idiv(y, 4) - century + idiv(century, 4);
  julian += idiv(7834 * m, 256) + day;
  return julian;
}

export interface YearMonthDay {
  /** Astronomical year: 0 is 1 BC. */
  year: number;
  month: number;
  day: number;
}

export function j2date(jd: number): YearMonthDay {
  let julian = jd + 32044;
  let quad = Math.floor(julian / 146097);
  const extra = (julian - quad * 146097) * 4 + 3;
  julian += 60 + quad * 3 + Math.floor(extra / 146097);
  quad = Math.floor(julian / 1461);
  julian -= quad * 1461;
  let y = Math.floor((julian * 4) / 1461);
  julian = (y !== 0 ? (julian + 305) % 365 : (julian + 306) % 366) + 123;
  y += quad * 4;
  const q = Math.floor((julian * 2141) / 65536);
  return { year: y - 4800, month: ((q + 10) % 12) + 1, day: julian - Math.floor((7834 * q) / 256) };
}

/** Day of week of a Julian day: 0 = Sunday. */
export function j2day(jd: number): number {
  const d = (jd + 1) % 7;
  return d < 0 ? d + 7 : d;
}

/** ISO 8601 week number (weeks start on Monday; week 1 holds January 4th). */
export function date2isoweek(year: number, month: number, day: number): number {
  const dayn = date2j(year, month, day);
  let day4 = date2j(year, 1, 4);
  let day0 = j2day(day4 - 1);
  if (dayn < day4 - day0) {
    day4 = date2j(year - 1, 1, 4);
    day0 = j2day(day4 - 1);
  }
  let result = idiv(dayn - (day4 - day0), 7) + 1;
  if (result >= 52) {
    day4 = date2j(year + 1, 1, 4);
    day0 = j2day(day4 - 1);
    if (dayn >= day4 - day0) result = idiv(dayn - (day4 - day0), 7) + 1;
  }
  return result;
}

/** Year as PostgreSQL prints it: `0044` for 44 AD, with `bc` set for years ≤ 0. */
export function displayYear(year: number): { text: string; bc: boolean } {
  const bc = year <= 0;
  return { text: String(bc ? 1 - year : year).padStart(4, '0'), bc };
}

/** Two-digit zero padding for month, day, hour, minute, second. */
export function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** `.ffffff` with trailing zeros removed, or '' when the fraction is zero (AppendSeconds). */
export function fractionText(usec: number): string {
  if (usec === 0) return '';
  return ('.' + String(usec).padStart(6, '0')).replace(/0+$/, '');
}
