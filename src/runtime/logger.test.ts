import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { createLogger } from './logger.ts';

class Pos {
  toString(): string {
    return '0/16B3';
  }
}

const at = new Date('2025-01-02T03:04:05.678Z');

/** Removes SGR colour sequences (ESC [ … m). */
function stripAnsi(text: string): string {
  return text
    .split('\x1b[')
    .map((part, i) => (i === 0 ? part : part.replace(/^[0-9;]*m/, '')))
    .join('');
}

function capture(isTTY = false) {
  const lines: string[] = [];
  return { lines, stream: { isTTY, write: (t: string) => lines.push(t) } };
}

describe('logger', () => {
  it('writes one JSON object per line with bound fields', () => {
    const { lines, stream } = capture();
    const log = createLogger({ stream, level: 'info', now: () => at }).child({ changefeed: 'orders' });
    log.info('snapshot finished', { rows: 10, position: new Pos() });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toEqual({
      time: '2025-01-02T03:04:05.678Z',
      level: 'info',
      msg: 'snapshot finished',
      changefeed: 'orders',
      rows: 10,
      position: '0/16B3',
    });
  });

  it('filters by level, from TIDEMARK_LOG_LEVEL by default', () => {
    const { lines, stream } = capture();
    const prev = process.env.TIDEMARK_LOG_LEVEL;
    process.env.TIDEMARK_LOG_LEVEL = 'warn';
    try {
      const log = createLogger({ stream });
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      expect(log.level).toBe('warn');
    } finally {
      if (prev === undefined) delete process.env.TIDEMARK_LOG_LEVEL;
      else process.env.TIDEMARK_LOG_LEVEL = prev;
    }
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['w', 'e']);
  });

  it('masks secrets in the message and in every string field', () => {
    const { lines, stream } = capture();
    const log = createLogger({ stream, level: 'debug' });
    log.info('connecting to postgres://app:hunter2@db/app', {
      uri: 'postgres://u:hunter2@h/d',
      nested: { dsn: 'password=hunter2' },
    });
    expect(lines[0]).not.toContain('hunter2');
    expect(lines[0]).toContain('postgres://app:***@db/app');
  });

  it('serializes errors with code and hint', () => {
    const { lines, stream } = capture();
    const log = createLogger({ stream, level: 'debug' });
    const err = new TidemarkError('SOURCE_WAL_LEVEL', {
      detail: 'source postgres://u:pw@h/d',
      cause: new Error('wal_level is replica'),
    });
    log.error('changefeed failed', { error: err });
    const obj = JSON.parse(lines[0] ?? '');
    expect(obj.error.code).toBe('SOURCE_WAL_LEVEL');
    expect(obj.error.hint).toContain('wal_level = logical');
    expect(obj.error.cause).toEqual({ name: 'Error', message: 'wal_level is replica' });
    expect(lines[0]).not.toContain(':pw@');
  });

  it('writes readable lines on a terminal (pino-pretty), the changefeed first, an error with its hint', () => {
    const { lines, stream } = capture(true);
    const log = createLogger({ stream, level: 'info', now: () => at }).child({ changefeed: 'orders' });
    log.warn('slot not advancing', { lagBytes: 1024, slot: 'tidemark_orders' });
    const plain = stripAnsi(lines[0] ?? '');
    expect(plain).toMatch(
      /^\[\d\d:\d\d:05\.678\] WARN: \[orders\] slot not advancing \{"lagBytes":1024,"slot":"tidemark_orders"\}\n$/,
    );
    log.error('changefeed failed', { error: new TidemarkError('SOURCE_WAL_LEVEL', { detail: 'x' }) });
    const failed = stripAnsi(lines[1] ?? '').split('\n');
    expect(failed[0]).toMatch(/ERROR: \[orders\] changefeed failed$/);
    expect(failed[1]).toContain('SOURCE_WAL_LEVEL');
    expect(failed[2]).toMatch(/^ {4}hint: .*wal_level = logical/);
  });

  it('JSON when piped, pretty when asked; TIDEMARK_LOG_FORMAT overrides the terminal guess', () => {
    const tty = capture(true);
    createLogger({ stream: tty.stream, format: 'json' }).info('x');
    expect(JSON.parse(tty.lines[0] ?? '').msg).toBe('x');
    const prev = process.env.TIDEMARK_LOG_FORMAT;
    process.env.TIDEMARK_LOG_FORMAT = 'json';
    try {
      const t2 = capture(true);
      createLogger({ stream: t2.stream }).info('y');
      expect(JSON.parse(t2.lines[0] ?? '').msg).toBe('y');
    } finally {
      if (prev === undefined) delete process.env.TIDEMARK_LOG_FORMAT;
      else process.env.TIDEMARK_LOG_FORMAT = prev;
    }
    const piped = capture(false);
    createLogger({ stream: piped.stream, format: 'pretty' }).info('z');
    expect(piped.lines[0]).toMatch(/INFO: z\n$/);
  });

  it('puts the changefeed id on every line of its logger', () => {
    const { lines, stream } = capture();
    const log = createLogger({ stream, level: 'debug' }).child({ changefeed: 'a' });
    log.debug('one');
    log.child({ component: 'sink' }).info('two');
    log.error('three', { error: new Error('boom') });
    expect(lines.map((l) => JSON.parse(l).changefeed)).toEqual(['a', 'a', 'a']);
  });
});
