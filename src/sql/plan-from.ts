/**
 * Plans the items of a FROM clause: base tables, CTE references, subqueries, and explicit joins
 * (inner, left, right, full; `ON` with equalities and any other conditions, or `USING`). The
 * comma-separated list itself is assembled with the WHERE clause (plan-where.ts).
 *
 * Conditions of an explicit join's ON that are not equalities between the sides:
 *   one side only, inner join (or the padded side of an outer join) → a filter pushed into it;
 *   the kept side of an outer join → part of the key (`cond ? true : null` = true), so a row
 *     failing it matches nothing and is padded;
 *   both sides, inner join → a filter after the join;
 *   both sides, outer join → matched = filter(inner join), unmatched = anti-join with the
 *     condition as residual, padded: L ⟕ R = (L ⋈ R) ∪ pad(L ▷ R).
 */
import type { JoinExpr, Node, RangeSubselect, RangeVar, SelectStmt } from 'libpg-query';
import type { TableSchema } from '../core/table-schema.ts';
import { locationOf, nodeKind, strings } from './ast.ts';
import { compileExpr } from './compile-expr.ts';
import { coerce, constant, unifyCompiled } from './coerce.ts';
import type { PlanNode } from './plan.ts';
import {
  columnRef,
  columnsOf,
  filterRel,
  joinRel,
  projectRel,
  semiRel,
  type JoinKind,
  type Planned,
} from './relation.ts';
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

/** A `rn <= N` filter found in an outer WHERE, offered to the subquery that defines `rn`. */
export interface RowNumberLimit {
  readonly qualifier: string | null;
  readonly name: string;
  readonly limit: number;
}

export interface SelectOptions {
  /** The outer `rn <= N` of the row_number() top-n pattern, when it names this select's column. */
  readonly rowNumberLimit?: RowNumberLimit;
  /**
   * The first `n` GROUP BY entries are correlation keys added by decorrelation: the planned
   * relation then carries `emptyRow`, the row the select would give over no rows.
   */
  readonly correlationGroups?: number;
}

/** A CTE visible by name: planned on first use, its plan shared by every use. */
export interface CteEntry {
  readonly stmt: SelectStmt;
  readonly columnNames: readonly string[];
  /** How many CTE frames were visible where it was defined (what its body may see). */
  readonly depth: number;
  planned?: Planned;
  planning?: boolean;
}

export interface PlannerContext {
  readonly view: ViewSource;
  readonly catalog: (schema: string | null, table: string) => TableSchema | undefined;
  readonly inputs: TableSchema[];
  /** Every base-table column an expression of the view resolves to. */
  readonly reads: ReadColumns;
  /** WITH frames, outermost first. */
  readonly ctes: Map<string, CteEntry>[];
  /** Scopes of the queries enclosing the one being planned, outermost first. */
  readonly enclosing: (readonly ScopeColumn[])[];
  /** Numbers the hidden columns appended for subqueries. */
  counter: number;
  /** A subquery's FROM scope (names only), by its AST node: for decorrelation. */
  readonly innerScopes: WeakMap<SelectStmt, ScopeColumn[]>;
  readonly planSelect: (stmt: SelectStmt, options?: SelectOptions) => Planned;
}

/** An expression context over `scope` that knows the enclosing queries (for messages). */
export function exprContext(pc: PlannerContext, scope: readonly ScopeColumn[], clause: string): ExprContext {
  return { view: pc.view, scope, clause, enclosing: pc.enclosing };
}

/**
 * Refuses a FROM list that names two items alike, as PostgreSQL does (42712): otherwise a
 * qualified column found in only one of them would be accepted where PostgreSQL refuses the view.
 * Two tables without aliases and of different schemas may share a name (PostgreSQL allows it).
 */
export function checkDistinctNames(from: readonly Node[], pc: PlannerContext): void {
  const seen: { name: string; relationId: number | undefined }[] = [];
  const visit = (item: Node): void => {
    const [kind, body] = nodeKind(item);
    let name: string | undefined;
    let relationId: number | undefined;
    let loc: number | undefined;
    if (kind === 'JoinExpr') {
      const j = body as JoinExpr;
      // An alias hides the join's own names (planJoin refuses the alias itself).
      if (j.alias) {
        name = j.alias.aliasname;
        loc = locationOf(j.rarg);
      } else {
        if (j.larg) visit(j.larg);
        if (j.rarg) visit(j.rarg);
        return;
      }
    } else if (kind === 'RangeVar') {
      const rv = body as RangeVar;
      name = rv.alias?.aliasname ?? rv.relname;
      loc = rv.location;
      if (!rv.alias && !(!rv.schemaname && findCte(pc, rv.relname ?? ''))) {
        relationId = pc.catalog(rv.schemaname ?? null, rv.relname ?? '')?.relationId;
        // A missing table: planTable says it does not exist.
        if (relationId === undefined) return;
      }
    } else if (kind === 'RangeSubselect') {
      name = (body as RangeSubselect).alias?.aliasname;
      loc = locationOf((body as RangeSubselect).subquery);
    }
    if (name === undefined) return;
    const clash = seen.find(
      (s) =>
        s.name === name &&
        (s.relationId === undefined || relationId === undefined || s.relationId === relationId),
    );
    if (clash)
      throw invalid(
        pc.view,
        loc,
        `table name "${name}" specified more than once`,
        'Give each item of the FROM list its own alias.',
      );
    seen.push({ name, relationId });
  };
  from.forEach(visit);
}

