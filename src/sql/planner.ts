/**
 * `planView`: SQL text → validated logical plan (plan.ts). Everything outside the supported
 * subset is refused here, when the config is loaded, with the construct and its line:column.
 *
 *   parse (libpg-query) ─► FROM (plan-from.ts) ─► WHERE ─► GROUP BY/aggregates ─► HAVING
 *                       ─► select list ─► DISTINCT ─► ORDER BY … LIMIT (top-n) ─► UNION [ALL]
 *
 * ORDER BY without LIMIT is accepted and ignored: a view is a table, rows have no order.
 */
import type { FuncCall, Node, ResTarget, SelectStmt, SortBy } from 'libpg-query';
import type { ColumnSchema, TableSchema } from '../decode/table-schema.ts';
import { locationOf, nodeKind, strings } from './ast.ts';
import { aggregateResultType } from './aggregate-types.ts';
import { coerce, unifyCompiled } from './coerce.ts';
import { compileExpr } from './compile-expr.ts';
import { AGGREGATES } from './functions.ts';
import { parseView } from './parse.ts';
import { conjuncts, planFrom, type Planned, type PlannerContext, type RowNumberLimit } from './plan-from.ts';
import type { AggregateCall, AggregateName, PlanNode, SortKey, ViewPlan } from './plan.ts';
import { nodeKey, type Compiled, type ExprContext, type ReadColumns, type ScopeColumn } from './scope.ts';
import { sqlType, typeOid } from './sql-type.ts';
import { invalid, unsupported, type ViewSource } from './view-error.ts';

export interface PlanViewOptions {
  readonly name: string;
  readonly sql: string;
  /** Looks up a base table; `schema` is null when the SQL does not qualify the name. */
  readonly catalog: (schema: string | null, table: string) => TableSchema | undefined;
}

export async function planView(opts: PlanViewOptions): Promise<ViewPlan> {
  const view: ViewSource = { name: opts.name, sql: opts.sql };
  const stmt = await parseView(view);
  const inputs: TableSchema[] = [];
  const reads: ReadColumns = new Map();
  const pc: PlannerContext = {
    view,
    catalog: opts.catalog,
    inputs,
    reads,
    planSelect: (s, limit, rnName) => planSelect(s, pc, limit, rnName),
  };
  const planned = planSelect(stmt, pc, undefined);
  const seen = new Set<string>();
  for (const c of planned.scope) {
    if (seen.has(c.name))
      throw invalid(
        view,
        undefined,
        `column "${c.name}" specified more than once`,
        'Give each output column its own name with AS.',
      );
    seen.add(c.name);
  }
  const key = planned.key ?? [];
  const outputColumns: ColumnSchema[] = planned.scope.map((c, i) => ({
    name: c.name,
    typeOid: typeOid(c.type),
    typeMod: -1,
    typeName: c.type.kind === 'unknown' ? 'text' : c.type.typeName,
    isKey: key.includes(i),
    nullable: true,
  }));
  return { name: opts.name, outputColumns, key, inputs, reads, root: planned.node };
}

function planSelect(
  stmt: SelectStmt,
  pc: PlannerContext,
  rnLimit: number | undefined,
  rnName?: string,
): Planned {
  const view = pc.view;
  if (stmt.withClause)
    throw unsupported(
      view,
      stmt.withClause.location,
      'WITH (common table expressions)',
      'Inline the CTE as a subquery in FROM.',
    );
  if (stmt.intoClause) throw unsupported(view, undefined, 'SELECT INTO');
  if (stmt.lockingClause) throw unsupported(view, locationOf(stmt.lockingClause[0]), 'FOR UPDATE/SHARE');
  if (stmt.valuesLists) throw unsupported(view, undefined, 'VALUES lists');
  let planned =
    stmt.op && stmt.op !== 'SETOP_NONE' ? planSetOp(stmt, pc) : planSimple(stmt, pc, rnLimit, rnName);
  planned = planTopN(stmt, planned, view);
  return planned;
}

