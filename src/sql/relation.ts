/**
 * A relation being planned: its plan node, the scope expressions above it resolve names in
 * (`scope[i]` is row column i), and a key when one is derivable. The builders below keep the
 * three consistent — column types, NULL-ability and keys — for filters, projections, joins and
 * semi-joins, so the clause planners only decide what to build.
 */
import type { Row } from '../dataflow/change.ts';
import type { Value } from '../decode/value.ts';
import type { PlanColumn, PlanNode } from './plan.ts';
import type { Compiled, RowFn, ScopeColumn } from './scope.ts';

export interface Planned {
  readonly node: PlanNode;
  readonly scope: ScopeColumn[];
  /** Output columns forming a key, or undefined when none is derivable. */
  readonly key: number[] | undefined;
  /** `*` order (FROM order) of the scope's columns when joins put them in another order. */
  readonly starOrder?: readonly number[];
  /**
   * For a select aggregated only by its correlation keys (a decorrelated scalar subquery): its
   * output row over no input rows (count 0, other aggregates NULL), the keys' places NULL.
   */
  readonly emptyRow?: () => Row;
}

export function columnsOf(scope: readonly ScopeColumn[]): PlanColumn[] {
  return scope.map((c) => ({ name: c.name, type: c.type, ...(c.notNull === true ? { notNull: true } : {}) }));
}

/** Keeps the rows where `predicate` is true; `notNull` columns are known non-NULL after it. */
export function filterRel(rel: Planned, predicate: RowFn, notNull: readonly number[] = []): Planned {
  const scope = notNull.length === 0 ? rel.scope : markNotNull(rel.scope, notNull);
  return {
    ...rel,
    node: { kind: 'filter', input: rel.node, predicate, columns: columnsOf(scope) },
    scope,
  };
}

export function markNotNull(scope: readonly ScopeColumn[], columns: readonly number[]): ScopeColumn[] {
  const set = new Set(columns);
  return scope.map((c, i) => (set.has(i) && c.notNull !== true ? { ...c, notNull: true } : c));
}

/** The relation's rows under a new scope of the same width (renamed, requalified). */
export function rescope(rel: Planned, scope: ScopeColumn[]): Planned {
  return { ...rel, scope, node: rel.node };
}

export type JoinKind = 'inner' | 'left' | 'right' | 'full';

export interface JoinSpec {
  readonly left: Planned;
  readonly right: Planned;
  readonly kind: JoinKind;
  /** Equi keys, already of one type pairwise; empty for a cross join. */
  readonly leftKey: readonly Compiled[];
  readonly rightKey: readonly Compiled[];
}

/**
 * A join node. Keys: an inner join of keyed inputs is keyed by both keys; when one side's key
 * is among its equi-key columns (each row of the other side meets at most one), the other
 * side's key is the join's (inner joins, and outer joins that keep that other side). NULLs: an
 * inner join's plain key columns are non-NULL after it; the padded side of an outer join may be.
 */
export function joinRel(spec: JoinSpec): Planned {
  const { left, right, kind } = spec;
  const width = left.scope.length;
  const lcols = spec.leftKey.map((k) => k.column);
  const rcols = spec.rightKey.map((k) => k.column);
  let ls = left.scope;
  let rs = right.scope;
  if (kind === 'inner') {
    ls = markNotNull(
      ls,
      lcols.filter((c): c is number => c !== undefined),
    );
    rs = markNotNull(
      rs,
      rcols.filter((c): c is number => c !== undefined),
    );
  }
  if (kind === 'left' || kind === 'full') rs = rs.map(nullable);
  if (kind === 'right' || kind === 'full') ls = ls.map(nullable);
  const scope = [...ls, ...rs];
  const rightUnique = isSubset(right.key, rcols);
  const leftUnique = isSubset(left.key, lcols);
  let key: number[] | undefined;
  if (kind === 'inner' && left.key && right.key) key = [...left.key, ...right.key.map((k) => k + width)];
  if ((kind === 'inner' || kind === 'left') && rightUnique && left.key) key = [...left.key];
  else if ((kind === 'inner' || kind === 'right') && leftUnique && right.key)
    key = right.key.map((k) => k + width);
  const starOrder =
    left.starOrder || right.starOrder
      ? [
          ...(left.starOrder ?? ls.map((_, i) => i)),
          ...(right.starOrder ?? rs.map((_, i) => i)).map((i) => i + width),
        ]
      : undefined;
  return {
    node: {
      kind: 'join',
      joinType: kind,
      left: left.node,
      right: right.node,
      leftKey: spec.leftKey.map((k) => k.fn),
      rightKey: spec.rightKey.map((k) => k.fn),
      ...(leftUnique ? { leftUnique: true as const } : {}),
      ...(rightUnique ? { rightUnique: true as const } : {}),
      columns: columnsOf(scope),
    },
    scope,
    key,
    ...(starOrder ? { starOrder } : {}),
  };
}

