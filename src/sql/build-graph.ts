/**
 * Turns a ViewPlan into dataflow operators (dataflow/graph.ts). Graph inputs are the base tables,
 * named by `qualifiedName`, carrying rows as Value[] in table column order; the view's changes
 * come out under the view's name. Expression errors surface as VIEW_RUNTIME naming the view.
 */
import type { Value } from '../decode/value.ts';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import type { GraphBuilder, NodeRef } from '../dataflow/graph.ts';
import { orderToken } from '../dataflow/order-key.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { pgAggregate } from './pg-aggregates.ts';
import type { PlanNode, SortKey, ViewPlan } from './plan.ts';
import { windowCompute } from './window-functions.ts';
import type { RowFn } from './scope.ts';
import { runtimeError } from './view-error.ts';

/**
 * Adds the view's operators to `builder` (declaring base-table inputs not yet declared) and its
 * output. `inputColumns` names the columns an input's rows carry when they are not all of the
 * table's: a scan of fewer of them selects its own (one map per table and column set).
 */
export function buildViewGraph(
  plan: ViewPlan,
  builder: GraphBuilder,
  declared: Map<string, NodeRef> = new Map(),
  inputColumns?: (table: TableSchema) => readonly string[] | undefined,
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
  // The per-row wrapper without rest parameters: it runs for every expression of every change.
  const g =
    (fn: RowFn): RowFn =>
    (row) => {
      try {
        return fn(row);
      } catch (err) {
        if (err instanceof TidemarkError && !err.code.startsWith('VALUE_')) throw err;
        throw runtimeError(plan.name, (err as Error).message, err);
      }
    };
  // A plan node used twice (a CTE's tree, a subquery also counted for NOT IN) is built once.
  const built = new Map<PlanNode, NodeRef>();
  const build = (node: PlanNode): NodeRef => {
    let ref = built.get(node);
    if (ref === undefined) built.set(node, (ref = buildNode(node)));
    return ref;
  };
  const buildNode = (node: PlanNode): NodeRef => {
    switch (node.kind) {
      case 'scan': {
        const name = qualifiedName(node.table);
        // A keyed table's rows carry its key (the planner keeps key columns): no row is held twice.
        const keyed = !node.table.keyless && node.table.keyColumns.length > 0;
        let ref = declared.get(name);
        if (!ref) declared.set(name, (ref = builder.input(name, { distinctRows: keyed })));
        const carried = inputColumns?.(node.table);
        const wanted = node.table.columns.map((c) => c.name);
        if (carried === undefined || carried.join('\u0000') === wanted.join('\u0000')) return ref;
        const selectKey = `${name}\u0000${wanted.join('\u0000')}`;
        let selected = declared.get(selectKey);
        if (!selected) {
          const at = wanted.map((c) => carried.indexOf(c));
          selected = builder.map(ref, {
            project: (r) => at.map((i) => r[i] ?? null),
            ...(keyed ? { injective: true } : {}),
          });
          declared.set(selectKey, selected);
        }
        return selected;
      }
      case 'filter': {
        const p = g(node.predicate);
        return builder.filter(build(node.input), { predicate: (r) => p(r) as boolean | null });
      }
      case 'project': {
        const input = build(node.input);
        const width = node.input.columns.length;
        const copies = node.copies ?? [];
        // SELECT of exactly the input columns in order: no operator at all.
        if (copies.length === width && copies.every((c, i) => c === i)) return input;
        const fns = node.exprs.map(g);
        const injective = new Set(copies.filter((c) => c !== null)).size === width;
        return builder.map(input, { project: rowOf(fns), ...(injective ? { injective } : {}) });
      }
      case 'join': {
        const lk = node.leftKey.map(g);
        const rk = node.rightKey.map(g);
        return builder.join(build(node.left), build(node.right), {
          kind: node.joinType,
          leftKey: rowOf(lk),
          rightKey: rowOf(rk),
          leftWidth: node.left.columns.length,
          rightWidth: node.right.columns.length,
          ...(node.leftUnique ? { leftUnique: true } : {}),
          ...(node.rightUnique ? { rightUnique: true } : {}),
        });
      }
      case 'aggregate': {
        const keys = node.groupBy.map(g);
        return builder.aggregate(build(node.input), {
          ...(keys.length > 0 ? { groupKey: rowOf(keys) } : {}),
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
      case 'semi-join': {
        const lk = node.leftKey.map(g);
        const rk = node.rightKey.map(g);
        return builder.semiJoin(build(node.left), build(node.right), {
          mode: node.mode,
          leftKey: rowOf(lk),
          rightKey: rowOf(rk),
          ...(node.residual ? { residual: g(node.residual) } : {}),
        });
      }
      case 'window': {
        const parts = node.partitionBy.map(g);
        const compute = guard(windowCompute(node.functions));
        return builder.window(build(node.input), {
          orderKey: g(orderKeyFn(node.orderBy)) as (r: readonly Value[]) => string,
          ...(parts.length > 0 ? { partitionKey: rowOf(parts) } : {}),
          compute,
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

/** The row of the expressions' values (one or two expressions without a closure per call). */
function rowOf(fns: readonly RowFn[]): (row: readonly Value[]) => Value[] {
  const [f, h] = fns;
  if (fns.length === 1 && f !== undefined) return (r) => [f(r)];
  if (fns.length === 2 && f !== undefined && h !== undefined) return (r) => [f(r), h(r)];
  return (r) => {
    const out = new Array<Value>(fns.length);
    for (let i = 0; i < fns.length; i++) out[i] = (fns[i] as RowFn)(r);
    return out;
  };
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
  const result = guard(fn.result);
  const wrapped = guard((err: unknown): never => {
    throw err;
  });
  return {
    ...fn,
    add: (acc, v, w) => {
      try {
        return fn.add(acc, v, w);
      } catch (err) {
        return wrapped(err);
      }
    },
    result,
  };
}
