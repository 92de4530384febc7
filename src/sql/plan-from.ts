/**
 * Plans the FROM clause: base tables, subqueries and equi-joins (inner, left, right, full; ON
 * with `a.x = b.y [AND …]` or USING). Builds the scope expressions above it resolve names in.
 */
import type { JoinExpr, Node, RangeSubselect, RangeVar, SelectStmt } from 'libpg-query';
import type { TableSchema } from '../decode/table-schema.ts';
import { locationOf, nodeKind, strings } from './ast.ts';
import { compileExpr } from './compile-expr.ts';
import { coerce, unifyCompiled } from './coerce.ts';
import type { PlanNode } from './plan.ts';
import {
  noteRead,
  type Compiled,
  type ExprContext,
  type ReadColumns,
  type RowFn,
  type ScopeColumn,
} from './scope.ts';
import { typeFromName, sqlType } from './sql-type.ts';
import { invalid, unsupported, type ViewSource } from './view-error.ts';

export interface Planned {
  readonly node: PlanNode;
  readonly scope: ScopeColumn[];
  /** Output columns forming a key, or undefined when none is derivable. */
  readonly key: number[] | undefined;
}

/** A `rn <= N` filter found in an outer WHERE, offered to the subquery that defines `rn`. */
export interface RowNumberLimit {
  readonly qualifier: string | null;
  readonly name: string;
  readonly limit: number;
}

export interface PlannerContext {
  readonly view: ViewSource;
  readonly catalog: (schema: string | null, table: string) => TableSchema | undefined;
  readonly inputs: TableSchema[];
  /** Every base-table column an expression of the view resolves to. */
  readonly reads: ReadColumns;
  readonly planSelect: (stmt: SelectStmt, rowNumberLimit: number | undefined, rnName?: string) => Planned;
}

export function planFrom(
  from: readonly Node[],
  pc: PlannerContext,
  limits: readonly RowNumberLimit[],
): Planned {
  if (from.length === 0)
    throw unsupported(pc.view, 0, 'SELECT without FROM', 'A view must read at least one table.');
  if (from.length > 1) {
    throw unsupported(
      pc.view,
      locationOf(from[1]),
      'comma-separated FROM (a cross join)',
      'Write JOIN … ON a.x = b.y.',
    );
  }
  return planFromItem(from[0]!, pc, limits);
}

function planFromItem(item: Node, pc: PlannerContext, limits: readonly RowNumberLimit[]): Planned {
  const [kind, body] = nodeKind(item);
  switch (kind) {
    case 'RangeVar':
      return planTable(body as RangeVar, pc);
    case 'JoinExpr':
      return planJoin(body as JoinExpr, pc, limits);
    case 'RangeSubselect': {
      const rs = body as RangeSubselect;
      if (rs.lateral) throw unsupported(pc.view, locationOf(rs.subquery), 'LATERAL subqueries');
      const alias = rs.alias?.aliasname ?? null;
      const stmt = nodeKind(rs.subquery!)[1] as SelectStmt;
      const limit = limits.find((l) => l.qualifier === null || l.qualifier === alias);
      const inner = pc.planSelect(stmt, limit?.limit, limit?.name);
      const names = strings(rs.alias?.colnames);
      const scope = inner.scope.map((c, i) => ({ qualifier: alias, name: names[i] ?? c.name, type: c.type }));
      return { node: inner.node, scope, key: inner.key };
    }
    case 'RangeFunction':
      throw unsupported(pc.view, undefined, 'functions in FROM (set-returning functions)');
    default:
      throw unsupported(pc.view, locationOf(item), `FROM item ${kind}`);
  }
}

function planTable(rv: RangeVar, pc: PlannerContext): Planned {
  if (rv.inh === false) throw unsupported(pc.view, rv.location, 'FROM ONLY');
  const table = pc.catalog(rv.schemaname ?? null, rv.relname ?? '');
  if (!table) {
    const shown = rv.schemaname ? `${rv.schemaname}.${rv.relname}` : rv.relname;
    throw invalid(
      pc.view,
      rv.location,
      `relation "${shown}" does not exist`,
      'The view can read only tables the changefeed selects.',
    );
  }
  if (!pc.inputs.some((t) => t.relationId === table.relationId)) pc.inputs.push(table);
  const qualifier = rv.alias?.aliasname ?? rv.relname ?? table.name;
  const names = strings(rv.alias?.colnames);
  const columns = table.columns.map((c) => ({ name: c.name, type: typeFromName(c.typeName) }));
  return {
    node: { kind: 'scan', table, columns },
    scope: columns.map((c, i) => ({
      qualifier,
      name: names[i] ?? c.name,
      type: c.type,
      origin: { relationId: table.relationId, column: c.name, reads: pc.reads },
    })),
    key: table.keyless || table.keyColumns.length === 0 ? undefined : [...table.keyColumns],
  };
}

const JOIN_TYPES = {
  JOIN_INNER: 'inner',
  JOIN_LEFT: 'left',
  JOIN_RIGHT: 'right',
  JOIN_FULL: 'full',
} as const;

