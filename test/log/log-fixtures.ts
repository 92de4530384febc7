/** Shared helpers for change-log tests: a temp log directory, tables, and reading N messages. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import type { ChangeMessage } from '../../src/core/change.ts';

export function tempLogDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-log-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'log');
}

export { table } from './log-table.ts';

/**
 * Takes exactly `n` messages from an endless stream of batches, then closes the iterator (a
 * batch that brings more is cut: the caller asked for the first `n`).
 */
export async function take(
  stream: AsyncIterable<readonly ChangeMessage[]>,
  n: number,
): Promise<ChangeMessage[]> {
  const out: ChangeMessage[] = [];
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

/** A message as plain data (positions as text, tables as names) for equality checks. */
export function plain(m: ChangeMessage): unknown {
  switch (m.tag) {
    case 'commit':
      return { tag: m.tag, position: m.position.toString() };
    case 'begin':
      return { tag: m.tag };
    case 'relation':
      return { tag: m.tag, table: m.table.name };
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
export function crashWriter(path: string, mode: 'lmdb' | 'spill'): string {
  const fixture = new URL('./crash-writer.fixture.ts', import.meta.url).pathname;
  try {
    execFileSync(process.execPath, ['--import', 'tsx', fixture, path, mode], { encoding: 'utf8' });
  } catch (err) {
    expect((err as { signal?: string }).signal).toBe('SIGKILL');
    return String((err as { stdout?: string }).stdout);
  }
  throw new Error('the crash writer was not killed');
}
