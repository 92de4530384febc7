/** SELECT lists (projection and computed columns): maps each row. Stateless. */
import { isMarkedConsolidated, markConsolidated, type Change, type Row } from './change.ts';
import type { Operator } from './operator.ts';

export interface MapOptions {
  /** Must be deterministic: a deletion is mapped again and has to produce the inserted row. */
  readonly project: (row: Row) => Row;
  /** Distinct rows map to distinct rows (e.g. the output keeps every input column). */
  readonly injective?: boolean;
}

export class MapOperator implements Operator {
  constructor(private readonly options: MapOptions) {}

  step([input = []]: readonly (readonly Change[])[]): Change[] {
    const out = input.map((c) => ({ row: this.options.project(c.row), weight: c.weight }));
    return this.options.injective === true && isMarkedConsolidated(input) ? markConsolidated(out) : out;
  }
}
