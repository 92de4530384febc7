import { TidemarkError } from '../errors/tidemark-error.ts';

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
  if (/MDB_INVALID|MDB_CORRUPTED|MDB_VERSION_MISMATCH|MDB_PAGE_NOTFOUND|MDB_BAD|not an LMDB|Invalid argument/i.test(text)) {
    return new TidemarkError('CHANGELOG_CORRUPT', { detail, cause: err });
  }
  if (/ENOENT/i.test(text)) return new TidemarkError('CHANGELOG_MISSING', { detail, cause: err });
  return new TidemarkError('INTERNAL', { detail, cause: err });
}
