/**
 * ORDER BY … LIMIT n [OFFSET m] → a top-n over the select's output (ORDER BY alone is ignored: a
 * view is a table, its rows have no order), and sort keys for top-n and window functions.
 * ORDER BY may name output columns (by name or position) or repeat select-list expressions.
 */
import type { Node, ResTarget, SelectStmt, SortBy } from 'libpg-query';
import { locationOf, nodeKind } from './ast.ts';
import { compileExpr } from './compile-expr.ts';
import type { PlanNode, SortKey } from './plan.ts';
import type { Planned } from './relation.ts';
import { nodeKey, type Compiled, type ExprContext } from './scope.ts';
import { invalid, unsupported, type ViewSource } from './view-error.ts';

export function sortKey(s: Node, ctx: ExprContext): SortKey {
  const sb = nodeKind(s)[1] as SortBy;
  const descending = sb.sortby_dir === 'SORTBY_DESC';
  if (sb.useOp) throw unsupported(ctx.view, locationOf(sb.node), 'ORDER BY … USING');
  const nullsFirst =
    sb.sortby_nulls === 'SORTBY_NULLS_FIRST'
      ? true
      : sb.sortby_nulls === 'SORTBY_NULLS_LAST'
        ? false
        : descending;
  const c = compileExpr(sb.node!, ctx);
  return { fn: c.fn, descending, nullsFirst };
}

/** An integer constant of LIMIT/OFFSET; undefined for none (or `LIMIT ALL`). */
function intConst(view: ViewSource, n: Node | undefined, what: string): number | undefined {
  if (!n) return undefined;
  const [k, b] = nodeKind(n);
  if (k === 'A_Const' && b['isnull'] === true) return undefined;
  if (k !== 'A_Const' || b['ival'] === undefined)
    throw unsupported(view, locationOf(n), `${what} that is not an integer constant`);
  return (b['ival'] as { ival?: number }).ival ?? 0;
}

export function planTopN(stmt: SelectStmt, planned: Planned, view: ViewSource): Planned {
  const hasLimit = stmt.limitCount !== undefined || stmt.limitOffset !== undefined;
  if (!hasLimit) return planned;
  if (stmt.limitOption === 'LIMIT_OPTION_WITH_TIES')
    throw unsupported(view, locationOf(stmt.limitCount), 'FETCH … WITH TIES');
  if (!stmt.sortClause?.length)
    throw unsupported(
      view,
      locationOf(stmt.limitCount ?? stmt.limitOffset),
      'LIMIT/OFFSET without ORDER BY',
      'Add ORDER BY so the rows kept are well defined.',
    );
  const limit = intConst(view, stmt.limitCount, 'LIMIT');
  const offset = intConst(view, stmt.limitOffset, 'OFFSET') ?? 0;
  if (limit === undefined) throw unsupported(view, locationOf(stmt.limitOffset), 'OFFSET without LIMIT');
  const outScope = planned.scope;
  const targets = stmt.targetList ?? [];
  const at = (i: number): Compiled => ({ type: outScope[i]!.type, fn: (r) => r[i] ?? null, column: i });
  const substitute = (n: Node): Compiled | undefined => {
    const [k, b] = nodeKind(n);
    if (k === 'A_Const' && b['ival'] !== undefined) {
      const i = ((b['ival'] as { ival?: number }).ival ?? 0) - 1;
      if (!outScope[i])
        throw invalid(view, locationOf(n), `ORDER BY position ${i + 1} is not in select list`);
      return at(i);
    }
    const key = nodeKey(n);
    const i = targets.findIndex((t) => nodeKey((nodeKind(t)[1] as ResTarget).val) === key);
    return i >= 0 && outScope[i] ? at(i) : undefined;
  };
  const ctx: ExprContext = { view, scope: outScope, substitute, clause: 'ORDER BY' };
  const orderBy = stmt.sortClause.map((s) => sortKey(s, ctx));
  const node: PlanNode = {
    kind: 'top-n',
    input: planned.node,
    partitionBy: [],
    orderBy,
    limit,
    offset,
    rowNumber: false,
    columns: planned.node.columns,
  };
  return { node, scope: planned.scope, key: planned.key };
}
