/**
 * Window functions in the select list: `f(…) OVER ([PARTITION BY …] [ORDER BY …] [frame])`,
 * planned as window nodes (one per distinct window) that append each call's value to the rows;
 * the select list then reads those columns. Supported: row_number, rank, dense_rank, lag, lead,
 * first_value, last_value, and count/sum/avg/min/max/bool_and/bool_or as running aggregates,
 * with the default frame, `ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`, or the whole
 * partition. Named windows (`WINDOW w AS (…)`, `OVER w`) are resolved.
 *
 * The top-n pattern `SELECT … FROM (SELECT …, row_number() OVER (…) AS rn FROM …) s WHERE
 * rn <= N` becomes a top-n per partition, which keeps only the first N rows of each partition
 * in its output (the outer WHERE still applies).
 */
import type { FuncCall, Node, WindowDef } from 'libpg-query';
import { locationOf, nodeKind, strings } from './ast.ts';
import { aggregateResultType } from './aggregate-types.ts';
import { coerce, unifyCompiled } from './coerce.ts';
import { compileExpr } from './compile-expr.ts';
import { AGGREGATES } from './functions.ts';
import type { AggregateCall, AggregateName, WindowCall, WindowFunctionName } from './plan.ts';
import type { Target } from './plan-aggregate.ts';
import type { PlannerContext, RowNumberLimit } from './plan-from.ts';
import { sortKey } from './plan-order.ts';
import { columnsOf, type Planned } from './relation.ts';
import { nodeKey, type Compiled, type ExprContext, type ScopeColumn } from './scope.ts';
import { sqlType } from './sql-type.ts';
import { invalid, unsupported } from './view-error.ts';

const RANKING = new Set(['row_number', 'rank', 'dense_rank']);
const VALUE = new Set(['lag', 'lead', 'first_value', 'last_value']);
const NOT_YET = new Set(['ntile', 'nth_value', 'percent_rank', 'cume_dist']);

/** Window function calls in `nodes` (not inside subqueries), deduplicated by structure. */
export function windowCalls(nodes: readonly Node[]): Node[] {
  const found = new Map<string, Node>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o['SubLink']) return;
    const f = o['FuncCall'] as FuncCall | undefined;
    if (f?.over) {
      found.set(nodeKey(o), o as Node);
      return;
    }
    Object.values(o).forEach(walk);
  };
  nodes.forEach(walk);
  return [...found.values()];
}

// Frame option bits (nodes/parsenodes.h).
const NONDEFAULT = 1;
const RANGE = 2;
const ROWS = 4;
const BETWEEN = 16;
const START_UNBOUNDED_PRECEDING = 32;
const END_UNBOUNDED_FOLLOWING = 256;
const END_CURRENT_ROW = 1024;

function frameOf(
  def: WindowDef,
  ordered: boolean,
  pc: PlannerContext,
  loc: number | undefined,
): WindowCall['frame'] {
  const opts =
    (def.frameOptions ?? RANGE | START_UNBOUNDED_PRECEDING | END_CURRENT_ROW) & ~(NONDEFAULT | BETWEEN);
  if (opts === (RANGE | START_UNBOUNDED_PRECEDING | END_CURRENT_ROW)) return ordered ? 'peers' : 'all';
  if (opts === (ROWS | START_UNBOUNDED_PRECEDING | END_CURRENT_ROW)) return ordered ? 'rows' : 'all';
  if (opts === (RANGE | START_UNBOUNDED_PRECEDING | END_UNBOUNDED_FOLLOWING)) return 'all';
  if (opts === (ROWS | START_UNBOUNDED_PRECEDING | END_UNBOUNDED_FOLLOWING)) return 'all';
  throw unsupported(
    pc.view,
    loc,
    'this window frame',
    'Supported frames: the default, ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW, and … AND UNBOUNDED FOLLOWING.',
  );
}

export interface WindowPlan {
  readonly rel: Planned;
  readonly ctx: ExprContext;
  readonly key: number[] | undefined;
}