/** Each item of a FROM list, planned on its own (plan-where.ts joins them). */
export function planFromItems(
  from: readonly Node[],
  pc: PlannerContext,
  limits: readonly RowNumberLimit[],
): Planned[] {
  if (from.length === 0)
    throw unsupported(pc.view, 0, 'SELECT without FROM', 'A view must read at least one table.');
  return from.map((item) => planFromItem(item, pc, limits));
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
      const inner = withoutEnclosing(pc, () => pc.planSelect(stmt, limit ? { rowNumberLimit: limit } : {}));
      return requalify(inner, alias, strings(rs.alias?.colnames));
    }
    case 'RangeFunction':
      throw unsupported(pc.view, undefined, 'functions in FROM (set-returning functions)');
    default:
      throw unsupported(pc.view, locationOf(item), `FROM item ${kind}`);
  }
}

/** A subquery in FROM sees no enclosing query (LATERAL is not supported). */
function withoutEnclosing<T>(pc: PlannerContext, f: () => T): T {
  const saved = pc.enclosing.splice(0);
  try {
    return f();
  } finally {
    pc.enclosing.push(...saved);
  }
}

/** The relation under a table alias and column aliases (subqueries, CTE references). */
function requalify(inner: Planned, alias: string | null, names: readonly string[]): Planned {
  const order = inner.starOrder ?? inner.scope.map((_, i) => i);
  const scope = inner.scope.map((c, i) => {
    const out: ScopeColumn = {
      qualifier: alias,
      name: names[order.indexOf(i)] ?? c.name,
      type: c.type,
      ...(c.notNull === true ? { notNull: true } : {}),
      ...(c.hiddenStar === true ? { hiddenStar: true, hiddenUnqualified: true } : {}),
    };
    return out;
  });
  return { ...inner, scope };
}

function planTable(rv: RangeVar, pc: PlannerContext): Planned {
  if (rv.inh === false) throw unsupported(pc.view, rv.location, 'FROM ONLY');
  const names = strings(rv.alias?.colnames);
  if (!rv.schemaname) {
    const cte = findCte(pc, rv.relname ?? '');
    if (cte) {
      const planned = planCte(cte, rv, pc);
      return requalify(planned, rv.alias?.aliasname ?? rv.relname ?? null, [
        ...names,
        ...cte.columnNames.slice(names.length),
      ]);
    }
  }
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
  const columns = table.columns.map((c) => ({
    name: c.name,
    type: typeFromName(c.typeName),
    ...(c.nullable ? {} : { notNull: true }),
  }));
  return {
    node: { kind: 'scan', table, columns },
    scope: columns.map((c, i) => ({
      qualifier,
      name: names[i] ?? c.name,
      type: c.type,
      ...(c.notNull === true ? { notNull: true } : {}),
      origin: { relationId: table.relationId, column: c.name, reads: pc.reads },
    })),
    key: table.keyless || table.keyColumns.length === 0 ? undefined : [...table.keyColumns],
  };
}

/** The column names a table reference shows (after its column aliases); undefined for a CTE or an unknown table. */
export function tableColumnNames(pc: PlannerContext, rv: RangeVar): readonly string[] | undefined {
  if (!rv.schemaname && findCte(pc, rv.relname ?? '')) return undefined;
  const table = pc.catalog(rv.schemaname ?? null, rv.relname ?? '');
  const names = strings(rv.alias?.colnames);
  return table?.columns.map((c, i) => names[i] ?? c.name);
}

function findCte(pc: PlannerContext, name: string): CteEntry | undefined {
  for (let i = pc.ctes.length - 1; i >= 0; i--) {
    const e = pc.ctes[i]!.get(name);
    if (e) return e;
  }
  return undefined;
}

