/**
 * GROUP BY, aggregate calls and HAVING: the aggregate node, then HAVING as a filter over its
 * output. Above it, expressions resolve grouped expressions and aggregate calls to its output
 * columns (`substitute`); a column not grouped is an error, as in PostgreSQL. Subqueries in
 * HAVING and in the select list are joined to the aggregate's output (subquery.ts).
 */
import type { FuncCall, Node, SortBy } from 'libpg-query';
import type { Value } from '../decode/value.ts';
import { locationOf, nodeKind, strings, subLinks } from './ast.ts';
import { aggregateResultType } from './aggregate-types.ts';
import { coerce } from './coerce.ts';
import { compileExpr } from './compile-expr.ts';
import { AGGREGATES } from './functions.ts';
import type { AggregateCall, AggregateName } from './plan.ts';
import { exprContext, type PlannerContext } from './plan-from.ts';
import { columnsOf, filterRel, type Planned } from './relation.ts';
import { nodeKey, type Compiled, type ExprContext, type ScopeColumn } from './scope.ts';
import { sqlType } from './sql-type.ts';
import { withSubqueryColumns } from './subquery.ts';
import { invalid, unsupported, type ViewSource } from './view-error.ts';

export interface Target {
  readonly node: Node;
  readonly name: string;
}

/** Aggregate calls (not nested in another aggregate), deduplicated by structure. */
export function collectAggregates(nodes: readonly Node[]): Node[] {
  const found = new Map<string, Node>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    const f = o['FuncCall'] as FuncCall | undefined;
    if (f && !f.over && AGGREGATES.has(aggregateName(f))) {
      found.set(nodeKey(o), o as Node);
      return;
    }
    if (o['SubLink'] || o['RangeSubselect']) return;
    Object.values(o).forEach(walk);
  };
  nodes.forEach(walk);
  return [...found.values()];
}

function aggregateName(f: FuncCall): string {
  return strings(f.funcname)
    .filter((s) => s !== 'pg_catalog')
    .join('.')
    .toLowerCase();
}

export interface AggregatePlan {
  /** The aggregate's output (groups, then aggregates, then any subquery columns), HAVING applied. */
  readonly rel: Planned;
  /** For the select list: grouped expressions and aggregates resolve to the output. */
  readonly ctx: ExprContext;
  readonly key: number[];
  /** The output row of a group without rows: groups NULL, count 0, other aggregates NULL. */
  readonly emptyInput: () => Value[];
  readonly hasHaving: boolean;
}

export function planAggregate(
  stmt: { groupClause?: Node[]; havingClause?: Node },
  input: Planned,
  targets: readonly Target[],
  aggNodes: readonly Node[],
  pc: PlannerContext,
): AggregatePlan {
  const view = pc.view;
  const inScope = input.scope;
  const inCtx = exprContext(pc, inScope, 'GROUP BY');
  const groupNodes = (stmt.groupClause ?? []).map((g) => {
    const [k, b] = nodeKind(g);
    if (k === 'GroupingSet') throw unsupported(view, locationOf(g), 'GROUPING SETS / ROLLUP / CUBE');
    const ival = k === 'A_Const' ? (b['ival'] as { ival?: number } | undefined) : undefined;
    if (ival) {
      const t = targets[(ival.ival ?? 0) - 1];
      if (!t) throw invalid(view, locationOf(g), `GROUP BY position ${ival.ival ?? 0} is not in select list`);
      return t.node;
    }
    if (k === 'ColumnRef') {
      const parts = strings(b['fields'] as Node[]);
      const alias = targets.find((t) => t.name === parts[0]);
      if (parts.length === 1 && alias && !inScope.some((c) => c.name === parts[0])) return alias.node;
    }
    if (subLinks([g]).length > 0) throw unsupported(view, locationOf(g), 'a subquery in GROUP BY');
    return g;
  });
  const groups = groupNodes.map((g) => compileExpr(g, inCtx));
  const aggCtx: ExprContext = { ...inCtx, clause: 'aggregate function calls' };
  const aggregates: AggregateCall[] = aggNodes.map((n) =>
    aggregateCall(nodeKind(n)[1] as FuncCall, aggCtx, locationOf(n)),
  );
  const scope: ScopeColumn[] = [
    ...groups.map((g, i) => ({
      qualifier: null,
      name: `group${i}`,
      type: g.type,
      hiddenUnqualified: true,
      ...(g.notNull === true ? { notNull: true } : {}),
    })),
    ...aggregates.map((a) => ({
      qualifier: null,
      name: a.name,
      type: a.resultType,
      hiddenUnqualified: true,
      ...(a.name === 'count' ? { notNull: true } : {}),
    })),
  ];
  let rel: Planned = {
    node: {
      kind: 'aggregate',
      input: input.node,
      groupBy: groups.map((g) => g.fn),
      aggregates,
      columns: columnsOf(scope),
    },
    scope,
    key: groups.map((_, i) => i),
  };
  const groupKeys = groupNodes.map(nodeKey);
  const aggKeys = aggNodes.map(nodeKey);
  const at = (i: number): Compiled => ({
    type: scope[i]!.type,
    fn: (r) => r[i] ?? null,
    column: i,
    ...(scope[i]!.notNull === true ? { notNull: true } : {}),
  });
  const grouped = (n: Node): Compiled | undefined => {
    const key = nodeKey(n);
    const g = groupKeys.indexOf(key);
    if (g >= 0) return at(g);
    const a = aggKeys.indexOf(key);
    if (a >= 0) return at(groups.length + a);
    if (nodeKind(n)[0] === 'ColumnRef') {
      const c = compileExpr(n, inCtx);
      const gi = groups.findIndex((gr) => gr.column !== undefined && gr.column === c.column);
      if (gi >= 0) return at(gi);
    }
    return undefined;
  };
  // Subqueries in HAVING and the select list: columns joined to the aggregate's output.
  const withSubs = withSubqueryColumns(
    rel,
    [...(stmt.havingClause ? [stmt.havingClause] : []), ...targets.map((t) => t.node)],
    pc,
    { correlated: false },
  );
  rel = withSubs.rel;
  const substitute = (n: Node): Compiled | undefined => withSubs.substitute(n) ?? grouped(n);
  const ctx: ExprContext = {
    view,
    scope: inScope,
    substitute,
    grouped: true,
    clause: 'the select list',
    enclosing: pc.enclosing,
  };
  if (stmt.havingClause) {
    const hctx = { ...ctx, clause: 'HAVING' };
    const predicate = coerce(compileExpr(stmt.havingClause, hctx), sqlType('bool'), {
      ctx: hctx,
      location: locationOf(stmt.havingClause),
      explicit: false,
    }).fn;
    rel = filterRel(rel, predicate);
  }
  const width = rel.scope.length;
  const emptyInput = (): Value[] => {
    const row = new Array<Value>(width).fill(null);
    aggregates.forEach((a, i) => {
      if (a.name === 'count') row[groups.length + i] = 0n;
    });
    return row;
  };
  return { rel, ctx, key: groups.map((_, i) => i), emptyInput, hasHaving: stmt.havingClause !== undefined };
}

