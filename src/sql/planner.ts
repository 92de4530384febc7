/**
 * `planView`: SQL text → validated logical plan (plan.ts). Everything outside the supported
 * subset is refused here, when the config is loaded, with the construct and its line:column.
 *
 *   parse (libpg-query) ─► WITH (CTEs, planned on first use and shared)
 *     ─► FROM items (plan-from.ts) ─► WHERE: joins, filters, subqueries (plan-where.ts, subquery.ts)
 *     ─► GROUP BY/aggregates/HAVING (plan-aggregate.ts) ─► window functions (plan-window.ts)
 *     ─► select list ─► DISTINCT ─► ORDER BY … LIMIT (plan-order.ts) ─► UNION [ALL]
 *
 * ORDER BY without LIMIT is accepted and ignored: a view is a table, rows have no order.
 */
import type { CommonTableExpr, FuncCall, Node, ResTarget, SelectStmt } from 'libpg-query';
import type { ColumnSchema, TableSchema } from '../core/table-schema.ts';
import { locationOf, nodeKind, strings, subLinks } from './ast.ts';
import { coerce, unifyCompiled } from './coerce.ts';
import { compileExpr } from './compile-expr.ts';
import { parseView } from './parse.ts';
import { collectAggregates, planAggregate, type Target } from './plan-aggregate.ts';
import {
  exprContext,
  planFromItems,
  checkDistinctNames,
  tableColumnNames,
  type CteEntry,
  type PlannerContext,
  type RowNumberLimit,
  type SelectOptions,
} from './plan-from.ts';
import type { PlanNode, ViewPlan } from './plan.ts';
import { planTopN } from './plan-order.ts';
import { flattenInnerJoins } from './flatten-joins.ts';
import { planWhere } from './plan-where.ts';
import { planWindows, windowCalls } from './plan-window.ts';
import { columnsOf, projectRel, type Planned } from './relation.ts';
import type { Compiled, ExprContext, ReadColumns, ScopeColumn } from './scope.ts';
import { sqlType, typeOid } from './sql-type.ts';
import { withSubqueryColumns } from './subquery.ts';
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
    ctes: [],
    enclosing: [],
    counter: 0,
    innerScopes: new WeakMap(),
    planSelect: (s, o) => planSelect(s, pc, o ?? {}),
  };
  const planned = planSelect(stmt, pc, {});
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
    nullable: c.notNull !== true,
  }));
  return { name: opts.name, outputColumns, key, inputs, reads, root: planned.node };
}

function planSelect(stmt: SelectStmt, pc: PlannerContext, options: SelectOptions): Planned {
  const view = pc.view;
  if (stmt.intoClause) throw unsupported(view, undefined, 'SELECT INTO');
  if (stmt.lockingClause) throw unsupported(view, locationOf(stmt.lockingClause[0]), 'FOR UPDATE/SHARE');
  if (stmt.valuesLists) throw unsupported(view, undefined, 'VALUES lists');
  const with_ = stmt.withClause;
  if (with_) {
    // The parse tree's JSON leaves out zero fields: no location is offset 0 (the view starts with WITH).
    if (with_.recursive)
      throw unsupported(view, with_.location ?? 0, 'WITH RECURSIVE', 'Only non-recursive WITH is supported.');
    const frame = new Map<string, CteEntry>();
    const depth = pc.ctes.length + 1;
    pc.ctes.push(frame);
    for (const n of with_.ctes ?? []) {
      const cte = nodeKind(n)[1] as CommonTableExpr;
      const name = cte.ctename ?? '';
      if (frame.has(name))
        throw invalid(view, cte.location, `WITH query name "${name}" specified more than once`);
      if (cte.ctematerialized === 'CTEMaterializeAlways' || cte.ctematerialized === 'CTEMaterializeNever') {
        // A planning hint only; the plan shares the CTE either way.
      }
      const body = nodeKind(cte.ctequery!)[1] as SelectStmt;
      if (nodeKind(cte.ctequery!)[0] !== 'SelectStmt')
        throw unsupported(view, cte.location, 'a WITH query that is not a SELECT');
      frame.set(name, { stmt: body, columnNames: strings(cte.aliascolnames), depth });
    }
  }
  try {
    let planned = stmt.op && stmt.op !== 'SETOP_NONE' ? planSetOp(stmt, pc) : planSimple(stmt, pc, options);
    planned = planTopN(stmt, planned, view);
    return planned;
  } finally {
    if (with_) pc.ctes.pop();
  }
}