function planCte(cte: CteEntry, rv: RangeVar, pc: PlannerContext): Planned {
  if (cte.planned) return cte.planned;
  if (cte.planning)
    throw unsupported(
      pc.view,
      rv.location,
      `a CTE referring to itself ("${rv.relname}")`,
      'WITH RECURSIVE is not supported.',
    );
  cte.planning = true;
  // The body sees the CTE frames visible where it was defined, not those of the place of use.
  const hidden = pc.ctes.splice(cte.depth);
  try {
    cte.planned = withoutEnclosing(pc, () => pc.planSelect(cte.stmt));
  } finally {
    pc.ctes.push(...hidden);
    cte.planning = false;
  }
  return cte.planned;
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
  let left = planFromItem(j.larg!, pc, limits);
  let right = planFromItem(j.rarg!, pc, limits);
  const width = left.scope.length;
  const leftKey: Compiled[] = [];
  const rightKey: Compiled[] = [];
  const residual: Node[] = [];
  const using = strings(j.usingClause);
  const hide: number[] = [];
  if (using.length > 0) {
    const ctx = exprContext(pc, [...left.scope, ...right.scope], 'JOIN conditions');
    for (const name of using) {
      const li = left.scope.findIndex((c) => c.name === name && !c.hiddenUnqualified);
      const ri = right.scope.findIndex((c) => c.name === name && !c.hiddenUnqualified);
      if (li < 0 || ri < 0)
        throw invalid(
          pc.view,
          loc,
          `column "${name}" specified in USING clause does not exist in ${li < 0 ? 'left' : 'right'} table`,
        );
      if (joinType === 'full')
        throw unsupported(
          pc.view,
          loc,
          'FULL JOIN … USING',
          'Write FULL JOIN … ON a.x = b.x and COALESCE the columns.',
        );
      noteRead(left.scope[li]);
      noteRead(right.scope[ri]);
      addKey(columnRef(left.scope, li), columnRef(right.scope, ri), ctx, loc, leftKey, rightKey);
      // The unqualified name means the left copy (right copy for RIGHT JOIN).
      hide.push(joinType === 'right' ? li : width + ri);
    }
  } else if (j.quals) {
    const ctx = exprContext(pc, [...left.scope, ...right.scope], 'JOIN conditions');
    const lctx = exprContext(pc, left.scope, 'JOIN conditions');
    const rctx = exprContext(pc, right.scope, 'JOIN conditions');
    const leftFilters: RowFn[] = [];
    const rightFilters: RowFn[] = [];
    for (const conj of conjuncts(j.quals)) {
      if (containsSubLink(conj)) throw unsupported(pc.view, locationOf(conj), 'a subquery in JOIN … ON');
      const eq = equiJoin(conj, ctx, width);
      if (eq) {
        addKey(compileExpr(eq[0], lctx), compileExpr(eq[1], rctx), ctx, locationOf(conj), leftKey, rightKey);
        continue;
      }
      const cols = columnsUsed(conj, ctx);
      const onlyLeft = cols.length > 0 && cols.every((i) => i < width);
      const onlyRight = cols.length > 0 && cols.every((i) => i >= width);
      const bool = (c: ExprContext) =>
        coerce(compileExpr(conj, c), sqlType('bool'), {
          ctx: c,
          location: locationOf(conj),
          explicit: false,
        });
      if (onlyLeft && (joinType === 'inner' || joinType === 'right')) leftFilters.push(bool(lctx).fn);
      else if (onlyRight && (joinType === 'inner' || joinType === 'left')) rightFilters.push(bool(rctx).fn);
      else if (onlyLeft || onlyRight) {
        // A condition on the kept side of an outer join: rows failing it match nothing.
        const c = bool(onlyLeft ? lctx : rctx).fn;
        const gate: Compiled = { type: sqlType('bool'), fn: (r) => (c(r) === true ? true : null) };
        const always = constant(sqlType('bool'), true);
        leftKey.push(onlyLeft ? gate : always);
        rightKey.push(onlyLeft ? always : gate);
      } else residual.push(conj);
    }
    for (const p of leftFilters) left = filterRel(left, p);
    for (const p of rightFilters) right = filterRel(right, p);
  } else if (joinType !== 'inner') {
    throw invalid(pc.view, loc, `${joinType.toUpperCase()} JOIN needs ON or USING`);
  }
  let rel: Planned;
  if (residual.length === 0) {
    rel = joinRel({ left, right, kind: joinType, leftKey, rightKey });
  } else {
    const both = exprContext(pc, [...left.scope, ...right.scope], 'JOIN conditions');
    const preds = residual.map(
      (c) =>
        coerce(compileExpr(c, both), sqlType('bool'), { ctx: both, location: locationOf(c), explicit: false })
          .fn,
    );
    const p = preds.length === 1 ? preds[0]! : and(preds);
    rel =
      joinType === 'inner'
        ? filterRel(joinRel({ left, right, kind: 'inner', leftKey, rightKey }), p)
        : outerJoinWithResidual(left, right, joinType, leftKey, rightKey, p);
  }
  if (hide.length > 0) {
    const scope = rel.scope.map((c, i) =>
      hide.includes(i) ? { ...c, hiddenUnqualified: true, hiddenStar: true } : c,
    );
    rel = { ...rel, scope };
  }
  return rel;
}

