/** WHERE and HAVING: keeps the changes whose row satisfies the predicate. Stateless. */
import type { Change, Row } from './change.ts';
import type { Operator } from './operator.ts';

export interface FilterOptions {
  /** SQL truth value of the condition: only `true` passes (NULL and false are dropped). */
  readonly predicate: (row: Row) => boolean | null;
}

export class FilterOperator implements Operator {
  constructor(private readonly options: FilterOptions) {}

  step([input = []]: readonly (readonly Change[])[]): Change[] {
    return input.filter((c) => this.options.predicate(c.row) === true);
  }
}
