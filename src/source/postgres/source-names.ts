import { createHash } from 'node:crypto';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { maskUri } from '../../errors/mask.ts';

/**
 * The slot and publication shared by every changefeed of one source database: `tidemark_src_<hash>`, the hash
 * over host, port and database (never credentials), so every process pointing at the same
 * database finds the same slot.
 */
export function sourceObjectName(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new TidemarkError('CONFIG_INVALID', { detail: `source URI ${maskUri(url)} is not a URI`, cause });
  }
  const db =
    decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres';
  const id = `${u.hostname.toLowerCase()}:${u.port || '5432'}/${db}`;
  return `tidemark_src_${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}
