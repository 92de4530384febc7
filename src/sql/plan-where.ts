/**
 * `FROM a, b, c WHERE …`: the FROM items joined by the WHERE's conditions.
 *
 *   1. OR-factoring: (A AND B) OR (A AND C) → A AND (B OR C), so a join condition repeated in
 *      every branch (TPC-H Q19) becomes a join key; an OR whose every branch restricts item x
 *      also gives x the OR of those restrictions as a filter of its own (the OR stays).
 *   2. conditions on one item → filters on it, before any join
 *   3. equalities between two items → join keys; lookups by key are joined to each other first
 *      (preJoinDimensions), then the items are joined in FROM order, each next one the first
 *      connected to those joined by an equality (a cross join only when none is)
 *   4. other conditions → filters as soon as every item they read is joined
 *   5. conditions with subqueries (subquery.ts) → semi/anti joins, or joined columns and a
 *      filter, as soon as the items they read are joined (EXISTS on one table filters that table
 *      before the joins)
 */
import type { Node } from 'libpg-query';
import { locationOf, nodeKind, strings } from './ast.ts';
import { compileExpr } from './compile-expr.ts';
import { coerce } from './coerce.ts';
import {
  addKey,
  columnsUsed,
  conjuncts,
  containsSubLink,
  exprContext,
  type PlannerContext,
} from './plan-from.ts';
import { filterRel, joinRel, type Planned } from './relation.ts';
import { nodeKey, type Compiled, type ExprContext } from './scope.ts';
import { sqlType } from './sql-type.ts';
import { applySubqueryConjunct, correlatedColumns } from './subquery.ts';

interface Pending {
  readonly conj: Node;
  /** The FROM items it reads (indexes into the leaves). */
  readonly leaves: ReadonlySet<number>;
}

interface Edge {
  readonly a: number;
  readonly b: number;
  readonly exprA: Node;
  readonly exprB: Node;
  readonly location: number | undefined;
}

