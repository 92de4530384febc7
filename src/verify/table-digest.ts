/**
 * Digests and differences of rows in canonical form (`canonical-value.ts`), independent of where
 * the rows were read. A range's digest is its row count and the sum (mod 2^64) of its rows' 64-bit
 * hashes: independent of order (each database returns rows in its own) and, unlike XOR, not
 * cancelled by a duplicated row of a keyless table.
 */
import type { Row } from '../core/row.ts';
import type { TableSchema } from '../core/table-schema.ts';
import { encodeCells, rowCanonicalizer, rowHash64 } from './canonical-value.ts';

const MASK64 = (1n << 64n) - 1n;

export interface RangeDigest {
  readonly rows: number;
  readonly sum: bigint;
}

/** A row in canonical form, with its key's encoding (keyless: the whole row's). */
export interface CanonicalRow {
  readonly key: string;
  readonly encoded: string;
  /** The row as read (pivot text), for printing and for writing back. */
  readonly row: Row;
}

/** Canonicalises one table's rows. */
export class TableCanon {
  readonly #canon: (row: Row) => Row;
  readonly #keyIdx: readonly number[];

  constructor(readonly table: TableSchema) {
    this.#canon = rowCanonicalizer(table.columns);
    this.#keyIdx = table.keyless ? table.columns.map((_, i) => i) : table.keyColumns;
  }

  row(row: Row): CanonicalRow {
    const c = this.#canon(row);
    const encoded = encodeCells(c);
    return {
      key: this.table.keyless ? encoded : encodeCells(this.#keyIdx.map((i) => c[i] ?? null)),
      encoded,
      row,
    };
  }

  /** The key cells of a row as read (for deletes and printing). */
  keyOf(row: Row): Row {
    return this.#keyIdx.map((i) => row[i] ?? null);
  }

  async digest(batches: AsyncIterable<readonly Row[]>): Promise<RangeDigest> {
    let rows = 0;
    let sum = 0n;
    for await (const batch of batches) {
      for (const r of batch) {
        sum = (sum + rowHash64(this.row(r).encoded)) & MASK64;
        rows++;
      }
    }
    return { rows, sum };
  }
}

export interface RowDifferences {
  /** In the source, not downstream. */
  readonly missing: Row[];
  /** Downstream, not in the source. */
  readonly extra: Row[];
  /** Same key, other values. */
  readonly changed: { readonly source: Row; readonly target: Row }[];
}

/**
 * The differences between two sets of rows of one table. Keyed tables match by key; keyless
 * tables compare multisets of whole rows (a row twice in the source and once downstream is one
 * missing copy).
 */
export function diffRows(canon: TableCanon, source: readonly Row[], target: readonly Row[]): RowDifferences {
  const out: RowDifferences = { missing: [], extra: [], changed: [] };
  const bySource = new Map<string, CanonicalRow[]>();
  for (const r of source) {
    const c = canon.row(r);
    const list = bySource.get(c.key);
    if (list) list.push(c);
    else bySource.set(c.key, [c]);
  }
  for (const r of target) {
    const t = canon.row(r);
    const list = bySource.get(t.key);
    const s = list?.pop();
    if (list && list.length === 0) bySource.delete(t.key);
    if (!s) out.extra.push(r);
    else if (s.encoded !== t.encoded) out.changed.push({ source: s.row, target: r });
  }
  for (const list of bySource.values()) for (const s of list) out.missing.push(s.row);
  return out;
}

/** Collects every row of the batches. */
export async function allRows(batches: AsyncIterable<readonly Row[]>): Promise<Row[]> {
  const out: Row[] = [];
  for await (const b of batches) out.push(...b);
  return out;
}
