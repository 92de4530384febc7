/** SELECT lists (projection and computed columns): maps each row. Stateless. */
import type { Change, Row } from './change.ts';
import type { Operator } from './operator.ts';

export interface MapOptions {
  /** Must be deterministic: a deletion is mapped again and has to produce the inserted row. */
  readonly project: (row: Row) => Row;
}

export class MapOperator implements Operator {
  constructor(private readonly options: MapOptions) {}

  step([input = []]: readonly (readonly Change[])[]): Change[] {
    return input.map((c) => ({ row: this.options.project(c.row), weight: c.weight }));
  }
}