function planJoin(j: JoinExpr, pc: PlannerContext, limits: readonly RowNumberLimit[]): Planned {
  const joinType = JOIN_TYPES[j.jointype as keyof typeof JOIN_TYPES];
  const loc = locationOf(j.rarg);
  if (!joinType) throw unsupported(pc.view, loc, `join type ${String(j.jointype)}`);
  if (j.isNatural) throw unsupported(pc.view, loc, 'NATURAL JOIN', 'Name the columns with USING (…) or ON.');
  if (j.alias) throw unsupported(pc.view, loc, 'an alias on a JOIN');
  const left = planFromItem(j.larg!, pc, limits);
  const right = planFromItem(j.rarg!, pc, limits);
  const width = left.scope.length;
  const both: ScopeColumn[] = [...left.scope, ...right.scope];
  const ctx: ExprContext = { view: pc.view, scope: both, clause: 'JOIN conditions' };
  const leftKey: RowFn[] = [];
  const rightKey: RowFn[] = [];
  const residual: RowFn[] = [];
  let scope = both;
  const using = strings(j.usingClause);
  if (using.length > 0) {
    for (const name of using) {
      const li = left.scope.findIndex((c) => c.name === name && !c.hiddenUnqualified);
      const ri = right.scope.findIndex((c) => c.name === name && !c.hiddenUnqualified);
      if (li < 0 || ri < 0)
        throw invalid(
          pc.view,
          loc,
          `column "${name}" specified in USING clause does not exist in ${li < 0 ? 'left' : 'right'} table`,
        );
      noteRead(left.scope[li]);
      noteRead(right.scope[ri]);
      addKey(column(li, left.scope[li]!), column(ri, right.scope[ri]!), ctx, loc, leftKey, rightKey);
      // The unqualified name means the left copy (right copy for RIGHT JOIN); FULL needs COALESCE, refused for now.
      const hide = joinType === 'right' ? li : width + ri;
      if (joinType === 'full')
        throw unsupported(
          pc.view,
          loc,
          'FULL JOIN … USING',
          'Write FULL JOIN … ON a.x = b.x and COALESCE the columns.',
        );
      scope = scope.map((c, i) => (i === hide ? { ...c, hiddenUnqualified: true, hiddenStar: true } : c));
    }
  } else if (j.quals) {
    for (const conj of conjuncts(j.quals)) {
      const eq = equiJoin(conj, ctx, width);
      if (eq) {
        const l = compileExpr(eq[0], { ...ctx, scope: left.scope });
        const r = compileExpr(eq[1], { ...ctx, scope: right.scope });
        addKey(l, r, ctx, locationOf(conj), leftKey, rightKey);
      } else if (joinType === 'inner')
        residual.push(
          coerce(compileExpr(conj, ctx), sqlType('bool'), {
            ctx,
            location: locationOf(conj),
            explicit: false,
          }).fn,
        );
      else
        throw unsupported(
          pc.view,
          locationOf(conj),
          'a non-equality condition in an outer join',
          'Outer joins support only ON a.x = b.y [AND …].',
        );
    }
  } else {
    throw unsupported(pc.view, loc, 'CROSS JOIN', 'Write JOIN … ON a.x = b.y.');
  }
  if (leftKey.length === 0) {
    throw unsupported(
      pc.view,
      locationOf(j.quals) ?? loc,
      'a join without an equality between the two sides (non-equi join)',
      'Join on a.x = b.y.',
    );
  }
  let node: PlanNode = {
    kind: 'join',
    joinType,
    left: left.node,
    right: right.node,
    leftKey,
    rightKey,
    columns: both.map((c) => ({ name: c.name, type: c.type })),
  };
  for (const predicate of residual) node = { kind: 'filter', input: node, predicate, columns: node.columns };
  const key =
    joinType === 'inner' && left.key && right.key
      ? [...left.key, ...right.key.map((k) => k + width)]
      : undefined;
  return { node, scope, key };
}

function column(i: number, c: ScopeColumn): Compiled {
  return { type: c.type, fn: (r) => r[i] ?? null, column: i };
}

export function conjuncts(n: Node): Node[] {
  const [k, b] = nodeKind(n);
  if (k === 'BoolExpr' && b['boolop'] === 'AND_EXPR') return ((b['args'] as Node[]) ?? []).flatMap(conjuncts);
  return [n];
}

/** `l = r` where one side reads only the left input and the other only the right. */
function equiJoin(n: Node, ctx: ExprContext, width: number): [Node, Node] | undefined {
  const [k, b] = nodeKind(n);
  if (k !== 'A_Expr' || b['kind'] !== 'AEXPR_OP' || strings(b['name'] as Node[]).join() !== '=')
    return undefined;
  const sides = [b['lexpr'] as Node, b['rexpr'] as Node].map((s) => ({ c: s, cols: columnsUsed(s, ctx) }));
  const [a, c] = sides as [{ c: Node; cols: number[] }, { c: Node; cols: number[] }];
  const onlyLeft = (cols: number[]) => cols.length > 0 && cols.every((i) => i < width);
  const onlyRight = (cols: number[]) => cols.length > 0 && cols.every((i) => i >= width);
  if (onlyLeft(a.cols) && onlyRight(c.cols)) return [a.c, c.c];
  if (onlyRight(a.cols) && onlyLeft(c.cols)) return [c.c, a.c];
  return undefined;
}

/** Indexes of the scope columns an expression references. */
function columnsUsed(n: Node, ctx: ExprContext): number[] {
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if ('ColumnRef' in o) {
        const c = compileExpr(o as Node, ctx);
        if (c.column !== undefined) out.push(c.column);
      } else Object.values(o).forEach(walk);
    }
  };
  walk(n);
  return out;
}

/** Adds one key pair, both sides cast to their common type so equal values hash alike. */
function addKey(
  l: Compiled,
  r: Compiled,
  ctx: ExprContext,
  loc: number | undefined,
  leftKey: RowFn[],
  rightKey: RowFn[],
): void {
  const [a, b] = unifyCompiled([l, r], [undefined, undefined], ctx, 'JOIN', loc);
  leftKey.push(a!.fn);
  rightKey.push(b!.fn);
}
