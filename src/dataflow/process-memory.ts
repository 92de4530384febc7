/**
 * What the LMDB store asks of the process's memory: its resident bytes, and V8's full collection.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFunction: (() => void) | null | undefined;

/**
 * V8's full garbage collection, exposed without `--expose-gc` on the command line: the flag is
 * set just long enough to take `gc` from a fresh context, then cleared. null where that fails.
 */
export function fullGc(): (() => void) | null {
  if (gcFunction !== undefined) return gcFunction;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    gcFunction = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    gcFunction = null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return gcFunction;
}

const HAS_STATM = existsSync('/proc/self/statm');

/** Resident bytes of this process, all and file-backed (/proc/self/statm); null off Linux. */
export function residentBytes(): { total: number; file: number } | null {
  if (!HAS_STATM) return null;
  try {
    const f = readFileSync('/proc/self/statm', 'utf8').split(' ');
    return { total: Number(f[1]) * 4096, file: Number(f[2]) * 4096 };
  } catch {
    return null;
  }
}
