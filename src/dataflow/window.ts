/**
 * Window functions: each input row comes out with the values of its window functions appended,
 * computed over its partition in order (`compute`, supplied by the SQL side: row_number, rank,
 * lag, running sums, …). A change in a partition can change every row's values after it, so
 * each epoch recomputes the touched partitions and emits the difference (unchanged rows cancel
 * in the graph's consolidation).
 *
 * Maintains the invariant that `r|rowKey(partition) orderKey(row) rowKey(row)` → multiplicity
 * and row holds every input row, so a partition in order is one prefix scan. Work per epoch is
 * proportional to the sizes of the partitions touched.
 */
import type { Value } from '../decode/value.ts';
import { groupBy, type Change, type Row } from './change.ts';
import type { Operator, OperatorState } from './operator.ts';
import type { OrderKeyFn } from './order-key.ts';
import { rowKey } from './row-key.ts';
import { decodeRow } from './value-codec.ts';

export interface WindowOptions {
  /** PARTITION BY; absent for one partition of all rows. */
  readonly partitionKey?: (row: Row) => Row;
  /** ORDER BY as an order key (order-key.ts); rows with equal keys are peers. */
  readonly orderKey: OrderKeyFn;
  /**
   * The appended values of each row of one partition, given in order (a row repeated by its
   * multiplicity) with their order keys. Must be deterministic.
   */
  readonly compute: (rows: readonly Row[], orderKeys: readonly string[]) => Value[][];
}

export class WindowOperator implements Operator {
  constructor(
    private readonly state: OperatorState,
    private readonly options: WindowOptions,
  ) {}

  step([input = []]: readonly (readonly Change[])[]): Change[] {
    const partitionKey = this.options.partitionKey;
    const out: Change[] = [];
    const partitions = groupBy(input, (row) => rowKey(partitionKey === undefined ? [] : partitionKey(row)));
    for (const [pk, changes] of partitions) {
      for (const row of this.rows(pk)) out.push({ row, weight: -1 });
      for (const c of changes)
        this.state.addRow('r', pk + this.options.orderKey(c.row) + rowKey(c.row), c.row, c.weight);
      for (const row of this.rows(pk)) out.push({ row, weight: 1 });
    }
    return out;
  }

  /** The partition's output rows (input row + window values), one per copy, in order. */
  private rows(pk: string): Row[] {
    const rows: Row[] = [];
    const keys: string[] = [];
    for (const [key, value] of this.state.scanPrefix('r', pk)) {
      const space = value.indexOf(' ');
      const n = Number(value.slice(0, space));
      const c = decodeRow(value.slice(space + 1));
      // The order key sits between the partition key and the row key (both prefix-free).
      const orderKey = key.slice(pk.length, key.length - rowKey(c).length);
      for (let i = 0; i < n; i++) {
        rows.push(c);
        keys.push(orderKey);
      }
    }
    if (rows.length === 0) return rows;
    const values = this.options.compute(rows, keys);
    return rows.map((r, i) => [...r, ...(values[i] ?? [])]);
  }
}
