/**
 * DISTINCT (and UNION): each row present with positive multiplicity appears exactly once.
 * Maintains the invariant that state `c|rowKey(row)` holds the row's input multiplicity, and the
 * output contains the row iff that multiplicity is positive.
 */
import type { Change } from './change.ts';
import type { Operator, OperatorState } from './operator.ts';
import { rowKey } from './row-key.ts';

export class DistinctOperator implements Operator {
  constructor(private readonly state: OperatorState) {}

  step([input = []]: readonly (readonly Change[])[]): Change[] {
    const out: Change[] = [];
    for (const c of input) {
      const [before, after] = this.state.addCount('c', rowKey(c.row), c.weight);
      const delta = (after > 0 ? 1 : 0) - (before > 0 ? 1 : 0);
      if (delta !== 0) out.push({ row: c.row, weight: delta });
    }
    return out;
  }
}
