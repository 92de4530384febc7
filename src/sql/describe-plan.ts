/**
 * A view's plan in words, for operators (the dashboard and the API show it under the view's
 * SQL): what it reads, each step from the tables up to the view, what it keeps as state, and its
 * key. Steps are listed inputs first, one line each, indented by depth below the view.
 */
import { qualifiedName } from '../core/table-schema.ts';
import type { PlanNode, ViewPlan } from './plan.ts';

export function describePlan(plan: ViewPlan): string[] {
  const lines: string[] = [];
  walk(plan.root, 0, lines);
  const key =
    plan.key.length > 0
      ? `key: ${plan.key.map((i) => plan.outputColumns[i]?.name ?? `#${i}`).join(', ')} (rows upserted by it)`
      : 'no key: rows are kept with their multiplicity (a duplicate row is stored twice)';
  return [`reads ${plan.inputs.map((t) => qualifiedName(t)).join(', ')}`, ...lines, key];
}

function walk(node: PlanNode, depth: number, out: string[]): void {
  const children = inputsOf(node);
  // Inputs first, deeper; a single-input chain stays at one depth so it reads as a pipeline.
  for (const c of children) walk(c, children.length > 1 ? depth + 1 : depth, out);
  out.push(`${'  '.repeat(depth)}${step(node)}`);
}

function inputsOf(node: PlanNode): readonly PlanNode[] {
  switch (node.kind) {
    case 'scan':
      return [];
    case 'join':
    case 'semi-join':
      return [node.left, node.right];
    case 'union-all':
      return node.inputs;
    default:
      return [node.input];
  }
}

function names(node: PlanNode): string {
  return node.columns.map((c) => c.name).join(', ');
}

function step(node: PlanNode): string {
  switch (node.kind) {
    case 'scan':
      return `scan ${qualifiedName(node.table)}: its changes feed the steps above`;
    case 'filter':
      return 'filter: only rows matching the condition pass (each change checked on its own, no state)';
    case 'project':
      return `compute the columns ${names(node)} (no state)`;
    case 'join': {
      const on = `${node.leftKey.length} key column${node.leftKey.length === 1 ? '' : 's'}`;
      const one = node.leftUnique ? (node.rightUnique ? 'each side' : 'the left side') : 'the right side';
      const direct =
        node.leftUnique || node.rightUnique ? `; ${one} holds one row per key, read directly` : '';
      return `${node.joinType} join on ${on}: both sides are kept indexed by the key, so a change on either side finds its matches${direct}`;
    }
    case 'aggregate': {
      const aggs = node.aggregates.map((a) =>
        a.star ? `${a.name}(*)` : `${a.name}(${a.distinct ? 'DISTINCT …' : '…'})`,
      );
      const groups =
        node.groupBy.length === 0
          ? 'one row over all input'
          : `per group of ${node.groupBy.length} expression${node.groupBy.length === 1 ? '' : 's'}`;
      const kept = node.aggregates.some((a) => ['min', 'max', 'string_agg'].includes(a.name) || a.distinct)
        ? 'the group’s values are kept (min/max/string_agg/DISTINCT need them when one is deleted)'
        : 'only running totals are kept';
      return `aggregate ${aggs.join(', ')} ${groups}; ${kept}`;
    }
    case 'semi-join': {
      const what =
        node.mode === 'semi' ? 'that have a match (EXISTS / IN)' : 'that have no match (NOT EXISTS / NOT IN)';
      return `keep left rows ${what}: both sides are kept indexed, with a count of matches per left row`;
    }
    case 'window': {
      const part = node.partitionBy.length > 0 ? 'per partition' : 'over one partition';
      return `window functions ${part}: the ordered rows of each partition are kept, and a change updates the rows of its partition it affects`;
    }
    case 'distinct':
      return 'distinct: a count per row is kept; a row is in the view while its count is positive';
    case 'union-all':
      return `union all of ${node.inputs.length} inputs (no state)`;
    case 'top-n': {
      const part = node.partitionBy.length > 0 ? ' per partition' : '';
      const skip = node.offset > 0 ? ` after skipping ${node.offset}` : '';
      return `top ${node.limit}${part}${skip} by the ORDER BY: the ordered rows are kept, so a deleted row is replaced by the next`;
    }
  }
}