function and(preds: readonly RowFn[]): RowFn {
  return (r) => {
    let sawNull = false;
    for (const p of preds) {
      const v = p(r);
      if (v === false) return false;
      if (v === null) sawNull = true;
    }
    return sawNull ? null : true;
  };
}

/** L ⟕ R on (keys and p) = (L ⋈ R filtered by p) ∪ (L ▷ R, NULL-padded); symmetric for right/full. */
function outerJoinWithResidual(
  left: Planned,
  right: Planned,
  kind: Exclude<JoinKind, 'inner'>,
  leftKey: readonly Compiled[],
  rightKey: readonly Compiled[],
  p: RowFn,
): Planned {
  const lw = left.scope.length;
  const rw = right.scope.length;
  const shape = joinRel({ left, right, kind, leftKey, rightKey });
  const matched = filterRel(joinRel({ left, right, kind: 'inner', leftKey, rightKey }), p).node;
  const parts: PlanNode[] = [matched];
  const padded = (side: Planned, pad: (r: readonly unknown[]) => unknown[]): PlanNode =>
    projectRel(
      side,
      shape.scope.map((c, i) => ({ type: c.type, fn: (r) => (pad(r)[i] ?? null) as never })),
      shape.scope,
      undefined,
    ).node;
  if (kind === 'left' || kind === 'full') {
    const anti = semiRel({ left, right, mode: 'anti', leftKey, rightKey, residual: p });
    parts.push(padded(anti, (r) => [...r, ...new Array<null>(rw).fill(null)]));
  }
  if (kind === 'right' || kind === 'full') {
    const swapped: RowFn = (r) => p([...r.slice(rw), ...r.slice(0, rw)]);
    const anti = semiRel({
      left: right,
      right: left,
      mode: 'anti',
      leftKey: rightKey,
      rightKey: leftKey,
      residual: swapped,
    });
    parts.push(padded(anti, (r) => [...new Array<null>(lw).fill(null), ...r]));
  }
  return {
    node: { kind: 'union-all', inputs: parts, columns: columnsOf(shape.scope) },
    scope: shape.scope,
    key: shape.key,
  };
}

/** The conjuncts of an AND tree (a condition that is no AND is its own one conjunct). */
export function conjuncts(n: Node): Node[] {
  const [k, b] = nodeKind(n);
  if (k === 'BoolExpr' && b['boolop'] === 'AND_EXPR') return ((b['args'] as Node[]) ?? []).flatMap(conjuncts);
  return [n];
}

export function containsSubLink(n: unknown): boolean {
  if (Array.isArray(n)) return n.some(containsSubLink);
  if (!n || typeof n !== 'object') return false;
  if ('SubLink' in n) return true;
  return Object.values(n as Record<string, unknown>).some(containsSubLink);
}

/** `l = r` where one side reads only the left input and the other only the right. */
export function equiJoin(n: Node, ctx: ExprContext, width: number): [Node, Node] | undefined {
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

/** Indexes of the scope columns an expression references (not looking into subqueries). */
export function columnsUsed(n: Node, ctx: ExprContext): number[] {
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if ('SubLink' in o) return;
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
export function addKey(
  l: Compiled,
  r: Compiled,
  ctx: ExprContext,
  loc: number | undefined,
  leftKey: Compiled[],
  rightKey: Compiled[],
): void {
  const [a, b] = unifyCompiled([l, r], [undefined, undefined], ctx, 'JOIN', loc);
  leftKey.push(keyOf(a!, l));
  rightKey.push(keyOf(b!, r));
}

/** A key expression: character(n) without its padding (it compares so); the plain column kept. */
function keyOf(c: Compiled, original: Compiled): Compiled {
  if (c.type.kind !== 'bpchar') return c.fn === original.fn ? original : c;
  const f = c.fn;
  return {
    ...c,
    fn: (r) => {
      const v = f(r);
      if (typeof v !== 'string') return v;
      let end = v.length;
      while (end > 0 && v.charCodeAt(end - 1) === 32) end--;
      return end === v.length ? v : v.slice(0, end);
    },
  };
}
