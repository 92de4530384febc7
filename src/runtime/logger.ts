import pino from 'pino';
import { prettyFactory } from 'pino-pretty';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { maskSecrets } from '../errors/mask.ts';

/**
 * Structured logging on pino: one JSON object per line when the stream is not a terminal (for
 * log shippers), a readable line from pino-pretty on a terminal (`format` or
 * `TIDEMARK_LOG_FORMAT=json|pretty` override either). Lines are written synchronously to the
 * given stream, so a live status block can clear itself first. Every string that reaches a line
 * — message and fields — passes through `maskSecrets`, so a URI with a password can be logged as
 * is; a changefeed's logger is a `child({ changefeed })`, so its id is on every line.
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

export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  /** Defaults to `TIDEMARK_LOG_LEVEL`, else `info`. */
  level?: LogLevel;
  /** Defaults to `TIDEMARK_LOG_FORMAT`, else `pretty` on a TTY, else `json`. */
  format?: LogFormat;
  /** Defaults to `process.stderr`. */
  stream?: LogStream;
  /** Fields bound to every line. */
  fields?: LogFields;
  /** Clock, for tests. */
  now?: () => Date;
}

export function parseLogLevel(text: string | undefined): LogLevel | undefined {
  const t = text?.trim().toLowerCase();
  return t === 'debug' || t === 'info' || t === 'warn' || t === 'error' ? t : undefined;
}

export function parseLogFormat(text: string | undefined): LogFormat | undefined {
  const t = text?.trim().toLowerCase();
  return t === 'json' || t === 'pretty' ? t : undefined;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const level = options.level ?? parseLogLevel(process.env.TIDEMARK_LOG_LEVEL) ?? 'info';
  const format =
    options.format ?? parseLogFormat(process.env.TIDEMARK_LOG_FORMAT) ?? (stream.isTTY ? 'pretty' : 'json');
  const now = options.now ?? (() => new Date());
  const destination = format === 'json' ? jsonDestination(stream) : prettyDestination(stream);
  const root = pino(
    {
      level,
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"time":"${now().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return new PinoLogger(root, level, options.fields ?? {});
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

class PinoLogger implements Logger {
  constructor(
    private readonly pino: pino.Logger,
    readonly level: LogLevel,
    private readonly bound: LogFields,
  ) {}

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
    return new PinoLogger(this.pino, this.level, { ...this.bound, ...fields });
  }

  private write(level: LogLevel, message: string, fields: LogFields | undefined): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const all: Record<string, unknown> = {};
    for (const [k, v] of Object.entries({ ...this.bound, ...fields })) {
      if (v !== undefined) all[k] = toLoggable(v, 0);
    }
    try {
      this.pino[level](all, maskSecrets(message));
    } catch {
      // A closed stderr must not take the pipeline down with it.
    }
  }
}

function jsonDestination(stream: LogStream): { write(line: string): void } {
  return {
    write: (line) => {
      stream.write(line);
    },
  };
}

/**
 * pino-pretty on a terminal: `12:04:05.678 WARN [orders] slot not advancing {"lagBytes":1024}`,
 * an error's message and hint on the lines below.
 */
function prettyDestination(stream: LogStream): { write(line: string): void } {
  const pretty = prettyFactory({
    colorize: stream.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'changefeed,error',
    messageFormat: '{if changefeed}[{changefeed}] {end}{msg}',
    singleLine: true,
  });
  return {
    write: (line) => {
      let text = pretty(line);
      const error = (JSON.parse(line) as { error?: { message?: unknown; hint?: unknown } }).error;
      if (error && typeof error === 'object') {
        const hint = typeof error.hint === 'string' ? `\n    hint: ${error.hint}` : '';
        text = `${text.replace(/\n$/, '')}\n    ${String(error.message)}${hint}\n`;
      }
      stream.write(text);
    },
  };
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
