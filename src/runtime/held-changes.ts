/**
 * A keyless table's changes held back while its online copy is read (table-copy.ts): the stream
 * goes on for as long as the read takes, and an append-only table under heavy writes would hold
 * them all. Held in memory up to a budget, then in a spill beside the read's (row-spill.ts), so a
 * long read holds no more than the budget. Given back once, in order, as plain rows: a change
 * read from the change log carries its cells as a slice of the log's batch buffer, which holding
 * it would keep alive whole.
 */
import type { RowChange } from '../core/change.ts';
import { UNCHANGED, type Cell, type Row } from '../core/row.ts';
import type { TableSchema } from '../core/table-schema.ts';
import { LineSpill, type SpillCodec } from './row-spill.ts';

/** An insert, update or delete (a truncate and a barrier are handled apart). */
export type RowEdit = Exclude<RowChange, { tag: 'truncate' | 'schema' }>;

interface Held {
  readonly change: RowEdit;
  /** The source's id of its transaction (`BeginEvent.txn`). */
  readonly txn: number;
}

export interface HeldChangesOptions {
  /** Where changes beyond the budget go; null: all are held in memory. */
  readonly spillPath: string | null;
  /** Bytes of held changes (as `EpochBuilder` counts rows) kept in memory before spilling. */
  readonly memoryBytes: number;
}

export class HeldChanges {
  private memory: Held[] = [];
  private memoryBytes = 0;
  private spill: LineSpill<Held> | null = null;
  /** Changes held. */
  count = 0;

  constructor(
    private readonly table: TableSchema,
    private readonly opts: HeldChangesOptions,
  ) {}

  /** Holds `change` of transaction `txn`. Only before `take`. */
  push(change: RowEdit, txn: number): void {
    const plain = plainChange(change);
    this.count++;
    if (this.spill) return this.spill.append([{ change: plain, txn }]);
    this.memory.push({ change: plain, txn });
    this.memoryBytes += changeBytes(plain);
    if (this.memoryBytes > this.opts.memoryBytes && this.opts.spillPath !== null) {
      this.spill = new LineSpill(this.opts.spillPath, heldCodec(this.table));
      this.spill.append(this.memory);
      this.memory = [];
      this.memoryBytes = 0;
    }
  }

  /** True while every change held is in memory. */
  get inMemory(): boolean {
    return this.spill === null;
  }

  /**
   * The held changes for which `keep(txn)` is true, in the order held. Once; the spill is deleted
   * when the iteration ends.
   */
  *take(keep: (txn: number) => boolean): Generator<RowEdit> {
    const from = this.spill ? this.spill.rows() : this.memory;
    this.memory = [];
    this.spill = null;
    for (const h of from) if (keep(h.txn)) yield h.change;
  }

  /** Drops what is held (the read was thrown away). Idempotent. */
  close(): void {
    this.spill?.close();
    this.spill = null;
    this.memory = [];
    this.memoryBytes = 0;
  }
}

/** The change with its cells as arrays (unpacked, no reference to a log batch). */
function plainChange(c: RowEdit): RowEdit {
  switch (c.tag) {
    case 'insert':
      return { tag: 'insert', table: c.table, row: c.row };
    case 'update':
      return { tag: 'update', table: c.table, row: c.row, old: c.old, oldIsFull: c.oldIsFull };
    case 'delete':
      return { tag: 'delete', table: c.table, old: c.old };
  }
}

function changeBytes(c: RowEdit): number {
  let n = 64;
  const count = (cells: readonly Cell[] | null) => {
    if (cells) for (const x of cells) n += 24 + (typeof x === 'string' ? 2 * x.length : 0);
  };
  if (c.tag !== 'delete') count(c.row);
  if (c.tag !== 'insert') count(c.old);
  return n;
}

/**
 * A held change as JSON: `[txn, tag, row, old, oldIsFull]`, tag 'i' | 'u' | 'd', an UNCHANGED
 * cell as 0 (a cell is otherwise text or null).
 */
function heldCodec(table: TableSchema): SpillCodec<Held> {
  const enc = (cells: readonly Cell[] | null) => (cells ? cells.map((x) => (x === UNCHANGED ? 0 : x)) : null);
  const dec = (j: unknown) =>
    j === null ? null : (j as (string | null | 0)[]).map((x) => (x === 0 ? UNCHANGED : x));
  return {
    encode: ({ change: c, txn }) =>
      c.tag === 'insert'
        ? [txn, 'i', enc(c.row), null, 0]
        : c.tag === 'update'
          ? [txn, 'u', enc(c.row), enc(c.old), c.oldIsFull ? 1 : 0]
          : [txn, 'd', null, enc(c.old), 0],
    decode: (j) => {
      const [txn, tag, row, old, full] = j as [number, 'i' | 'u' | 'd', unknown, unknown, number];
      const change: RowEdit =
        tag === 'i'
          ? { tag: 'insert', table, row: dec(row) as Row }
          : tag === 'u'
            ? { tag: 'update', table, row: dec(row)!, old: dec(old) as Row | null, oldIsFull: full === 1 }
            : { tag: 'delete', table, old: dec(old) as Row };
      return { change, txn };
    },
  };
}
