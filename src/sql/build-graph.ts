/**
 * Turns a ViewPlan into dataflow operators (dataflow/graph.ts). Graph inputs are the base tables,
 * named by `qualifiedName`, carrying rows as Value[] in table column order; the view's changes
 * come out under the view's name. Expression errors surface as VIEW_RUNTIME naming the view.
 */
import type { Value } from '../decode/value.ts';
import { qualifiedName } from '../decode/table-schema.ts';
import type { GraphBuilder, NodeRef } from '../dataflow/graph.ts';
import { orderToken } from '../dataflow/order-key.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { pgAggregate } from './pg-aggregates.ts';
import type { PlanNode, SortKey, ViewPlan } from './plan.ts';
import type { RowFn } from './scope.ts';
import { runtimeError } from './view-error.ts';

/** Adds the view's operators to `builder` (declaring base-table inputs not yet declared) and its output. */
export function buildViewGraph(
  plan: ViewPlan,
  builder: GraphBuilder,
  declared: Map<string, NodeRef> = new Map(),
): NodeRef {
  const guard =
    <A extends unknown[], R>(f: (...a: A) => R) =>
    (...a: A): R => {
      try {
        return f(...a);
      } catch (err) {
        if (err instanceof TidemarkError && !err.code.startsWith('VALUE_')) throw err;
        throw runtimeError(plan.name, (err as Error).message, err);
      }
    };
  const g = (fn: RowFn) => guard(fn);
  const build = (node: PlanNode): NodeRef => {
    switch (node.kind) {
      case 'scan': {
        const name = qualifiedName(node.table);
        let ref = declared.get(name);
        if (!ref) declared.set(name, (ref = builder.input(name)));
        return ref;
      }
      case 'filter': {
        const p = g(node.predicate);
        return builder.filter(build(node.input), { predicate: (r) => p(r) as boolean | null });
      }
      case 'project': {
        const fns = node.exprs.map(g);
        return builder.map(build(node.input), { project: (r) => fns.map((f) => f(r)) });
      }
      case 'join': {
        const lk = node.leftKey.map(g);
        const rk = node.rightKey.map(g);
        return builder.join(build(node.left), build(node.right), {
          kind: node.joinType,
          leftKey: (r) => lk.map((f) => f(r)),
          rightKey: (r) => rk.map((f) => f(r)),
          leftWidth: node.left.columns.length,
          rightWidth: node.right.columns.length,
        });
      }
      case 'aggregate': {
        const keys = node.groupBy.map(g);
        return builder.aggregate(build(node.input), {
          ...(keys.length > 0 ? { groupKey: (r: readonly Value[]) => keys.map((f) => f(r)) } : {}),
          aggregates: node.aggregates.map((a) => {
            const arg = a.args[0] ? g(a.args[0]) : undefined;
            const desc = a.descending === true;
            return {
              fn: guardAggregate(pgAggregate(a), guard),
              ...(arg ? { arg } : {}),
              ...(a.distinct ? { distinct: true } : {}),
              ...(a.name === 'string_agg'
                ? { orderKey: (v: Value) => orderToken(v, { descending: desc, nullsFirst: desc }) }
                : {}),
            };
          }),
        });
      }
      case 'distinct':
        return builder.distinct(build(node.input));
      case 'union-all':
        return builder.unionAll(node.inputs.map(build));
      case 'top-n': {
        const parts = node.partitionBy.map(g);
        return builder.topN(build(node.input), {
          orderKey: g(orderKeyFn(node.orderBy)) as (r: readonly Value[]) => string,
          ...(parts.length > 0 ? { partitionKey: (r: readonly Value[]) => parts.map((f) => f(r)) } : {}),
          limit: node.limit,
          offset: node.offset,
          rowNumber: node.rowNumber,
        });
      }
    }
  };
  const out = build(plan.root);
  builder.output(plan.name, out);
  return out;
}

function orderKeyFn(keys: readonly SortKey[]): (row: readonly Value[]) => string {
  return (row) => {
    let out = '';
    for (const k of keys)
      out += orderToken(k.fn(row), { descending: k.descending, nullsFirst: k.nullsFirst });
    return out;
  };
}

function guardAggregate<T extends ReturnType<typeof pgAggregate>>(
  fn: T,
  guard: <A extends unknown[], R>(f: (...a: A) => R) => (...a: A) => R,
): T {
  if (fn.kind === 'ordered') return { ...fn, result: guard(fn.result) };
  return { ...fn, add: guard(fn.add), result: guard(fn.result) };
}