function planSetOp(stmt: SelectStmt, pc: PlannerContext): Planned {
  if (stmt.op !== 'SETOP_UNION')
    throw unsupported(
      pc.view,
      undefined,
      `${String(stmt.op).replace('SETOP_', '')}`,
      'Only UNION and UNION ALL are supported.',
    );
  const parts = [planSelect(stmt.larg!, pc, undefined), planSelect(stmt.rarg!, pc, undefined)];
  const width = parts[0]!.scope.length;
  if (parts[1]!.scope.length !== width)
    throw invalid(pc.view, undefined, 'each UNION query must have the same number of columns');
  const ctx: ExprContext = { view: pc.view, scope: [], clause: 'UNION' };
  const types = parts[0]!.scope.map((_c, i) => {
    const cols = parts.map((p) => ({ type: p.scope[i]!.type, fn: () => null }) as Compiled);
    return unifyCompiled(cols, [], ctx, 'UNION', undefined)[0]!.type;
  });
  const inputs = parts.map((p) => {
    if (p.scope.every((c, i) => c.type.typeName === types[i]!.typeName)) return p.node;
    const exprs = p.scope.map(
      (c, i) =>
        coerce({ type: c.type, fn: (r) => r[i] ?? null }, types[i]!, {
          ctx,
          location: undefined,
          explicit: false,
        }).fn,
    );
    return {
      kind: 'project',
      input: p.node,
      exprs,
      columns: types.map((t, i) => ({ name: p.scope[i]!.name, type: t })),
    } satisfies PlanNode;
  });
  const columns = types.map((t, i) => ({ name: parts[0]!.scope[i]!.name, type: t }));
  const scope = columns.map((c) => ({ qualifier: null, ...c }));
  let node: PlanNode = { kind: 'union-all', inputs, columns };
  if (!stmt.all) node = { kind: 'distinct', input: node, columns };
  return { node, scope, key: stmt.all ? undefined : columns.map((_, i) => i) };
}

/** `rn <= N`, `rn < N`, `rn = 1` conjuncts of WHERE: the row_number() pattern's limits. */
function rowNumberLimits(where: Node | undefined): RowNumberLimit[] {
  if (!where) return [];
  const out: RowNumberLimit[] = [];
  for (const c of conjuncts(where)) {
    const [k, b] = nodeKind(c);
    if (k !== 'A_Expr' || b['kind'] !== 'AEXPR_OP') continue;
    const op = strings(b['name'] as Node[]).join();
    const [lk, lb] = nodeKind(b['lexpr'] as Node);
    const [rk, rb] = nodeKind(b['rexpr'] as Node);
    if (lk !== 'ColumnRef' || rk !== 'A_Const') continue;
    const n = (rb['ival'] as { ival?: number } | undefined)?.ival;
    if (n === undefined) continue;
    const limit = op === '<=' ? n : op === '<' ? n - 1 : op === '=' && n === 1 ? 1 : undefined;
    if (limit === undefined) continue;
    const parts = strings(lb['fields'] as Node[]);
    out.push({
      qualifier: parts.length > 1 ? parts[parts.length - 2]! : null,
      name: parts[parts.length - 1]!,
      limit,
    });
  }
  return out;
}