export function planWindows(
  rel: Planned,
  ctx: ExprContext,
  calls: readonly Node[],
  targets: readonly Target[],
  rnLimit: RowNumberLimit | undefined,
  pc: PlannerContext,
  named: readonly Node[] = [],
): WindowPlan {
  const windows = new Map<string, { def: WindowDef; calls: Node[] }>();
  for (const call of calls) {
    const f = nodeKind(call)[1] as FuncCall;
    const def = resolveWindow(f.over!, named, pc, locationOf(call));
    const key = nodeKey({ p: def.partitionClause ?? [], o: def.orderClause ?? [], f: def.frameOptions });
    let w = windows.get(key);
    if (!w) windows.set(key, (w = { def, calls: [] }));
    w.calls.push(call);
  }
  const values = new Map<string, Compiled>();
  let out = rel;
  const substitute = (n: Node): Compiled | undefined => values.get(nodeKey(n)) ?? ctx.substitute?.(n);
  for (const { def, calls: group } of windows.values()) {
    const partitionBy = (def.partitionClause ?? []).map((p) => compileExpr(p, ctx).fn);
    const orderBy = (def.orderClause ?? []).map((s) => sortKey(s, { ...ctx, clause: 'window definitions' }));
    const width = out.scope.length;
    const rnCall = group.length === 1 && windows.size === 1 ? group[0]! : undefined;
    const rnTarget =
      rnLimit && rnCall ? targets.find((t) => t.name === rnLimit.name && t.node === rnCall) : undefined;
    if (rnTarget && rnCall && fnName(rnCall) === 'row_number' && orderBy.length > 0) {
      const scope: ScopeColumn[] = [
        ...out.scope,
        {
          qualifier: null,
          name: 'row_number',
          type: sqlType('int8'),
          notNull: true,
          hiddenStar: true,
          hiddenUnqualified: true,
        },
      ];
      out = {
        ...out,
        scope,
        node: {
          kind: 'top-n',
          input: out.node,
          partitionBy,
          orderBy,
          limit: rnLimit!.limit,
          offset: 0,
          rowNumber: true,
          columns: columnsOf(scope),
        },
      };
      values.set(nodeKey(rnCall), {
        type: sqlType('int8'),
        fn: (r) => r[width] ?? null,
        column: width,
        notNull: true,
      });
      continue;
    }
    const functions = group.map((call) => windowCall(call, def, orderBy.length > 0, ctx, pc));
    const scope: ScopeColumn[] = [
      ...out.scope,
      ...functions.map((fn) => ({
        qualifier: null,
        name: fn.name,
        type: fn.resultType,
        hiddenStar: true,
        hiddenUnqualified: true,
        ...(RANKING.has(fn.name) || fn.name === 'count' ? { notNull: true } : {}),
      })),
    ];
    out = {
      ...out,
      scope,
      node: { kind: 'window', input: out.node, partitionBy, orderBy, functions, columns: columnsOf(scope) },
    };
    group.forEach((call, i) => {
      const at = width + i;
      const c = scope[at]!;
      values.set(nodeKey(call), {
        type: c.type,
        fn: (r) => r[at] ?? null,
        column: at,
        ...(c.notNull === true ? { notNull: true } : {}),
      });
    });
  }
  return { rel: out, ctx: { ...ctx, substitute }, key: rel.key };
}

function fnName(call: Node): string {
  const f = nodeKind(call)[1] as FuncCall;
  return strings(f.funcname)
    .filter((s) => s !== 'pg_catalog')
    .join('.')
    .toLowerCase();
}