export function planWhere(leaves: Planned[], where: Node | undefined, pc: PlannerContext): Planned {
  const conjs = where ? conjuncts(where).flatMap(orFactor) : [];
  // Offsets of each item in the scope of all items side by side (FROM order): for classifying.
  const offsets: number[] = [];
  let w = 0;
  for (const l of leaves) {
    offsets.push(w);
    w += l.scope.length;
  }
  const all = exprContext(
    pc,
    leaves.flatMap((l) => l.scope),
    'WHERE',
  );
  const leafOf = (col: number): number => {
    let i = offsets.length - 1;
    while (i > 0 && offsets[i]! > col) i--;
    return i;
  };
  const filters: Node[][] = leaves.map(() => []);
  const edges: Edge[] = [];
  const residuals: Pending[] = [];
  const subqueries: Pending[] = [];
  for (const conj of conjs) {
    if (containsSubLink(conj)) {
      const cols = [...columnsUsed(conj, all), ...correlatedColumns(conj, all.scope, pc)];
      subqueries.push({ conj, leaves: new Set(cols.map(leafOf)) });
      continue;
    }
    const used = new Set(columnsUsed(conj, all).map(leafOf));
    if (used.size === 1) {
      filters[[...used][0]!]!.push(conj);
      continue;
    }
    const edge = used.size === 2 ? equiEdge(conj, all, leafOf) : undefined;
    if (edge) edges.push(edge);
    else {
      residuals.push({ conj, leaves: used });
      for (const [leaf, implied] of impliedFilters(conj, all, leafOf)) filters[leaf]!.push(implied);
    }
  }
  const planned = leaves.map((leaf, i) => applyFilters(leaf, filters[i]!, pc));
  // Subqueries reading one item only filter it before the joins.
  for (const s of subqueries.filter((q) => q.leaves.size === 1)) {
    const i = [...s.leaves][0]!;
    planned[i] = applySubqueryConjunct(planned[i]!, s.conj, pc);
  }
  const pending = subqueries.filter((q) => q.leaves.size !== 1);

  // Dimensions first (see preJoinDimensions), then a greedy join in FROM order, always along an
  // equality when one connects.
  const units = preJoinDimensions(planned, edges, pc);
  const unitOf = (leaf: number): Unit => units.find((u) => u.leaves.includes(leaf))!;
  const first = unitOf(0);
  let rel = first.rel;
  const joined = new Set(first.leaves);
  const place = new Map(first.place);
  const applyReady = () => {
    for (let k = residuals.length - 1; k >= 0; k--) {
      const r = residuals[k]!;
      if ([...r.leaves].every((l) => joined.has(l))) {
        rel = applyFilters(rel, [r.conj], pc);
        residuals.splice(k, 1);
      }
    }
    for (let k = 0; k < pending.length;) {
      const q = pending[k]!;
      if (q.leaves.size > 0 && [...q.leaves].every((l) => joined.has(l))) {
        rel = applySubqueryConjunct(rel, q.conj, pc);
        pending.splice(k, 1);
      } else k++;
    }
  };
  applyReady();
  while (joined.size < leaves.length) {
    const connected = (i: number) =>
      edges.some((e) => (e.a === i && joined.has(e.b)) || (e.b === i && joined.has(e.a)));
    let next = -1;
    for (let i = 0; i < leaves.length && next < 0; i++) if (!joined.has(i) && connected(i)) next = i;
    if (next < 0) for (let i = 0; i < leaves.length && next < 0; i++) if (!joined.has(i)) next = i;
    const unit = unitOf(next);
    const inUnit = (i: number) => unit.leaves.includes(i);
    const lctx = exprContext(pc, rel.scope, 'WHERE');
    const rctx = exprContext(pc, unit.rel.scope, 'WHERE');
    const leftKey: Compiled[] = [];
    const rightKey: Compiled[] = [];
    for (let k = edges.length - 1; k >= 0; k--) {
      const e = edges[k]!;
      const [mine, theirs] =
        inUnit(e.a) && joined.has(e.b)
          ? [e.exprB, e.exprA]
          : inUnit(e.b) && joined.has(e.a)
            ? [e.exprA, e.exprB]
            : [];
      if (!mine || !theirs) continue;
      addKey(compileExpr(mine, lctx), compileExpr(theirs, rctx), all, e.location, leftKey, rightKey);
      edges.splice(k, 1);
    }
    for (const [leaf, at] of unit.place) place.set(leaf, rel.scope.length + at);
    rel = joinRel({ left: rel, right: unit.rel, kind: 'inner', leftKey, rightKey });
    for (const leaf of unit.leaves) joined.add(leaf);
    applyReady();
  }
  // Equalities left over (a second edge between items already joined) and the rest.
  for (const e of edges) residuals.push({ conj: eqNode(e), leaves: new Set([e.a, e.b]) });
  for (const r of residuals) rel = applyFilters(rel, [r.conj], pc);
  for (const q of pending) rel = applySubqueryConjunct(rel, q.conj, pc);
  if (leaves.some((_, i) => place.get(i) !== offsets[i])) {
    const starOrder = leaves.flatMap((l, i) => {
      const inner = l.starOrder ?? l.scope.map((_, j) => j);
      return inner.map((j) => place.get(i)! + j);
    });
    rel = { ...rel, starOrder };
  }
  return rel;
}

/** Items already joined to each other, and where each item's columns start in their relation. */
interface Unit {
  readonly rel: Planned;
  readonly leaves: readonly number[];
  readonly place: ReadonlyMap<number, number>;
}

/**
 * Joins each item first with the items that hang off it by their key, where the item itself is
 * looked up by its key from another: in `orders ⋈ customers ⋈ regions` (orders.customer_id =
 * customers.id, customers.region_id = regions.id) customers ⋈ regions is planned before orders
 * joins it. A left-deep plan in FROM order would hold every order twice, in the left state of
 * each join, and write both on every order change; this way one join state holds the orders, and
 * the other only the small tables.
 *
 * A unit u is joined into c when all of u's equalities are with c and they cover u's key (each
 * c row matches at most one u row, so c's key stays the unit's key), and c's own key is covered
 * by its equalities with a third unit (c is a lookup too, not the large table).
 */
