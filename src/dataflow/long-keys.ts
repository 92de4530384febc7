/**
 * Keys longer than LMDB takes (1978 bytes, `ns|` included), stored under a bounded form: a row
 * with a TOASTed value becomes a state key (a keyless table's row, a view row's identity) far
 * past that. The stored key is the key's first LONG_KEY_CHARS characters, a mark and a SHA-256
 * of the whole key; the value carries the whole key in front, so reads give back the key as it
 * was written. A scan's order among long keys that share their first LONG_KEY_CHARS characters
 * is the hash's, not the keys' (nothing that pages or groups by a prefix shorter than that
 * notices); a prefix longer than that is matched on the whole key.
 */
import { createHash } from 'node:crypto';

/** Characters kept as they are: 3 bytes each at most in UTF-8, with room for `ns|` and the hash. */
export const LONG_KEY_CHARS = 400;

/** After the kept characters: never inside a key of LONG_KEY_CHARS or fewer (it has no such index). */
const MARK = '\ufffe';

/** The key as stored. */
export function storedKey(key: string): string {
  if (key.length <= LONG_KEY_CHARS) return key;
  return `${key.slice(0, LONG_KEY_CHARS)}${MARK}${createHash('sha256').update(key).digest('base64')}`;
}

/** True when `stored` is the stored form of a long key. */
export function isLongKey(stored: string): boolean {
  return stored.length > LONG_KEY_CHARS && stored.charCodeAt(LONG_KEY_CHARS) === 0xfffe;
}

/** The value as stored under `storedKey(key)`. */
export function storedValue(key: string, value: string): string {
  return key.length <= LONG_KEY_CHARS ? value : `${key.length}:${key}${value}`;
}

/** The key and value as written, from a stored entry. */
export function unwrapEntry(stored: string, value: string): [string, string] {
  if (!isLongKey(stored)) return [stored, value];
  const colon = value.indexOf(':');
  const length = Number(value.slice(0, colon));
  return [value.slice(colon + 1, colon + 1 + length), value.slice(colon + 1 + length)];
}
