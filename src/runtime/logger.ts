import { TidemarkError } from '../errors/tidemark-error.ts';
import { maskSecrets } from '../errors/mask.ts';

/**
 * Structured logging. One JSON object per line when the stream is not a terminal (for log
 * shippers), a short readable line on a terminal. Every string that reaches a line — message and
 * fields — passes through `maskSecrets`, so a URI with a password can be logged as is.
 *
 * Level policy:
 *   error  the changefeed stopped, or an operation failed and will not be retried.
 *   warn   something is wrong but handled: a retry with back-off, lag over its alarm, a slot
 *          that is not advancing. Never more than a few per second.
 *   info   lifecycle only: start, snapshot begun/finished, streaming, stop; one line per event,
 *          nothing per row, per transaction or per epoch.
 *   debug  per epoch and per batch (counts, positions, timings); never row contents at any
 *          level, since rows may hold personal data.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  readonly level: LogLevel;
  /** Writes one line if `level` is enabled; callable at any time, never throws. */
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger writing to the same place whose lines all carry `fields` (e.g. `{ changefeed }`). */
  child(fields: LogFields): Logger;
}

/** Where lines go: a Node stream or anything with `write`. `isTTY` picks the pretty format. */
export interface LogStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface LoggerOptions {
  /** Defaults to `TIDEMARK_LOG_LEVEL`, else `info`. */
  level?: LogLevel;
  /** Defaults to `pretty` on a TTY, else `json`. */
  format?: 'json' | 'pretty';
  /** Defaults to `process.stderr`. */
  stream?: LogStream;
  /** Fields bound to every line. */
  fields?: LogFields;
  /** Clock, for tests. */
  now?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function parseLogLevel(text: string | undefined): LogLevel | undefined {
  const t = text?.trim().toLowerCase();
  return t === 'debug' || t === 'info' || t === 'warn' || t === 'error' ? t : undefined;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const sink: Sink = {
    level: options.level ?? parseLogLevel(process.env.TIDEMARK_LOG_LEVEL) ?? 'info',
    format: options.format ?? (stream.isTTY ? 'pretty' : 'json'),
    stream,
    now: options.now ?? (() => new Date()),
  };
  return new StructuredLogger(sink, options.fields ?? {});
}

/** A logger that drops everything (tests, library use without logging). */
export const silentLogger: Logger = {
  level: 'error',
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

interface Sink {
  readonly level: LogLevel;
  readonly format: 'json' | 'pretty';
  readonly stream: LogStream;
  readonly now: () => Date;
}

class StructuredLogger implements Logger {
  constructor(
    private readonly sink: Sink,
    private readonly bound: LogFields,
  ) {}

  get level(): LogLevel {
    return this.sink.level;
  }

  debug(message: string, fields?: LogFields): void {
    this.write('debug', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.write('info', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.write('warn', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.write('error', message, fields);
  }

  child(fields: LogFields): Logger {
    return new StructuredLogger(this.sink, { ...this.bound, ...fields });
  }

  private write(level: LogLevel, message: string, fields: LogFields | undefined): void {
    if (RANK[level] < RANK[this.sink.level]) return;
    const all: Record<string, unknown> = {};
    for (const [k, v] of Object.entries({ ...this.bound, ...fields })) {
      if (v !== undefined) all[k] = toLoggable(v, 0);
    }
    const time = this.sink.now();
    const msg = maskSecrets(message);
    const line =
      this.sink.format === 'json'
        ? JSON.stringify({ time: time.toISOString(), level, msg, ...all })
        : prettyLine(time, level, msg, all);
    try {
      this.sink.stream.write(line + '\n');
    } catch {
      // A closed stderr must not take the pipeline down with it.
    }
  }
}

/** Masks strings, serializes errors with their code and hint, keeps the rest JSON-safe. */
export function toLoggable(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return maskSecrets(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? String(value) : value;
  }
  if (value instanceof Error) return serializeError(value, depth);
  if (value instanceof Date) return value.toISOString();
  if (depth >= 4) return '[…]';
  if (Array.isArray(value)) return value.map((v) => toLoggable(v, depth + 1));
  const text = (value as { toString?: () => string }).toString?.();
  if (text !== undefined && text !== '[object Object]' && Object.getPrototypeOf(value) !== Object.prototype) {
    return maskSecrets(text); // value objects such as positions print their canonical form
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = toLoggable(v, depth + 1);
  return out;
}

function serializeError(err: Error, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> =
    err instanceof TidemarkError
      ? { ...err.toJSON() }
      : { name: err.name, message: maskSecrets(err.message), ...pgFields(err) };
  if (err.cause !== undefined && depth < 3) out.cause = toLoggable(err.cause, depth + 1);
  return out;
}

function pgFields(err: Error): Record<string, string> {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? { code } : {};
}

const COLOR: Record<LogLevel, string> = {
  debug: '\x1b[2m',
  info: '\x1b[36m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
};

function prettyLine(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const clock = time.toISOString().slice(11, 23);
  const { changefeed, error, ...rest } = fields;
  const feed = typeof changefeed === 'string' ? ` [${changefeed}]` : '';
  const kv = Object.entries(rest)
    .map(([k, v]) => ` ${k}=${typeof v === 'string' && !/\s|"/.test(v) ? v : JSON.stringify(v)}`)
    .join('');
  const tag = `${COLOR[level]}${level.toUpperCase().padEnd(5)}\x1b[0m`;
  let line = `\x1b[2m${clock}\x1b[0m ${tag}${feed} ${msg}${kv}`;
  if (error && typeof error === 'object') {
    const e = error as { message?: unknown; hint?: unknown };
    line += `\n    ${String(e.message)}${typeof e.hint === 'string' ? `\n    hint: ${e.hint}` : ''}`;
  }
  return line;
}