function preJoinDimensions(planned: readonly Planned[], edges: Edge[], pc: PlannerContext): Unit[] {
  const units: Unit[] = planned.map((rel, i) => ({ rel, leaves: [i], place: new Map([[i, 0]]) }));
  const has = (u: Unit, leaf: number) => u.leaves.includes(leaf);
  const between = (x: Unit, y: Unit) =>
    edges.filter((e) => (has(x, e.a) && has(y, e.b)) || (has(x, e.b) && has(y, e.a)));
  const keyedBy = (u: Unit, es: readonly Edge[]): boolean => {
    const key = u.rel.key;
    if (key === undefined || key.length === 0 || es.length === 0) return false;
    const ctx = exprContext(pc, u.rel.scope, 'WHERE');
    const cols = es.map((e) => compileExpr(has(u, e.a) ? e.exprA : e.exprB, ctx).column);
    return key.every((k) => cols.includes(k));
  };
  for (;;) {
    let merge: [Unit, Unit, Edge[]] | undefined;
    for (const c of units) {
      for (const u of units) {
        if (u === c || merge) continue;
        const es = between(c, u);
        const touching = edges.filter((e) => has(u, e.a) || has(u, e.b));
        if (es.length === 0 || touching.length !== es.length || !keyedBy(u, es)) continue;
        if (units.some((f) => f !== c && f !== u && keyedBy(c, between(f, c)))) merge = [c, u, es];
      }
    }
    if (!merge) return units;
    const [c, u, es] = merge;
    const lctx = exprContext(pc, c.rel.scope, 'WHERE');
    const rctx = exprContext(pc, u.rel.scope, 'WHERE');
    const all = exprContext(pc, [...c.rel.scope, ...u.rel.scope], 'WHERE');
    const leftKey: Compiled[] = [];
    const rightKey: Compiled[] = [];
    for (const e of es) {
      const [mine, theirs] = has(c, e.a) ? [e.exprA, e.exprB] : [e.exprB, e.exprA];
      addKey(compileExpr(mine, lctx), compileExpr(theirs, rctx), all, e.location, leftKey, rightKey);
      edges.splice(edges.indexOf(e), 1);
    }
    const width = c.rel.scope.length;
    const merged: Unit = {
      rel: joinRel({ left: c.rel, right: u.rel, kind: 'inner', leftKey, rightKey }),
      leaves: [...c.leaves, ...u.leaves],
      place: new Map([...c.place, ...[...u.place].map(([leaf, at]): [number, number] => [leaf, width + at])]),
    };
    units.splice(units.indexOf(c), 1, merged);
    units.splice(units.indexOf(u), 1);
  }
}

/** Filters `rel` by each condition; columns a condition proves non-NULL are marked so. */
function applyFilters(rel: Planned, conds: readonly Node[], pc: PlannerContext): Planned {
  let out = rel;
  for (const c of conds) {
    const ctx = exprContext(pc, out.scope, 'WHERE');
    const p = coerce(compileExpr(c, ctx), sqlType('bool'), { ctx, location: locationOf(c), explicit: false });
    out = filterRel(out, p.fn, impliedNotNull(c, ctx));
  }
  return out;
}

/** `a.x = b.y` between exactly two items. */
function equiEdge(conj: Node, all: ExprContext, leafOf: (col: number) => number): Edge | undefined {
  const [k, b] = nodeKind(conj);
  if (k !== 'A_Expr' || b['kind'] !== 'AEXPR_OP' || strings(b['name'] as Node[]).join() !== '=')
    return undefined;
  const l = b['lexpr'] as Node;
  const r = b['rexpr'] as Node;
  const ll = new Set(columnsUsed(l, all).map(leafOf));
  const rl = new Set(columnsUsed(r, all).map(leafOf));
  if (ll.size !== 1 || rl.size !== 1) return undefined;
  const a = [...ll][0]!;
  const c = [...rl][0]!;
  if (a === c) return undefined;
  return { a, b: c, exprA: l, exprB: r, location: locationOf(conj) };
}

function eqNode(e: Edge): Node {
  return {
    A_Expr: {
      kind: 'AEXPR_OP',
      name: [{ String: { sval: '=' } }],
      lexpr: e.exprA,
      rexpr: e.exprB,
      location: e.location,
    },
  } as Node;
}

