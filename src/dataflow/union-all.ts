/** UNION ALL: the concatenation of its inputs (UNION is this followed by distinct). Stateless. */
import type { Change } from './change.ts';
import type { Operator } from './operator.ts';

export class UnionAllOperator implements Operator {
  step(inputs: readonly (readonly Change[])[]): Change[] {
    return inputs.flat();
  }
}