function nullable(c: ScopeColumn): ScopeColumn {
  if (c.notNull !== true) return c;
  const { notNull: _drop, ...rest } = c;
  return rest;
}

/** Whether the key exists and each of its columns is a plain equi-key column. */
function isSubset(key: readonly number[] | undefined, cols: readonly (number | undefined)[]): boolean {
  return key !== undefined && key.length > 0 && key.every((k) => cols.includes(k));
}

export interface SemiSpec {
  readonly left: Planned;
  readonly right: Planned;
  readonly mode: 'semi' | 'anti';
  readonly leftKey: readonly Compiled[];
  readonly rightKey: readonly Compiled[];
  /** Over `[...leftRow, ...rightRow]`. */
  readonly residual?: RowFn;
}

/** The left relation, filtered by a match (or its absence) on the right: its scope and key. */
export function semiRel(spec: SemiSpec): Planned {
  const { left } = spec;
  const scope =
    spec.mode === 'semi'
      ? markNotNull(
          left.scope,
          spec.leftKey.flatMap((k) => (k.column === undefined ? [] : [k.column])),
        )
      : left.scope;
  return {
    ...left,
    scope,
    node: {
      kind: 'semi-join',
      mode: spec.mode,
      left: left.node,
      right: spec.right.node,
      leftKey: spec.leftKey.map((k) => k.fn),
      rightKey: spec.rightKey.map((k) => k.fn),
      ...(spec.residual ? { residual: spec.residual } : {}),
      columns: columnsOf(scope),
    },
  };
}

/** A projection to `exprs`, named and scoped by `scope` (same length). */
export function projectRel(
  rel: Planned,
  exprs: readonly Compiled[],
  scope: ScopeColumn[],
  key: number[] | undefined,
): Planned {
  return {
    node: {
      kind: 'project',
      input: rel.node,
      exprs: exprs.map((e) => e.fn),
      copies: exprs.map((e) => e.column ?? null),
      columns: columnsOf(scope),
    },
    scope,
    key,
  };
}

/** Keeps the first `width` columns (dropping columns appended for subqueries). */
export function truncateRel(rel: Planned, width: number): Planned {
  if (rel.scope.length === width) return rel;
  const scope = rel.scope.slice(0, width);
  const exprs: Compiled[] = scope.map((c, i) => ({
    type: c.type,
    fn: (r: readonly Value[]) => r[i] ?? null,
    column: i,
  }));
  const key = rel.key?.every((k) => k < width) ? rel.key : undefined;
  return {
    ...projectRel(rel, exprs, scope, key),
    ...(rel.starOrder ? { starOrder: rel.starOrder.filter((i) => i < width) } : {}),
  };
}

/** A plain reference to column `i` of a scope. */
export function columnRef(scope: readonly ScopeColumn[], i: number): Compiled {
  const c = scope[i]!;
  return {
    type: c.type,
    fn: (r) => r[i] ?? null,
    column: i,
    ...(c.notNull === true ? { notNull: true } : {}),
  };
}