function planSetOp(stmt: SelectStmt, pc: PlannerContext): Planned {
  if (stmt.op !== 'SETOP_UNION')
    throw unsupported(
      pc.view,
      undefined,
      `${String(stmt.op).replace('SETOP_', '')}`,
      'Only UNION and UNION ALL are supported.',
    );
  const parts = [planSelect(stmt.larg!, pc, {}), planSelect(stmt.rarg!, pc, {})];
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
  const scope: ScopeColumn[] = types.map((t, i) => ({
    qualifier: null,
    name: parts[0]!.scope[i]!.name,
    type: t,
    ...(parts.every((p) => p.scope[i]!.notNull === true) ? { notNull: true } : {}),
  }));
  const columns = columnsOf(scope);
  let node: PlanNode = { kind: 'union-all', inputs, columns };
  if (!stmt.all) node = { kind: 'distinct', input: node, columns };
  return { node, scope, key: stmt.all ? undefined : columns.map((_, i) => i) };
}

/** `rn <= N`, `rn < N`, `rn = 1` conjuncts of WHERE: the row_number() pattern's limits. */
function rowNumberLimits(where: Node | undefined): RowNumberLimit[] {
  if (!where) return [];
  const out: RowNumberLimit[] = [];
  const visit = (n: Node) => {
    const [k, b] = nodeKind(n);
    if (k === 'BoolExpr' && b['boolop'] === 'AND_EXPR') return ((b['args'] as Node[]) ?? []).forEach(visit);
    if (k !== 'A_Expr' || b['kind'] !== 'AEXPR_OP') return;
    const op = strings(b['name'] as Node[]).join();
    const l = nodeKind(b['lexpr'] as Node);
    const r = nodeKind(b['rexpr'] as Node);
    if (l[0] !== 'ColumnRef' || r[0] !== 'A_Const' || r[1]['ival'] === undefined) return;
    const parts = strings(l[1]['fields'] as Node[]);
    const n2 = (r[1]['ival'] as { ival?: number }).ival ?? 0;
    const limit = op === '<=' ? n2 : op === '<' ? n2 - 1 : op === '=' && n2 === 1 ? 1 : undefined;
    if (limit === undefined) return;
    out.push({
      qualifier: parts.length > 1 ? parts[parts.length - 2]! : null,
      name: parts[parts.length - 1]!,
      limit,
    });
  };
  visit(where);
  return out;
}

