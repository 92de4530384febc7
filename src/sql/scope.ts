import type { Node } from 'libpg-query';
import type { Value } from '../decode/value.ts';
import type { ViewSource } from './view-error.ts';
import type { SqlType } from './sql-type.ts';

/** A compiled expression: evaluated on one row of its input. */
export type RowFn = (row: readonly Value[]) => Value;

/** A column visible to expressions, at its index in the input row. */
export interface ScopeColumn {
  /** Table alias (or name) that qualifies it; null for a computed column. */
  readonly qualifier: string | null;
  readonly name: string;
  readonly type: SqlType;
  /** Not found by an unqualified name (the other copy of a JOIN … USING column). */
  readonly hiddenUnqualified?: boolean;
  /** Left out of `*` (same reason). */
  readonly hiddenStar?: boolean;
}

export interface Compiled {
  readonly type: SqlType;
  readonly fn: RowFn;
  /** The literal's value when the expression is a constant (after folding casts of literals). */
  readonly constant?: { value: Value };
  /** Index of the input column when the expression is a plain column reference. */
  readonly column?: number;
}

/** Structural identity of an AST node, positions ignored (GROUP BY matching, aggregate dedup). */
export function nodeKey(node: unknown): string {
  return JSON.stringify(node, (k, v: unknown) => (k === 'location' ? undefined : v));
}

export interface ExprContext {
  readonly view: ViewSource;
  readonly scope: readonly ScopeColumn[];
  /** Tried first on every node: grouped expressions and aggregate calls above an aggregation. */
  readonly substitute?: (node: Node) => Compiled | undefined;
  /** Set above an aggregation: a column reference not substituted is an error. */
  readonly grouped?: boolean;
  /** Clause name for messages, e.g. `WHERE`. */
  readonly clause: string;
}
