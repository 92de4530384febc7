/** Test support: row multisets for reference implementations and for summing output deltas. */
import type { Change, Row } from '../change.ts';
import { rowKey } from '../row-key.ts';

export class Multiset {
  private readonly entries = new Map<string, { row: Row; count: number }>();

  add(row: Row, count: number): void {
    const key = rowKey(row);
    const e = this.entries.get(key);
    const next = (e?.count ?? 0) + count;
    if (next === 0) this.entries.delete(key);
    else this.entries.set(key, { row, count: next });
  }

  addAll(changes: Iterable<Change>): void {
    for (const c of changes) this.add(c.row, c.weight);
  }

  /** Every row repeated by its count, in row-key order (deterministic). */
  rows(): Row[] {
    const out: Row[] = [];
    for (const [, e] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      for (let i = 0; i < e.count; i++) out.push(e.row);
    }
    return out;
  }

  /** [rowKey, count] pairs sorted by key: a canonical form to compare multisets with. */
  canonical(): [string, number][] {
    return [...this.entries]
      .map(([k, e]): [string, number] => [k, e.count])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  static of(rows: Iterable<Row>): Multiset {
    const m = new Multiset();
    for (const r of rows) m.add(r, 1);
    return m;
  }
}