function planSimple(stmt: SelectStmt, pc: PlannerContext, options: SelectOptions): Planned {
  const view = pc.view;
  checkDistinctNames(stmt.fromClause ?? [], pc);
  const flat = flattenInnerJoins(stmt.fromClause ?? [], stmt.whereClause, (rv) => tableColumnNames(pc, rv));
  const leaves = planFromItems(flat.from, pc, rowNumberLimits(stmt.whereClause));
  let rel = planWhere(leaves, flat.where, pc);
  const targets = expandTargets(stmt.targetList ?? [], rel, view);
  const aggCalls = collectAggregates([
    ...targets.map((t) => t.node),
    ...(stmt.havingClause ? [stmt.havingClause] : []),
  ]);
  const grouping = (stmt.groupClause?.length ?? 0) > 0 || aggCalls.length > 0;
  let outCtx: ExprContext;
  let key = rel.key;
  let emptyInput: (() => unknown[]) | undefined;
  if (grouping) {
    const agg = planAggregate(stmt, rel, targets, aggCalls, pc);
    rel = agg.rel;
    outCtx = agg.ctx;
    key = agg.key;
    if (options.correlationGroups !== undefined && !agg.hasHaving) emptyInput = agg.emptyInput;
  } else {
    if (stmt.havingClause)
      throw unsupported(view, locationOf(stmt.havingClause), 'HAVING without GROUP BY or aggregates');
    const subs = withSubqueryColumns(
      rel,
      targets.map((t) => t.node),
      pc,
      { correlated: true },
    );
    rel = subs.rel;
    outCtx = { ...exprContext(pc, rel.scope, 'the select list'), substitute: subs.substitute };
  }
  // Window functions: computed over the rows so far, appended as columns.
  const windows = windowCalls(targets.map((t) => t.node));
  if (windows.length > 0) {
    const w = planWindows(rel, outCtx, windows, targets, options.rowNumberLimit, pc, stmt.windowClause);
    rel = w.rel;
    outCtx = w.ctx;
    key = w.key ?? key;
  }
  const compiled = targets.map((t) => compileExpr(t.node, outCtx));
  const scope: ScopeColumn[] = targets.map((t, i) => {
    const c = compiled[i]!;
    return {
      qualifier: null,
      name: t.name,
      type: c.type.kind === 'unknown' ? sqlType('text') : c.type,
      ...(c.notNull === true ? { notNull: true } : {}),
    };
  });
  const newKey = key?.every((k) => compiled.some((c) => c.column === k))
    ? key.map((k) => compiled.findIndex((c) => c.column === k))
    : undefined;
  let out = projectRel(rel, compiled, scope, newKey);
  if (emptyInput) {
    const row = emptyInput();
    const fns = compiled.map((c) => c.fn);
    out = { ...out, emptyRow: () => fns.map((f) => f(row as never)) };
  }
  if (stmt.distinctClause) {
    if (stmt.distinctClause.some((d) => Object.keys(d).length > 0))
      throw unsupported(view, locationOf(stmt.distinctClause[0]), 'DISTINCT ON');
    const columns = columnsOf(scope);
    return { node: { kind: 'distinct', input: out.node, columns }, scope, key: columns.map((_, i) => i) };
  }
  return out;
}

/** Expands `*` and `t.*` (in FROM order) and names each output column as PostgreSQL would. */
function expandTargets(list: readonly Node[], rel: Planned, view: ViewSource): Target[] {
  const out: Target[] = [];
  const order = rel.starOrder ?? rel.scope.map((_, i) => i);
  for (const item of list) {
    const rt = nodeKind(item)[1] as ResTarget;
    const val = rt.val!;
    const [k, b] = nodeKind(val);
    const fields = k === 'ColumnRef' ? strings(b['fields'] as Node[]) : [];
    if (fields[fields.length - 1] === '*') {
      const q = fields.length > 1 ? fields[fields.length - 2]! : null;
      const cols = order
        .map((i) => rel.scope[i]!)
        .filter((c) => (q === null ? !c.hiddenStar : c.qualifier === q && !c.hiddenStar));
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
    if (subLinks([val]).length > 0 && rt.name === undefined) {
      out.push({ node: val, name: subqueryName(val) });
      continue;
    }
    out.push({ node: val, name: rt.name ?? defaultName(val) });
  }
  return out;
}

/** PostgreSQL names `(SELECT max(x) …)` after the subquery's column, `EXISTS (…)` "exists". */
function subqueryName(n: Node): string {
  const [k, b] = nodeKind(n);
  if (k !== 'SubLink') return defaultName(n);
  if (b['subLinkType'] === 'EXISTS_SUBLINK') return 'exists';
  if (b['subLinkType'] === 'EXPR_SUBLINK') {
    const sub = nodeKind(b['subselect'] as Node)[1] as SelectStmt;
    const t = sub.targetList?.[0];
    if (t) {
      const rt = nodeKind(t)[1] as ResTarget;
      return rt.name ?? defaultName(rt.val!);
    }
  }
  return '?column?';
}

function defaultName(n: Node): string {
  const [k, b] = nodeKind(n);
  if (k === 'ColumnRef') return strings(b['fields'] as Node[]).pop() ?? '?column?';
  if (k === 'FuncCall') {
    const name = strings(b['funcname'] as Node[]).pop() ?? '?column?';
    // extract(year from x) and substring(x from 1 for 2) are named after the SQL keyword's function.
    return (b as FuncCall).funcformat === 'COERCE_SQL_SYNTAX' && name === 'extract' ? 'extract' : name;
  }
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
