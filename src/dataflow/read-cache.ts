/**
 * Backend values kept in memory in front of a durable store, per namespace (so a lookup never
 * builds a `ns|key` string), in two generations bounded in entries and bytes: a hit in the old
 * generation moves the entry to the young one, and a full young generation replaces the old one,
 * so hot keys (aggregate groups) stay while a stream of one-off reads (base rows) passes through.
 */

/** What `get` returns for a key the cache does not hold. */
export const MISS: unique symbol = Symbol('miss');

const GENERATION_ENTRIES = 100_000;
const GENERATION_BYTES = 12 * 1024 * 1024;
const ENTRY_OVERHEAD_BYTES = 96;

type Generation = Map<string, Map<string, string | undefined>>;

export class ReadCache {
  private young: Generation = new Map();
  private old: Generation = new Map();
  private youngEntries = 0;
  private youngBytes = 0;

  /** The cached value (undefined: known absent), or MISS; found in the old generation, promoted. */
  get(ns: string, key: string): string | undefined | typeof MISS {
    const young = lookup(this.young, ns, key);
    if (young !== MISS) return young;
    const old = lookup(this.old, ns, key);
    if (old !== MISS) this.set(ns, key, old);
    return old;
  }

  /** The cached value without promoting it. */
  peek(ns: string, key: string): string | undefined | typeof MISS {
    const young = lookup(this.young, ns, key);
    return young !== MISS ? young : lookup(this.old, ns, key);
  }

  set(ns: string, key: string, value: string | undefined): void {
    if (this.youngEntries >= GENERATION_ENTRIES || this.youngBytes >= GENERATION_BYTES) {
      this.old = this.young;
      this.young = new Map();
      this.youngEntries = 0;
      this.youngBytes = 0;
    }
    let m = this.young.get(ns);
    if (m === undefined) this.young.set(ns, (m = new Map()));
    m.set(key, value);
    this.youngEntries++;
    this.youngBytes += 2 * (key.length + (value?.length ?? 0)) + ENTRY_OVERHEAD_BYTES;
  }

  /** Drops the keys of `table` in `ns` (both generations). */
  forget(ns: string, table: { forEach(visit: (key: string) => void): void }): void {
    const y = this.young.get(ns);
    const o = this.old.get(ns);
    if (y === undefined && o === undefined) return;
    table.forEach((key) => {
      y?.delete(key);
      o?.delete(key);
    });
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
    this.youngEntries = 0;
    this.youngBytes = 0;
  }
}

/** `key` of namespace `ns` in one generation (undefined: known absent), or MISS. */
function lookup(gen: Generation, ns: string, key: string): string | undefined | typeof MISS {
  const m = gen.get(ns);
  if (m === undefined) return MISS;
  const v = m.get(key);
  return v !== undefined || m.has(key) ? v : MISS;
}