function planSimple(
  stmt: SelectStmt,
  pc: PlannerContext,
  rnLimit: number | undefined,
  rnName: string | undefined,
): Planned {
  const view = pc.view;
  if (stmt.windowClause) throw unsupported(view, undefined, 'WINDOW clauses');
  const from = planFrom(stmt.fromClause ?? [], pc, rowNumberLimits(stmt.whereClause));
  let node = from.node;
  let key = from.key;
  const inScope = from.scope;
  const targets = expandTargets(stmt.targetList ?? [], inScope, view);
  if (stmt.whereClause) {
    const ctx: ExprContext = { view, scope: inScope, clause: 'WHERE' };
    const predicate = coerce(compileExpr(stmt.whereClause, ctx), sqlType('bool'), {
      ctx,
      location: locationOf(stmt.whereClause),
      explicit: false,
    }).fn;
    node = { kind: 'filter', input: node, predicate, columns: node.columns };
  }
  const aggCalls = collectAggregates([
    ...targets.map((t) => t.node),
    ...(stmt.havingClause ? [stmt.havingClause] : []),
  ]);
  const grouping = (stmt.groupClause?.length ?? 0) > 0 || aggCalls.length > 0;
  let outCtx: ExprContext = { view, scope: inScope, clause: 'the select list' };
  if (grouping) {
    const agg = planAggregate(stmt, node, inScope, targets, aggCalls, view);
    node = agg.node;
    outCtx = agg.ctx;
    key = agg.key;
  } else if (stmt.havingClause) {
    throw unsupported(view, locationOf(stmt.havingClause), 'HAVING without GROUP BY or aggregates');
  }
  // row_number() OVER (…) in a subquery filtered outside by rn <= N.
  const rnIndex = targets.findIndex(
    (t) => nodeKind(t.node)[0] === 'FuncCall' && (nodeKind(t.node)[1] as FuncCall).over,
  );
  let rnColumn: number | undefined;
  if (rnIndex >= 0) {
    const f = nodeKind(targets[rnIndex]!.node)[1] as FuncCall;
    const name = strings(f.funcname).join('.');
    const loc = locationOf(targets[rnIndex]!.node);
    const hint =
      'Only row_number() OVER (PARTITION BY … ORDER BY …) in a FROM subquery, filtered by rn <= N outside, is supported.';
    if (
      name !== 'row_number' ||
      grouping ||
      targets.filter((t) => nodeKind(t.node)[0] === 'FuncCall' && (nodeKind(t.node)[1] as FuncCall).over)
        .length > 1
    ) {
      throw unsupported(view, loc, `window function ${name}() in this form`, hint);
    }
    if (rnLimit === undefined || rnName !== targets[rnIndex]!.name)
      throw unsupported(view, loc, 'row_number() without an outer filter rn <= N', hint);
    const over = f.over!;
    if (!over.orderClause?.length) throw unsupported(view, loc, 'row_number() without ORDER BY', hint);
    const ctx: ExprContext = { view, scope: inScope, clause: 'window definitions' };
    const partitionBy = (over.partitionClause ?? []).map((p) => compileExpr(p, ctx).fn);
    const orderBy = (over.orderClause ?? []).map((s) => sortKey(s, ctx));
    rnColumn = inScope.length;
    node = {
      kind: 'top-n',
      input: node,
      partitionBy,
      orderBy,
      limit: rnLimit,
      offset: 0,
      rowNumber: true,
      columns: [...node.columns, { name: 'row_number', type: sqlType('int8') }],
    };
  }
  const compiled = targets.map((t, i) =>
    i === rnIndex
      ? ({ type: sqlType('int8'), fn: (r: readonly unknown[]) => r[rnColumn!] ?? null } as Compiled)
      : compileExpr(t.node, outCtx),
  );
  const columns = targets.map((t, i) => ({
    name: t.name,
    type: compiled[i]!.type.kind === 'unknown' ? sqlType('text') : compiled[i]!.type,
  }));
  const scope: ScopeColumn[] = columns.map((c) => ({ qualifier: null, ...c }));
  const newKey =
    key?.every((k) => compiled.some((c) => c.column === k)) && rnIndex < 0
      ? key.map((k) => compiled.findIndex((c) => c.column === k))
      : undefined;
  node = {
    kind: 'project',
    input: node,
    exprs: compiled.map((c) => c.fn),
    copies: compiled.map((c) => c.column ?? null),
    columns,
  };
  if (stmt.distinctClause) {
    if (stmt.distinctClause.some((d) => Object.keys(d).length > 0))
      throw unsupported(view, locationOf(stmt.distinctClause[0]), 'DISTINCT ON');
    node = { kind: 'distinct', input: node, columns };
    return { node, scope, key: columns.map((_, i) => i) };
  }
  return { node, scope, key: newKey };
}

interface Target {
  readonly node: Node;
  readonly name: string;
}