function aggregateCall(f: FuncCall, ctx: ExprContext, loc: number | undefined): AggregateCall {
  const view = ctx.view;
  let name = aggregateName(f) as AggregateName | 'every';
  if (name === 'every') name = 'bool_and';
  if (f.agg_filter)
    throw unsupported(
      view,
      locationOf(f.agg_filter),
      'FILTER (WHERE …) on aggregates',
      'Use CASE inside the aggregate.',
    );
  if (f.agg_within_group) throw unsupported(view, loc, 'WITHIN GROUP');
  if (subLinks(f.args ?? []).length > 0) throw unsupported(view, loc, 'a subquery inside an aggregate');
  const inner: ExprContext = {
    ...ctx,
    substitute: (n) =>
      collectAggregates([n]).length > 0 && nodeKind(n)[0] === 'FuncCall' ? failNested(view, n) : undefined,
  };
  const args = (f.args ?? []).map((a) => compileExpr(a, inner));
  if (f.agg_order && name !== 'string_agg') throw unsupported(view, loc, `ORDER BY inside ${name}()`);
  if (f.agg_star && name !== 'count') throw invalid(view, loc, `${name}(*) does not exist`);
  const expected = f.agg_star ? 0 : name === 'string_agg' ? 2 : 1;
  if (args.length !== expected) throw invalid(view, loc, `function ${name} takes ${expected} argument(s)`);
  if (name === 'string_agg' && f.agg_distinct) throw unsupported(view, loc, 'string_agg(DISTINCT …)');
  const text = sqlType('text');
  const fixed =
    name === 'string_agg'
      ? args.map((a, i) => coerce(a, text, { ctx, location: locationOf(f.args?.[i]), explicit: false }))
      : name === 'bool_and' || name === 'bool_or'
        ? args.map((a) => coerce(a, sqlType('bool'), { ctx, location: loc, explicit: false }))
        : args.map((a) =>
            a.type.kind === 'unknown' ? coerce(a, text, { ctx, location: loc, explicit: false }) : a,
          );
  const argType = fixed[0]?.type;
  const resultType = aggregateResultType(name, argType);
  if (!resultType) throw invalid(view, loc, `function ${name}(${argType?.typeName ?? ''}) does not exist`);
  return {
    name,
    star: f.agg_star === true,
    distinct: f.agg_distinct === true,
    args: fixed.map((a) => a.fn),
    argType,
    resultType,
    ...(name === 'string_agg' ? stringAggOrder(f, fixed[1]!, view, loc) : {}),
  };
}

/** string_agg keeps values ordered by the value itself; the delimiter must be a constant. */
function stringAggOrder(
  f: FuncCall,
  delimiter: Compiled,
  view: ViewSource,
  loc: number | undefined,
): { delimiter: string; descending: boolean } {
  if (!delimiter.constant || typeof delimiter.constant.value !== 'string') {
    throw unsupported(view, locationOf(f.args?.[1]), 'string_agg with a non-constant delimiter');
  }
  const order = f.agg_order ?? [];
  const sb = order[0] ? (nodeKind(order[0])[1] as SortBy) : undefined;
  if (order.length > 1 || (sb && nodeKey(sb.node) !== nodeKey(f.args?.[0]))) {
    throw unsupported(
      view,
      loc,
      'string_agg ordered by anything but its own value',
      "Use string_agg(x, ',' ORDER BY x).",
    );
  }
  return { delimiter: delimiter.constant.value, descending: sb?.sortby_dir === 'SORTBY_DESC' };
}

function failNested(view: ViewSource, n: Node): never {
  throw invalid(view, locationOf(n), 'aggregate function calls cannot be nested');
}
