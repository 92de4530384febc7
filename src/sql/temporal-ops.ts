/**
 * Temporal support for views: casts between text, date, timestamp, timestamptz and interval,
 * and the functions `date_trunc`, `extract` (numeric, PostgreSQL 14+) and `date_part` (double
 * precision). Fills the hooks of casts.ts and functions.ts at module load (imported by
 * compile-expr.ts). The session is taken to run with `TimeZone=UTC`, as the source's does, so
 * timestamptz ⇄ timestamp casts keep the instant's digits.
 */
import type { Node } from 'libpg-query';
import { USECS_PER_DAY } from '../decode/calendar.ts';
import { dateTrunc, extract, TEMPORAL_FIELDS, type TemporalField } from '../decode/temporal-fields.ts';
import { PgDate, PgInterval, PgTimestamp } from '../decode/temporal.ts';
import type { Value } from '../decode/value.ts';
import { locationOf } from './ast.ts';
import { temporalHooks } from './casts.ts';
import { coerce } from './coerce.ts';
import { EXTRA_FUNCTIONS, type FunctionCall } from './functions.ts';
import type { Compiled } from './scope.ts';
import { sqlType, type SqlType } from './sql-type.ts';
import { SqlRuntimeError } from './value-ops.ts';
import { invalid, unsupported } from './view-error.ts';

const DATE_IN = /^(\d{4,})-(\d{1,2})-(\d{1,2})( BC)?$/;
const TIMESTAMP_IN =
  /^(\d{4,})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d\d)(?::(\d\d)(?:\.(\d{1,6})\d*)?)?)?(?:\s*(Z|[+-]\d\d(?::?\d\d)?))?$/i;

/** The input functions for the ISO forms a view literal uses (`'2024-01-02'`, `'2024-01-02 03:04'`). */
function parseTemporal(to: SqlType, text: string): Value {
  const s = text.trim().toLowerCase();
  const bad = () => new SqlRuntimeError(`invalid input syntax for type ${to.typeName}: "${text}"`);
  if (to.kind === 'interval') return parseInterval(s, bad);
  if (to.kind === 'date') {
    if (s === 'infinity' || s === '-infinity') return PgDate.parse(s);
    const m = DATE_IN.exec(s);
    if (!m) throw bad();
    return wrap(
      () => PgDate.parse(`${m[1]}-${m[2]!.padStart(2, '0')}-${m[3]!.padStart(2, '0')}${m[4] ?? ''}`),
      bad,
    );
  }
  const withTimeZone = to.kind === 'timestamptz';
  if (s === 'infinity' || s === '-infinity') return PgTimestamp.parse(s, { withTimeZone });
  const m = TIMESTAMP_IN.exec(s);
  if (!m) throw bad();
  const [, y, mo, d, h = '0', mi = '00', sec = '00', frac, zone] = m;
  const zoneText = withTimeZone && zone !== undefined && zone !== 'z' ? zone : withTimeZone ? '+00' : '';
  const iso =
    `${y}-${mo!.padStart(2, '0')}-${d!.padStart(2, '0')} ${h.padStart(2, '0')}:${mi}:${sec}` +
    `${frac === undefined ? '' : '.' + frac}${zoneText}`;
  return wrap(() => PgTimestamp.parse(iso, { withTimeZone }), bad);
}

function wrap<T>(f: () => T, bad: () => Error): T {
  try {
    return f();
  } catch {
    throw bad();
  }
}

const INTERVAL_UNITS: Record<string, [field: 'months' | 'days' | 'micros', factor: number]> = {
  year: ['months', 12],
  mon: ['months', 1],
  month: ['months', 1],
  week: ['days', 7],
  day: ['days', 1],
  hour: ['micros', 3_600_000_000],
  min: ['micros', 60_000_000],
  minute: ['micros', 60_000_000],
  sec: ['micros', 1_000_000],
  second: ['micros', 1_000_000],
};

/** `1 year 2 mons`, `3 days 04:05:06`, `-2 hours`, `90 minutes` (integers per unit). */
function parseInterval(s: string, bad: () => Error): PgInterval {
  try {
    return PgInterval.parse(s);
  } catch {
    // Not interval_out's form: read unit by unit below.
  }
  const words = s.replace(/^@\s*/, '').split(/\s+/);
  let months = 0;
  let days = 0;
  let micros = 0n;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const clock = /^([+-])?(\d+):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?$/.exec(w);
    if (clock) {
      const us =
        (BigInt(clock[2]!) * 3600n + BigInt(clock[3]!) * 60n + BigInt(clock[4] ?? 0)) * 1_000_000n +
        BigInt((clock[5] ?? '').padEnd(6, '0') || '0');
      micros += clock[1] === '-' ? -us : us;
      continue;
    }
    const unit = INTERVAL_UNITS[(words[i + 1] ?? '').replace(/s$/, '')];
    if (!/^[+-]?\d+$/.test(w) || unit === undefined) throw bad();
    const n = Number(w) * unit[1];
    if (unit[0] === 'months') months += n;
    else if (unit[0] === 'days') days += n;
    else micros += BigInt(n);
    i++;
  }
  return new PgInterval(months, days, micros);
}

