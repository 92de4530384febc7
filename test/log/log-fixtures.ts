/**
 * Shared helpers for change-log tests: a temp log directory, a log on PostgreSQL positions
 * (the log must not care which), tables, transactions, and reading N messages.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import type { ChangeMessage, RowChange } from '../../src/core/change.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { ChangeLog, type ChangeLogOptions } from '../../src/log/change-log.ts';
import { Lsn, LSN_CODEC } from '../../src/source/postgres/lsn.ts';

export { table } from './log-table.ts';

export type Change = RowChange;
export type Message = ChangeMessage<Lsn>;

export function tempLogDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-log-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'log');
}

/** The position `n` (an LSN, so `at(0x200)` prints `0/200`). */
export const at = (n: number): Lsn => Lsn.fromBigInt(BigInt(n));

/** Opens a log on LSN positions, closed when the test finishes. */
export function openLog(
  options: Partial<Omit<ChangeLogOptions<Lsn>, 'codec'>> & { path: string },
): ChangeLog<Lsn> {
  const log = ChangeLog.open({ codec: LSN_CODEC, ...options });
  onTestFinished(() => log.close());
  return log;
}

/**
 * Appends one transaction committed at position `pos` (begun at time `pos`, committed at time
 * `pos + 0.5`) with `changes`; returns the messages a reader of every table should see.
 */
export function appendTxn(log: ChangeLog<Lsn>, pos: number, changes: readonly Change[]): Message[] {
  log.begin(pos);
  for (const c of changes) log.append(c);
  log.commit(at(pos), pos + 0.5);
  return [
    { tag: 'begin', commitTimeMs: pos },
    ...changes,
    { tag: 'commit', position: at(pos), commitTimeMs: pos + 0.5, seq: log.committed!.seq },
  ];
}

/** `n` inserts into `t` with keys 0 … n − 1 and the value `text(i)`. */
export function inserts(n: number, text: (i: number) => string, t: TableSchema): Change[] {
  return Array.from({ length: n }, (_, i) => ({ tag: 'insert', table: t, row: [String(i), text(i)] }));
}

/**
 * Takes exactly `n` messages from an endless stream of batches, then closes the iterator (a
 * batch that brings more is cut: the caller asked for the first `n`).
 */
export async function take<M extends ChangeMessage>(
  stream: AsyncIterable<readonly M[]>,
  n: number,
): Promise<M[]> {
  const out: M[] = [];
  if (n === 0) return out;
  for await (const batch of stream) {
    expect(batch.length).toBeGreaterThan(0);
    for (const m of batch) {
      out.push(m);
      if (out.length >= n) return out;
    }
  }
  return out;
}

/**
 * A message as plain data (positions as text, tables as names; the log's own sequence and
 * commit times left out) for equality checks.
 */
export function plain(m: ChangeMessage): unknown {
  switch (m.tag) {
    case 'commit':
      return { tag: m.tag, position: m.position.toString() };
    case 'begin':
      return { tag: m.tag };
    case 'schema':
      return { tag: m.tag, change: m.change };
    case 'truncate':
      return { tag: m.tag, tables: m.tables.map((t) => t.name) };
    case 'insert':
      return { tag: m.tag, table: m.table.name, row: m.row };
    case 'update':
      return { tag: m.tag, table: m.table.name, row: m.row, old: m.old, oldIsFull: m.oldIsFull };
    case 'delete':
      return { tag: m.tag, table: m.table.name, old: m.old };
  }
}

/**
 * Runs crash-writer.fixture.ts on `path` in a child process, which SIGKILLs itself inside a
 * transaction; returns what it printed.
 */
export function crashWriter(path: string, mode: 'lmdb' | 'spill' | 'clean' | 'reset'): string {
  const fixture = new URL('./crash-writer.fixture.ts', import.meta.url).pathname;
  try {
    execFileSync(process.execPath, ['--import', 'tsx', fixture, path, mode], { encoding: 'utf8' });
  } catch (err) {
    expect((err as { signal?: string }).signal).toBe('SIGKILL');
    return String((err as { stdout?: string }).stdout);
  }
  throw new Error('the crash writer was not killed');
}
