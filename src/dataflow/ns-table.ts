/**
 * The entries of one state namespace: a hash map while only point reads and writes happen, turned
 * into an ordered map (sorted-map.ts) the first time the namespace is scanned, and kept ordered
 * from then on. Namespaces that are never scanned (aggregate groups, join counts) never pay for
 * ordering; the stores keep one table per namespace, so keys are never concatenated with it.
 *
 * Values sit in mutable entries, so a caller that looked an entry up can update it without a
 * second hash lookup (the memory store's write path).
 */
import { SortedMap } from './sorted-map.ts';

export interface NsEntry<V> {
  value: V;
  /** Free for the owner (the memory store: the write sequence that last logged this entry). */
  mark: number;
}

export class NsTable<V> {
  private map: Map<string, NsEntry<V>> | null = new Map();
  private sorted: SortedMap<NsEntry<V>> | null = null;

  get size(): number {
    return this.map?.size ?? this.sorted?.size ?? 0;
  }

  entry(key: string): NsEntry<V> | undefined {
    return this.map !== null ? this.map.get(key) : this.sorted?.get(key);
  }

  /** Adds an entry for `key`, which must be absent. */
  add(key: string, value: V, mark = 0): NsEntry<V> {
    const e: NsEntry<V> = { value, mark };
    this.addEntry(key, e);
    return e;
  }

  /** Adds `e` (taken over, e.g. from a table about to be dropped) for `key`, which must be absent. */
  addEntry(key: string, e: NsEntry<V>): void {
    if (this.map !== null) this.map.set(key, e);
    else this.sorted?.set(key, e);
  }

  get(key: string): V | undefined {
    return this.entry(key)?.value;
  }

  has(key: string): boolean {
    return this.map !== null ? this.map.has(key) : (this.sorted?.has(key) ?? false);
  }

  set(key: string, value: V): void {
    const e = this.entry(key);
    if (e === undefined) this.add(key, value);
    else e.value = value;
  }

  delete(key: string): void {
    if (this.map !== null) this.map.delete(key);
    else this.sorted?.delete(key);
  }

  /** All entries, in no particular order unless the table is already ordered. */
  *all(): Generator<[string, V]> {
    if (this.map !== null) for (const [k, e] of this.map) yield [k, e.value];
    else for (const [k, e] of this.ordered().entries('')) yield [k, e.value];
  }

  /** Calls `visit` with every entry, in the order `all` yields them (no tuple per entry). */
  forEach(visit: (key: string, value: V) => void): void {
    this.forEachEntry((k, e) => visit(k, e.value));
  }

  /** Calls `visit` with every entry and its mark, in the order `allEntries` yields them. */
  forEachEntry(visit: (key: string, e: NsEntry<V>) => void): void {
    if (this.map !== null) this.map.forEach((e, k) => visit(k, e));
    else for (const [k, e] of this.ordered().entries('')) visit(k, e);
  }

  /** All entries with their marks, in no particular order unless the table is already ordered. */
  *allEntries(): Generator<[string, NsEntry<V>]> {
    if (this.map !== null) yield* this.map;
    else yield* this.ordered().entries('');
  }

  /** Ordered entries from `from` (see SortedMap.entries); orders the table for good. */
  *entries(from: string, options: { reverse: boolean }): Generator<[string, V]> {
    for (const [k, e] of this.ordered().entries(from, options)) yield [k, e.value];
  }

  /** Appends the entries under `prefix` to `out` (see SortedMap.collectPrefix); orders the table. */
  collectPrefix(prefix: string, reverse: boolean, limit: number, out: [string, V][]): void {
    const found: [string, NsEntry<V>][] = [];
    this.ordered().collectPrefix(prefix, reverse, limit, found);
    for (const [k, e] of found) out.push([k, e.value]);
  }

  private ordered(): SortedMap<NsEntry<V>> {
    if (this.sorted === null) {
      const sorted = new SortedMap<NsEntry<V>>();
      const map = this.map ?? new Map<string, NsEntry<V>>();
      for (const key of [...map.keys()].sort()) sorted.set(key, map.get(key) as NsEntry<V>);
      this.sorted = sorted;
      this.map = null;
    }
    return this.sorted;
  }
}