/** The window of `OVER (…)` or `OVER w`, with a named window's definition filled in. */
function resolveWindow(
  over: WindowDef,
  named: readonly Node[],
  pc: PlannerContext,
  loc: number | undefined,
): WindowDef {
  const ref = over.name ?? over.refname;
  if (!ref) return over;
  const base = named.map((n) => nodeKind(n)[1] as WindowDef).find((w) => w.name === ref);
  if (!base) throw invalid(pc.view, loc, `window "${ref}" does not exist`);
  return {
    ...base,
    ...(over.orderClause ? { orderClause: over.orderClause } : {}),
    ...(over.frameOptions !== undefined && over.frameOptions !== 1058
      ? { frameOptions: over.frameOptions }
      : {}),
  };
}

function windowCall(
  call: Node,
  def: WindowDef,
  ordered: boolean,
  ctx: ExprContext,
  pc: PlannerContext,
): WindowCall {
  const view = pc.view;
  const f = nodeKind(call)[1] as FuncCall;
  const name = fnName(call);
  const loc = locationOf(call);
  const frame = frameOf(def, ordered, pc, loc);
  if (f.agg_filter) throw unsupported(view, loc, 'FILTER on a window function');
  if (f.agg_distinct) throw unsupported(view, loc, 'DISTINCT in a window function');
  if (NOT_YET.has(name)) throw unsupported(view, loc, `window function ${name}()`);
  const args = (f.args ?? []).map((a) => compileExpr(a, { ...ctx, clause: 'window function arguments' }));
  if (RANKING.has(name)) {
    if (args.length > 0) throw invalid(view, loc, `function ${name} takes no arguments`);
    return { name: name as WindowFunctionName, offset: 0, frame, resultType: sqlType('int8') };
  }
  if (VALUE.has(name)) {
    const isShift = name === 'lag' || name === 'lead';
    if (args.length < 1 || args.length > (isShift ? 3 : 1))
      throw invalid(view, loc, `function ${name} takes ${isShift ? '1 to 3 arguments' : '1 argument'}`);
    const value = args[0]!;
    let offset = 1;
    if (args[1]) {
      const o = args[1].constant?.value;
      if (typeof o !== 'number')
        throw unsupported(
          view,
          locationOf(f.args?.[1]),
          `${name} with an offset that is not an integer constant`,
        );
      offset = o;
    }
    // lag/lead(anycompatible, integer, anycompatible): the value and the default meet in a common type.
    const [v, d] = args[2]
      ? unifyCompiled([value, args[2]], [f.args![0]!, f.args![2]!], ctx, name, loc)
      : [
          value.type.kind === 'unknown'
            ? coerce(value, sqlType('text'), { ctx, location: loc, explicit: false })
            : value,
        ];
    const type = v!.type;
    const def_ = d?.fn;
    return {
      name: name as WindowFunctionName,
      value: v!.fn,
      offset,
      ...(def_ ? { defaultValue: def_ } : {}),
      frame,
      resultType: type,
    };
  }
  if (AGGREGATES.has(name) && name !== 'string_agg') {
    const agg = (name === 'every' ? 'bool_and' : name) as AggregateName;
    if (f.agg_star && agg !== 'count') throw invalid(view, loc, `${name}(*) does not exist`);
    const arg = f.agg_star ? undefined : args[0];
    if (!f.agg_star && args.length !== 1) throw invalid(view, loc, `function ${name} takes 1 argument`);
    const fixed =
      arg && (agg === 'bool_and' || agg === 'bool_or')
        ? coerce(arg, sqlType('bool'), { ctx, location: loc, explicit: false })
        : arg;
    const resultType = aggregateResultType(agg, fixed?.type);
    if (!resultType)
      throw invalid(view, loc, `function ${name}(${fixed?.type.typeName ?? ''}) does not exist`);
    const aggregate: AggregateCall = {
      name: agg,
      star: f.agg_star === true,
      distinct: false,
      args: fixed ? [fixed.fn] : [],
      argType: fixed?.type,
      resultType,
    };
    return { name: agg, offset: 0, aggregate, frame, resultType };
  }
  throw unsupported(
    view,
    loc,
    `window function ${name}()`,
    'See the window functions listed in src/sql/README.md.',
  );
}
