/**
 * An ordered map from string keys (JS string order) to values: a skip list with back links on
 * the bottom level, so both directions of iteration start in O(log n). Used as the memory store's
 * table and as every store's per-epoch write batch.
 */
const MAX_LEVEL = 24;

interface SkipNode<V> {
  key: string;
  value: V;
  next: (SkipNode<V> | null)[];
  prev: SkipNode<V> | null;
}

export class SortedMap<V> {
  private readonly head: SkipNode<V> = {
    key: '',
    value: undefined as V,
    next: new Array(MAX_LEVEL).fill(null),
    prev: null,
  };
  /** Point lookups by hash, so only ordered access pays for the skip list. */
  private readonly index = new Map<string, SkipNode<V>>();
  private readonly update: SkipNode<V>[] = new Array<SkipNode<V>>(MAX_LEVEL);
  private level = 1;
  // Deterministic level choice (xorshift) keeps runs reproducible.
  private seed = 0x2545f491;

  get size(): number {
    return this.index.size;
  }

  get(key: string): V | undefined {
    return this.index.get(key)?.value;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  set(key: string, value: V): void {
    const existing = this.index.get(key);
    if (existing !== undefined) {
      existing.value = value;
      return;
    }
    const update = this.update;
    this.findGreaterOrEqual(key, update);
    const level = this.randomLevel();
    if (level > this.level) {
      for (let i = this.level; i < level; i++) update[i] = this.head;
      this.level = level;
    }
    const node: SkipNode<V> = { key, value, next: new Array(level).fill(null), prev: null };
    for (let i = 0; i < level; i++) {
      const before = update[i] as SkipNode<V>;
      node.next[i] = before.next[i] ?? null;
      before.next[i] = node;
    }
    const before0 = update[0] as SkipNode<V>;
    node.prev = before0 === this.head ? null : before0;
    const after = node.next[0];
    if (after) after.prev = node;
    this.index.set(key, node);
  }

  delete(key: string): boolean {
    if (!this.index.has(key)) return false;
    const update = this.update;
    const found = this.findGreaterOrEqual(key, update) as SkipNode<V>;
    for (let i = 0; i < found.next.length; i++) {
      const before = update[i] as SkipNode<V>;
      if (before.next[i] === found) before.next[i] = found.next[i] ?? null;
    }
    const after = found.next[0];
    if (after) after.prev = found.prev;
    while (this.level > 1 && this.head.next[this.level - 1] === null) this.level--;
    this.index.delete(key);
    return true;
  }

  clear(): void {
    this.head.next.fill(null);
    this.level = 1;
    this.index.clear();
  }

  /**
   * Entries in key order starting at the first key ≥ `from` (forward), or in reverse order
   * starting at the last key ≤ `from` (reverse). Must not be used across a mutation.
   */
  *entries(from: string, options: { reverse: boolean } = { reverse: false }): Generator<[string, V]> {
    let node: SkipNode<V> | null;
    if (!options.reverse) {
      node = this.findGreaterOrEqual(from, null);
      while (node !== null) {
        yield [node.key, node.value];
        node = node.next[0] ?? null;
      }
      return;
    }
    node = this.findGreaterOrEqual(from, null);
    if (node === null) node = this.last();
    else if (node.key !== from) node = node.prev;
    while (node !== null) {
      yield [node.key, node.value];
      node = node.prev;
    }
  }

  /**
   * Appends the entries whose key starts with `prefix` to `out`, in key order or reversed, at
   * most `limit` of them: `entries` without a generator, for the memory store's scans.
   */
  collectPrefix(prefix: string, reverse: boolean, limit: number, out: [string, V][]): void {
    let node: SkipNode<V> | null;
    if (!reverse) {
      node = this.findGreaterOrEqual(prefix, null);
      while (node !== null && out.length < limit && node.key.startsWith(prefix)) {
        out.push([node.key, node.value]);
        node = node.next[0] ?? null;
      }
      return;
    }
    // Our keys use BMP characters below U+FFFF, so the prefix's entries end before prefix + U+FFFF.
    const from = prefix + '\uffff';
    node = this.findGreaterOrEqual(from, null);
    if (node === null) node = this.last();
    else if (node.key !== from) node = node.prev;
    while (node !== null && out.length < limit && node.key.startsWith(prefix)) {
      out.push([node.key, node.value]);
      node = node.prev;
    }
  }

  private last(): SkipNode<V> | null {
    let node = this.head;
    for (let i = this.level - 1; i >= 0; i--) {
      let next = node.next[i];
      while (next) {
        node = next;
        next = node.next[i];
      }
    }
    return node === this.head ? null : node;
  }

  private findGreaterOrEqual(key: string, update: SkipNode<V>[] | null): SkipNode<V> | null {
    let node = this.head;
    for (let i = this.level - 1; i >= 0; i--) {
      let next = node.next[i];
      while (next && next.key < key) {
        node = next;
        next = node.next[i];
      }
      if (update) update[i] = node;
    }
    return node.next[0] ?? null;
  }

  private randomLevel(): number {
    let level = 1;
    while (level < MAX_LEVEL) {
      let x = this.seed;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.seed = x >>> 0;
      if ((this.seed & 3) !== 0) break;
      level++;
    }
    return level;
  }
}