/** Expands `*` and `t.*` and names each output column as PostgreSQL would. */
function expandTargets(list: readonly Node[], scope: readonly ScopeColumn[], view: ViewSource): Target[] {
  const out: Target[] = [];
  for (const item of list) {
    const rt = nodeKind(item)[1] as ResTarget;
    const val = rt.val!;
    const [k, b] = nodeKind(val);
    const fields = k === 'ColumnRef' ? strings(b['fields'] as Node[]) : [];
    if (fields[fields.length - 1] === '*') {
      const q = fields.length > 1 ? fields[fields.length - 2]! : null;
      const cols = scope.filter((c) => (q === null ? !c.hiddenStar : c.qualifier === q));
      if (q !== null && cols.length === 0)
        throw invalid(view, rt.location, `missing FROM-clause entry for table "${q}"`);
      for (const c of cols) {
        const ref = {
          ColumnRef: {
            fields: [
              ...(c.qualifier ? [{ String: { sval: c.qualifier } }] : []),
              { String: { sval: c.name } },
            ],
            location: rt.location,
          },
        } as Node;
        out.push({ node: ref, name: c.name });
      }
      continue;
    }
    out.push({ node: val, name: rt.name ?? defaultName(val) });
  }
  return out;
}

function defaultName(n: Node): string {
  const [k, b] = nodeKind(n);
  if (k === 'ColumnRef') return strings(b['fields'] as Node[]).pop() ?? '?column?';
  if (k === 'FuncCall') return strings(b['funcname'] as Node[]).pop() ?? '?column?';
  if (k === 'TypeCast') {
    const inner = defaultName(b['arg'] as Node);
    return inner !== '?column?'
      ? inner
      : (strings((b['typeName'] as { names?: Node[] }).names).pop() ?? '?column?');
  }
  if (k === 'CaseExpr') return 'case';
  if (k === 'CoalesceExpr') return 'coalesce';
  if (k === 'MinMaxExpr') return b['op'] === 'IS_GREATEST' ? 'greatest' : 'least';
  if (k === 'A_Expr' && b['kind'] === 'AEXPR_NULLIF') return 'nullif';
  return '?column?';
}

/** Aggregate calls (not nested in another aggregate), deduplicated by structure. */
function collectAggregates(nodes: readonly Node[]): Node[] {
  const found = new Map<string, Node>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    const f = o['FuncCall'] as FuncCall | undefined;
    if (
      f &&
      !f.over &&
      AGGREGATES.has(
        strings(f.funcname)
          .filter((s) => s !== 'pg_catalog')
          .join('.'),
      )
    ) {
      found.set(nodeKey(o), o as Node);
      return;
    }
    if (o['SubLink'] || o['RangeSubselect']) return;
    Object.values(o).forEach(walk);
  };
  nodes.forEach(walk);
  return [...found.values()];
}

function planAggregate(
  stmt: SelectStmt,
  input: PlanNode,
  inScope: ScopeColumn[],
  targets: Target[],
  aggNodes: Node[],
  view: ViewSource,
) {
  const inCtx: ExprContext = { view, scope: inScope, clause: 'GROUP BY' };
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
    return g;
  });
  const groups = groupNodes.map((g) => compileExpr(g, inCtx));
  const aggCtx: ExprContext = { view, scope: inScope, clause: 'aggregate function calls' };
  const aggregates: AggregateCall[] = aggNodes.map((n) =>
    aggregateCall(nodeKind(n)[1] as FuncCall, aggCtx, locationOf(n)),
  );
  const columns = [
    ...groups.map((g, i) => ({ name: `group${i}`, type: g.type })),
    ...aggregates.map((a) => ({ name: a.name, type: a.resultType })),
  ];
  const node: PlanNode = { kind: 'aggregate', input, groupBy: groups.map((g) => g.fn), aggregates, columns };
  const groupKeys = groupNodes.map(nodeKey);
  const aggKeys = aggNodes.map(nodeKey);
  const at = (i: number): Compiled => ({ type: columns[i]!.type, fn: (r) => r[i] ?? null, column: i });
  const substitute = (n: Node): Compiled | undefined => {
    const key = nodeKey(n);
    const g = groupKeys.indexOf(key);
    if (g >= 0) return at(g);
    const a = aggKeys.indexOf(key);
    if (a >= 0) return at(groups.length + a);
    if (nodeKind(n)[0] === 'ColumnRef') {
      const c = compileExpr(n, { view, scope: inScope, clause: 'GROUP BY' });
      const gi = groups.findIndex((gr) => gr.column !== undefined && gr.column === c.column);
      if (gi >= 0) return at(gi);
    }
    return undefined;
  };
  const ctx: ExprContext = { view, scope: inScope, substitute, grouped: true, clause: 'the select list' };
  let out: PlanNode = node;
  if (stmt.havingClause) {
    const hctx = { ...ctx, clause: 'HAVING' };
    const predicate = coerce(compileExpr(stmt.havingClause, hctx), sqlType('bool'), {
      ctx: hctx,
      location: locationOf(stmt.havingClause),
      explicit: false,
    }).fn;
    out = { kind: 'filter', input: node, predicate, columns };
  }
  return { node: out, ctx, key: groups.map((_, i) => i) };
}

