/**
 * The entries of one state namespace: a hash map while only point reads and writes happen, turned
 * into an ordered map (sorted-map.ts) the first time the namespace is scanned, and kept ordered
 * from then on. Namespaces that are never scanned (aggregate groups, join counts) never pay for
 * ordering; the stores keep one table per namespace, so keys are never concatenated with it.
 */
import { SortedMap } from './sorted-map.ts';

export class NsTable<V> {
  private map: Map<string, V> | null = new Map();
  private sorted: SortedMap<V> | null = null;

  get size(): number {
    return this.map?.size ?? this.sorted?.size ?? 0;
  }

  get(key: string): V | undefined {
    return this.map !== null ? this.map.get(key) : this.sorted?.get(key);
  }

  has(key: string): boolean {
    return this.map !== null ? this.map.has(key) : (this.sorted?.has(key) ?? false);
  }

  set(key: string, value: V): void {
    if (this.map !== null) this.map.set(key, value);
    else this.sorted?.set(key, value);
  }

  delete(key: string): void {
    if (this.map !== null) this.map.delete(key);
    else this.sorted?.delete(key);
  }

  /** All entries, in no particular order unless the table is already ordered. */
  all(): IterableIterator<[string, V]> | Generator<[string, V]> {
    return this.map !== null ? this.map.entries() : this.ordered().entries('');
  }

  /** Ordered entries from `from` (see SortedMap.entries); orders the table for good. */
  entries(from: string, options: { reverse: boolean }): Generator<[string, V]> {
    return this.ordered().entries(from, options);
  }

  private ordered(): SortedMap<V> {
    if (this.sorted === null) {
      const sorted = new SortedMap<V>();
      const map = this.map ?? new Map<string, V>();
      for (const key of [...map.keys()].sort()) sorted.set(key, map.get(key) as V);
      this.sorted = sorted;
      this.map = null;
    }
    return this.sorted;
  }
}