/** (A AND B) OR (A AND C) → [A, B OR C]; an OR with a branch of only common parts → [common…]. */
export function orFactor(n: Node): Node[] {
  const [k, b] = nodeKind(n);
  if (k !== 'BoolExpr' || b['boolop'] !== 'OR_EXPR') return [n];
  const branches = disjuncts(n).map((d) => conjuncts(d));
  const keys = branches.map((cs) => new Set(cs.map(nodeKey)));
  const common = branches[0]!.filter((c) => keys.every((ks) => ks.has(nodeKey(c))));
  if (common.length === 0) return [n];
  const commonKeys = new Set(common.map(nodeKey));
  const rests = branches.map((cs) => cs.filter((c) => !commonKeys.has(nodeKey(c))));
  if (rests.some((r) => r.length === 0)) return common;
  const loc = locationOf(n);
  const andOf = (cs: Node[]): Node =>
    cs.length === 1 ? cs[0]! : ({ BoolExpr: { boolop: 'AND_EXPR', args: cs, location: loc } } as Node);
  return [...common, { BoolExpr: { boolop: 'OR_EXPR', args: rests.map(andOf), location: loc } } as Node];
}

function disjuncts(n: Node): Node[] {
  const [k, b] = nodeKind(n);
  if (k === 'BoolExpr' && b['boolop'] === 'OR_EXPR') return ((b['args'] as Node[]) ?? []).flatMap(disjuncts);
  return [n];
}

/** For an OR every branch of which restricts item x: x's filter `OR of those restrictions`. */
function impliedFilters(conj: Node, all: ExprContext, leafOf: (col: number) => number): [number, Node][] {
  const [k] = nodeKind(conj);
  if (k !== 'BoolExpr' || disjuncts(conj).length < 2) return [];
  const branches = disjuncts(conj).map((d) =>
    conjuncts(d).map((c) => ({ c, leaves: new Set(columnsUsed(c, all).map(leafOf)) })),
  );
  const candidates = new Set(branches[0]!.flatMap((x) => (x.leaves.size === 1 ? [...x.leaves] : [])));
  const out: [number, Node][] = [];
  const loc = locationOf(conj);
  for (const leaf of candidates) {
    const parts = branches.map((cs) =>
      cs.filter((x) => x.leaves.size === 1 && x.leaves.has(leaf)).map((x) => x.c),
    );
    if (parts.some((p) => p.length === 0)) continue;
    const andOf = (cs: Node[]): Node =>
      cs.length === 1 ? cs[0]! : ({ BoolExpr: { boolop: 'AND_EXPR', args: cs, location: loc } } as Node);
    out.push([leaf, { BoolExpr: { boolop: 'OR_EXPR', args: parts.map(andOf), location: loc } } as Node]);
  }
  return out;
}

const STRICT_OPS = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);

/** Columns a true condition proves non-NULL: `x IS NOT NULL`, `x = …`, `x LIKE …`, `x IN (…)`, BETWEEN. */
export function impliedNotNull(conj: Node, ctx: ExprContext): number[] {
  const [k, b] = nodeKind(conj);
  const col = (n: Node | undefined): number[] => {
    if (!n || nodeKind(n)[0] !== 'ColumnRef') return [];
    const c = compileExpr(n, ctx);
    return c.column === undefined ? [] : [c.column];
  };
  if (k === 'NullTest' && b['nulltesttype'] === 'IS_NOT_NULL') return col(b['arg'] as Node);
  if (k === 'A_Expr') {
    const kind = b['kind'];
    const op = strings(b['name'] as Node[]).join();
    if (kind === 'AEXPR_OP' && STRICT_OPS.has(op))
      return [...col(b['lexpr'] as Node), ...col(b['rexpr'] as Node)];
    if (kind === 'AEXPR_LIKE' || kind === 'AEXPR_ILIKE' || kind === 'AEXPR_IN' || kind === 'AEXPR_BETWEEN')
      return col(b['lexpr'] as Node);
  }
  return [];
}
