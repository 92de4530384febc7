/**
 * ORDER BY … LIMIT n OFFSET m, optionally per partition — which is also
 * `row_number() OVER (PARTITION BY p ORDER BY o) <= n` (with `rowNumber` set). Ties in the order
 * key are broken by the whole row (its row key), so the output is deterministic.
 *
 * Maintains the invariant that `r|rowKey(partition) orderKey(row) rowKey(row)` → multiplicity and
 * row holds every input row, so a partition's window is the first offset+limit entries of one
 * prefix scan. Each epoch re-reads the window of each touched partition before and after
 * applying its changes and emits the difference.
 */
import type { Change, Row } from './change.ts';
import { groupBy } from './change.ts';
import type { Operator, OperatorState } from './operator.ts';
import type { OrderKeyFn } from './order-key.ts';
import { rowKey } from './row-key.ts';

export interface TopNOptions {
  /** ORDER BY as an order key (order-key.ts `orderKeyOf`). */
  readonly orderKey: OrderKeyFn;
  /** PARTITION BY; absent for one window over all rows. */
  readonly partitionKey?: (row: Row) => Row;
  /** LIMIT; absent for none (then every epoch reads the whole partition). */
  readonly limit?: number;
  /** OFFSET; 0 when absent. */
  readonly offset?: number;
  /** Appends row_number() (a bigint counting from 1 in the partition) to each output row. */
  readonly rowNumber?: boolean;
}

export class TopNOperator implements Operator {
  constructor(
    private readonly state: OperatorState,
    private readonly options: TopNOptions,
  ) {}

  step([input = []]: readonly (readonly Change[])[]): Change[] {
    const partitionKey = this.options.partitionKey;
    const out: Change[] = [];
    const partitions = groupBy(input, (row) => rowKey(partitionKey === undefined ? [] : partitionKey(row)));
    for (const [pk, changes] of partitions) {
      for (const c of this.window(pk)) out.push({ row: c, weight: -1 });
      for (const c of changes)
        this.state.addRow('r', pk + this.options.orderKey(c.row) + rowKey(c.row), c.row, c.weight);
      for (const c of this.window(pk)) out.push({ row: c, weight: 1 });
    }
    return out;
  }

  /** The partition's output rows, one per copy, in order. */
  private window(pk: string): Row[] {
    const offset = this.options.offset ?? 0;
    const limit = this.options.limit;
    const entries = this.state.scanRows('r', pk, limit === undefined ? {} : { limit: offset + limit });
    const rows: Row[] = [];
    let position = 0;
    const end = limit === undefined ? Infinity : offset + limit;
    for (const e of entries) {
      for (let n = 0; n < e.weight && position < end; n++, position++) {
        if (position < offset) continue;
        rows.push(this.options.rowNumber === true ? [...e.row, BigInt(position + 1)] : e.row);
      }
    }
    return rows;
  }
}
