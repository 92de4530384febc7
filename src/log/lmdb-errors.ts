import { closeSync, openSync, readSync } from 'node:fs';
import { TidemarkError } from '../errors/tidemark-error.ts';

const LMDB_MAGIC = 0xbeefc0de;
/** Where lmdb-js's LMDB puts the meta page's magic: after the 16-byte page header and 8 bytes. */
const MAGIC_OFFSET = 24;

/**
 * Checks that `file` starts like an LMDB data file before LMDB maps it: LMDB trusts its meta
 * pages, and a foreign or zeroed file can crash the process instead of failing the open.
 */
export function assertLmdbFile(file: string): void {
  const head = Buffer.alloc(MAGIC_OFFSET + 4);
  let read = 0;
  const fd = openSync(file, 'r');
  try {
    read = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (read < head.length || head.readUInt32LE(MAGIC_OFFSET) !== LMDB_MAGIC) {
    throw new TidemarkError('CHANGELOG_CORRUPT', { detail: `${file} is not an LMDB data file (bad header)` });
  }
}

/**
 * Wraps an error from LMDB exactly once: a full disk or map (ENOSPC, MDB_MAP_FULL) becomes
 * CHANGELOG_DISK_FULL (retriable: space may be freed), a damaged or foreign file
 * CHANGELOG_CORRUPT, anything else INTERNAL.
 */
export function wrapLmdbError(err: unknown, path: string, action: string): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = (err ?? {}) as { message?: string; code?: string | number };
  const text = `${String(e.code ?? '')} ${e.message ?? String(err)}`;
  const detail = `${action} ${path}: ${e.message ?? String(err)}`;
  if (/ENOSPC|No space left|MDB_MAP_FULL|MDB_MAP_RESIZED|EDQUOT/i.test(text)) {
    return new TidemarkError('CHANGELOG_DISK_FULL', { detail, cause: err });
  }
  if (
    /MDB_INVALID|MDB_CORRUPTED|MDB_VERSION_MISMATCH|MDB_PAGE_NOTFOUND|MDB_BAD|not an LMDB|Invalid argument/i.test(
      text,
    )
  ) {
    return new TidemarkError('CHANGELOG_CORRUPT', { detail, cause: err });
  }
  if (/ENOENT/i.test(text)) return new TidemarkError('CHANGELOG_MISSING', { detail, cause: err });
  return new TidemarkError('INTERNAL', { detail, cause: err });
}
