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
  /** The base-table column this is, recorded in `reads` whenever an expression resolves to it. */
  readonly origin?: ColumnOrigin;
  /** Never NULL (a NOT NULL column, an inner join's key, a count, …); absent: may be NULL. */
  readonly notNull?: boolean;
}

/** A base-table column and the set of the plan's read columns to record it in. */
export interface ColumnOrigin {
  readonly relationId: number;
  readonly column: string;
  readonly reads: ReadColumns;
}

/** The base-table columns a plan reads: relation id → column names. */
export type ReadColumns = Map<number, Set<string>>;

/** Records that an expression reads `c` (when it is a base-table column). */
export function noteRead(c: ScopeColumn | undefined): void {
  const o = c?.origin;
  if (o === undefined) return;
  let cols = o.reads.get(o.relationId);
  if (cols === undefined) o.reads.set(o.relationId, (cols = new Set()));
  cols.add(o.column);
}

export interface Compiled {
  readonly type: SqlType;
  readonly fn: RowFn;
  /** The literal's value when the expression is a constant (after folding casts of literals). */
  readonly constant?: { value: Value };
  /** Index of the input column when the expression is a plain column reference. */
  readonly column?: number;
  /** Never NULL for any row; absent: may be NULL. */
  readonly notNull?: boolean;
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
  /** Row index of `scope[0]` (default 0): a correlated residual sees the outer row first. */
  readonly offset?: number;
  /** The enclosing query's columns, resolved when `scope` has no match (correlated residuals). */
  readonly outer?: { readonly scope: readonly ScopeColumn[]; readonly offset: number };
  /** Scopes of enclosing queries, only to say that a correlated reference is not supported here. */
  readonly enclosing?: readonly (readonly ScopeColumn[])[];
}