function castTemporal(from: SqlType, to: SqlType): ((v: Value) => Value) | undefined {
  const f = from.kind;
  const t = to.kind;
  if (f === 'date' && (t === 'timestamp' || t === 'timestamptz'))
    return (v) => (v as PgDate).toTimestamp({ withTimeZone: t === 'timestamptz' });
  if ((f === 'timestamp' || f === 'timestamptz') && (t === 'timestamp' || t === 'timestamptz')) {
    return (v) => {
      const ts = v as PgTimestamp;
      const withTimeZone = t === 'timestamptz';
      if (ts.special) return PgTimestamp.infinity(ts.special === 'infinity' ? 1 : -1, { withTimeZone });
      return PgTimestamp.fromMicros(ts.micros, { withTimeZone });
    };
  }
  if ((f === 'timestamp' || f === 'timestamptz') && t === 'date') {
    return (v) => {
      const ts = v as PgTimestamp;
      if (ts.special) return ts.special === 'infinity' ? PgDate.INFINITY : PgDate.NEGATIVE_INFINITY;
      let days = ts.micros / USECS_PER_DAY;
      if (ts.micros < 0n && days * USECS_PER_DAY !== ts.micros) days -= 1n;
      return PgDate.fromDays(Number(days));
    };
  }
  return undefined;
}

const FIELD_ALIASES: Record<string, TemporalField> = {
  us: 'microseconds',
  usec: 'microseconds',
  usecs: 'microseconds',
  microsecond: 'microseconds',
  ms: 'milliseconds',
  msec: 'milliseconds',
  msecs: 'milliseconds',
  millisecond: 'milliseconds',
  seconds: 'second',
  sec: 'second',
  secs: 'second',
  minutes: 'minute',
  min: 'minute',
  mins: 'minute',
  hours: 'hour',
  days: 'day',
  weeks: 'week',
  months: 'month',
  mon: 'month',
  mons: 'month',
  years: 'year',
  decades: 'decade',
  centuries: 'century',
};

/** The field named by a constant first argument, as PostgreSQL reads it (case-insensitive, plurals). */
function fieldOf(call: FunctionCall): TemporalField {
  const c = call.args[0];
  const raw = c?.constant?.value;
  if (c === undefined || typeof raw !== 'string' || (c.type.kind !== 'unknown' && c.type.kind !== 'text')) {
    throw unsupported(
      call.ctx.view,
      call.location,
      `${call.name}() with a field that is not a constant string`,
      "Name the field as a literal, e.g. date_trunc('month', ts).",
    );
  }
  const name = raw.trim().toLowerCase();
  const field = (TEMPORAL_FIELDS as readonly string[]).includes(name)
    ? (name as TemporalField)
    : FIELD_ALIASES[name];
  if (field === undefined) {
    throw invalid(
      call.ctx.view,
      locationOf(call.argNodes[0]),
      `unit "${raw}" not recognized for ${call.name}`,
    );
  }
  return field;
}

/** The temporal argument, with unknown literals read as timestamptz (PostgreSQL's preferred type). */
function temporalArg(call: FunctionCall, allowed: readonly SqlType['kind'][]): Compiled {
  const c = call.args[1];
  if (call.args.length !== 2 || c === undefined) throw noSuch(call);
  const kind = c.type.kind === 'unknown' ? 'timestamptz' : c.type.kind;
  if (!allowed.includes(kind)) throw noSuch(call);
  return coerce(c, sqlType(kind), {
    ctx: call.ctx,
    location: locationOf(call.argNodes[1] as Node),
    explicit: false,
  });
}

function noSuch(call: FunctionCall): Error {
  const types = call.args.map((a) => (a.type.kind === 'unknown' ? 'unknown' : a.type.typeName)).join(', ');
  return invalid(call.ctx.view, call.location, `function ${call.name}(${types}) does not exist`);
}

function strict1(type: SqlType, arg: Compiled, f: (v: Value) => Value): Compiled {
  const g = arg.fn;
  return {
    type,
    fn: (r) => {
      const v = g(r);
      return v === null ? null : f(v);
    },
  };
}

function runtime<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new SqlRuntimeError((err as Error).message);
  }
}

EXTRA_FUNCTIONS['date_trunc'] = (call) => {
  const field = fieldOf(call);
  if (field === 'dow' || field === 'doy' || field === 'epoch') {
    throw invalid(call.ctx.view, call.location, `unit "${field}" not supported for date_trunc`);
  }
  // date_trunc(text, date) resolves to the timestamptz variant, as in PostgreSQL.
  const arg = temporalArg(call, ['date', 'timestamp', 'timestamptz']);
  const kind = arg.type.kind === 'timestamp' ? 'timestamp' : 'timestamptz';
  return strict1(sqlType(kind), arg, (v) => runtime(() => dateTrunc(field, v as PgTimestamp | PgDate)));
};

EXTRA_FUNCTIONS['extract'] = (call) => {
  const field = fieldOf(call);
  const arg = temporalArg(call, ['date', 'timestamp', 'timestamptz', 'interval']);
  if (
    arg.type.kind === 'date' &&
    ['microseconds', 'milliseconds', 'second', 'minute', 'hour'].includes(field)
  ) {
    throw invalid(call.ctx.view, call.location, `unit "${field}" not supported for type date`);
  }
  return strict1(sqlType('numeric'), arg, (v) =>
    runtime(() => extract(field, v as PgDate | PgTimestamp | PgInterval)),
  );
};

EXTRA_FUNCTIONS['date_part'] = (call) => {
  const field = fieldOf(call);
  const arg = temporalArg(call, ['date', 'timestamp', 'timestamptz', 'interval']);
  // date_part(text, date) is `date_part($1, $2::timestamp)` in PostgreSQL.
  const toTs = arg.type.kind === 'date';
  return strict1(sqlType('float8'), arg, (v) =>
    runtime(() => {
      const x = toTs ? (v as PgDate).toTimestamp({ withTimeZone: false }) : (v as PgTimestamp | PgInterval);
      return extract(field, x)?.toNumber() ?? null;
    }),
  );
};

temporalHooks.parse = parseTemporal;
temporalHooks.cast = castTemporal;