function aggregateCall(f: FuncCall, ctx: ExprContext, loc: number | undefined): AggregateCall {
  const view = ctx.view;
  let name = strings(f.funcname)
    .filter((s) => s !== 'pg_catalog')
    .join('.') as AggregateName | 'every';
  if (name === 'every') name = 'bool_and';
  if (f.agg_filter)
    throw unsupported(
      view,
      locationOf(f.agg_filter),
      'FILTER (WHERE …) on aggregates',
      'Use CASE inside the aggregate.',
    );
  if (f.agg_within_group) throw unsupported(view, loc, 'WITHIN GROUP');
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

function sortKey(s: Node, ctx: ExprContext): SortKey {
  const sb = nodeKind(s)[1] as SortBy;
  const descending = sb.sortby_dir === 'SORTBY_DESC';
  if (sb.useOp) throw unsupported(ctx.view, locationOf(sb.node), 'ORDER BY … USING');
  const nullsFirst =
    sb.sortby_nulls === 'SORTBY_NULLS_FIRST'
      ? true
      : sb.sortby_nulls === 'SORTBY_NULLS_LAST'
        ? false
        : descending;
  return { fn: compileExpr(sb.node!, ctx).fn, descending, nullsFirst };
}

/** ORDER BY … LIMIT n [OFFSET m] → top-n over the output; ORDER BY alone is ignored. */
function planTopN(stmt: SelectStmt, planned: Planned, view: ViewSource): Planned {
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
  const intConst = (n: Node | undefined, what: string): number | undefined => {
    if (!n) return undefined;
    const [k, b] = nodeKind(n);
    if (k === 'A_Const' && b['isnull'] === true) return undefined;
    if (k !== 'A_Const' || b['ival'] === undefined)
      throw unsupported(view, locationOf(n), `${what} that is not an integer constant`);
    return (b['ival'] as { ival?: number }).ival ?? 0;
  };
  const limit = intConst(stmt.limitCount, 'LIMIT');
  const offset = intConst(stmt.limitOffset, 'OFFSET') ?? 0;
  if (limit === undefined) throw unsupported(view, locationOf(stmt.limitOffset), 'OFFSET without LIMIT');
  const outScope = planned.scope;
  const targets = stmt.targetList ?? [];
  const substitute = (n: Node): Compiled | undefined => {
    const [k, b] = nodeKind(n);
    if (k === 'A_Const' && b['ival'] !== undefined) {
      const i = ((b['ival'] as { ival?: number }).ival ?? 0) - 1;
      if (!outScope[i])
        throw invalid(view, locationOf(n), `ORDER BY position ${i + 1} is not in select list`);
      return { type: outScope[i].type, fn: (r) => r[i] ?? null, column: i };
    }
    const key = nodeKey(n);
    const i = targets.findIndex((t) => nodeKey((nodeKind(t)[1] as ResTarget).val) === key);
    return i >= 0 && outScope[i] ? { type: outScope[i].type, fn: (r) => r[i] ?? null, column: i } : undefined;
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
