/**
 * Subqueries in expressions, decorrelated into joins, semi-joins and aggregates.
 *
 * A subquery's WHERE conditions that read the enclosing query are taken out of it: equalities
 * `inner = outer` become join keys (the inner sides are added to its select list, and to its
 * GROUP BY when it aggregates), other conditions become the residual of a semi-join. Then:
 *
 *   WHERE [NOT] EXISTS (…)          → semi-join (anti-join): rows with (without) a match
 *   WHERE x [NOT] IN (…)            → the same, with x = the subquery's column as one more key;
 *                                     NOT IN over values that may be NULL also joins the counts
 *                                     n = count(*), c = count(value) per correlation and keeps
 *                                     a row only when n = 0, or x is not NULL and n = c (SQL's
 *                                     NULL semantics: `1 NOT IN (2, NULL)` is NULL, not true)
 *   (SELECT agg(…) … WHERE k = outer) anywhere → LEFT JOIN to the subquery grouped by k; a row
 *                                     without a group gets the aggregate over no rows (count 0,
 *                                     others NULL); uncorrelated → a join on no key to its row
 *   EXISTS / IN elsewhere (OR, CASE, the select list) → LEFT JOIN to the DISTINCT subquery,
 *                                     the match as a boolean column (with the counts for IN)
 *
 * Columns joined for a subquery are hidden (no name resolves to them) and dropped again after
 * a WHERE condition; `substitute` maps the subquery's AST node to its value.
 */
import type { Node, SelectStmt, SubLink } from 'libpg-query';
import type { Value } from '../decode/value.ts';
import { andNode, locationOf, nodeKind, resTarget, strings, subLinks, trueConst } from './ast.ts';
import { coerce } from './coerce.ts';
import { compileExpr, findColumn } from './compile-expr.ts';
import type { AggregateCall } from './plan.ts';
import { collectAggregates } from './plan-aggregate.ts';
import {
  addKey,
  conjuncts,
  exprContext,
  planFromItems,
  type PlannerContext,
  type SelectOptions,
} from './plan-from.ts';
import { columnRef, columnsOf, filterRel, joinRel, semiRel, truncateRel, type Planned } from './relation.ts';
import { nodeKey, type Compiled, type ExprContext, type ScopeColumn } from './scope.ts';
import { sqlType } from './sql-type.ts';
import { invalid, unsupported } from './view-error.ts';

interface Correlation {
  /** The subquery with its correlated conditions taken out of WHERE. */
  readonly stmt: SelectStmt;
  /** Inner and outer sides of the correlated equalities, pairwise. */
  readonly inner: Node[];
  readonly outer: Node[];
  /** Correlated conditions that are not such equalities. */
  readonly residuals: Node[];
  /** The subquery's FROM scope (names only), for the residuals' inner columns. */
  readonly innerScope: ScopeColumn[];
}

/** Plans `stmt` as a subquery of a query whose columns are `outer` (for messages). */
function planSubquery(
  stmt: SelectStmt,
  outer: readonly ScopeColumn[],
  pc: PlannerContext,
  options: SelectOptions = {},
): Planned {
  pc.enclosing.push(outer);
  try {
    return pc.planSelect(stmt, options);
  } finally {
    pc.enclosing.pop();
  }
}

/** The columns a subquery's FROM makes visible, by name (its items are planned, then dropped). */
function innerScopeOf(stmt: SelectStmt, outer: readonly ScopeColumn[], pc: PlannerContext): ScopeColumn[] {
  let scope = pc.innerScopes.get(stmt);
  if (scope === undefined) {
    pc.enclosing.push(outer);
    try {
      scope = planFromItems(stmt.fromClause ?? [], pc, []).flatMap((l) => l.scope);
    } finally {
      pc.enclosing.pop();
    }
    pc.innerScopes.set(stmt, scope);
  }
  return scope;
}

interface Refs {
  readonly inner: boolean;
  /** Outer scope columns read. */
  readonly outer: number[];
}

/** Which scope each column reference of `n` resolves in (inner first), not looking into subqueries. */
function refsOf(
  n: unknown,
  inner: readonly ScopeColumn[],
  outer: readonly ScopeColumn[],
  pc: PlannerContext,
): Refs {
  let isInner = false;
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    if ('SubLink' in v) return;
    const ref = (v as { ColumnRef?: { fields?: Node[]; location?: number } }).ColumnRef;
    if (ref) {
      const parts = strings(ref.fields);
      if (parts.includes('*')) return;
      if (findColumn(parts, inner, pc.view, ref.location) >= 0) isInner = true;
      else {
        const j = findColumn(parts, outer, pc.view, ref.location);
        if (j >= 0) out.push(j);
        else isInner = true;
      }
      return;
    }
    Object.values(v as Record<string, unknown>).forEach(walk);
  };
  walk(n);
  return { inner: isInner, outer: out };
}

function correlate(stmt: SelectStmt, outer: readonly ScopeColumn[], pc: PlannerContext): Correlation {
  const innerScope = innerScopeOf(stmt, outer, pc);
  const keep: Node[] = [];
  const inner: Node[] = [];
  const outerSides: Node[] = [];
  const residuals: Node[] = [];
  for (const c of stmt.whereClause ? conjuncts(stmt.whereClause) : []) {
    const r = refsOf(c, innerScope, outer, pc);
    if (r.outer.length === 0) {
      keep.push(c);
      continue;
    }
    const [k, b] = nodeKind(c);
    if (k === 'A_Expr' && b['kind'] === 'AEXPR_OP' && strings(b['name'] as Node[]).join() === '=') {
      const l = b['lexpr'] as Node;
      const rr = b['rexpr'] as Node;
      const lr = refsOf(l, innerScope, outer, pc);
      const rrr = refsOf(rr, innerScope, outer, pc);
      const onlyInner = (x: Refs) => x.inner && x.outer.length === 0;
      const onlyOuter = (x: Refs) => !x.inner && x.outer.length > 0;
      if (onlyInner(lr) && onlyOuter(rrr)) {
        inner.push(l);
        outerSides.push(rr);
        continue;
      }
      if (onlyOuter(lr) && onlyInner(rrr)) {
        inner.push(rr);
        outerSides.push(l);
        continue;
      }
    }
    residuals.push(c);
  }
  const where = andNode(keep, locationOf(stmt.whereClause));
  const { whereClause: _w, ...rest } = stmt;
  return {
    stmt: where === undefined ? rest : { ...rest, whereClause: where },
    inner,
    outer: outerSides,
    residuals,
    innerScope,
  };
}

/** The enclosing query's columns read from inside the subqueries of `conj` (and IN's left side). */
export function correlatedColumns(conj: Node, outer: readonly ScopeColumn[], pc: PlannerContext): number[] {
  const out: number[] = [];
  for (const sl of subLinks([conj])) {
    const link = nodeKind(sl)[1] as SubLink;
    const stmt = nodeKind(link.subselect!)[1] as SelectStmt;
    const inner = innerScopeOf(stmt, outer, pc);
    out.push(...refsOf([stmt.whereClause, stmt.targetList, stmt.havingClause], inner, outer, pc).outer);
    if (link.testexpr) out.push(...refsOf(link.testexpr, [], outer, pc).outer);
  }
  return out;
}

function aggregates(stmt: SelectStmt): boolean {
  return (
    (stmt.groupClause?.length ?? 0) > 0 ||
    collectAggregates([...(stmt.targetList ?? []), ...(stmt.havingClause ? [stmt.havingClause] : [])])
      .length > 0
  );
}

function subselect(link: SubLink): SelectStmt {
  return nodeKind(link.subselect!)[1] as SelectStmt;
}

type Form =
  { kind: 'exists'; link: SubLink; negated: boolean } | { kind: 'in'; link: SubLink; negated: boolean };

/** EXISTS, NOT EXISTS, IN, NOT IN (and `= ANY`, `<> ALL`) as a whole WHERE condition. */
function topLevelForm(conj: Node): Form | undefined {
  let [k, b] = nodeKind(conj);
  let negated = false;
  if (k === 'BoolExpr' && b['boolop'] === 'NOT_EXPR') {
    const arg = (b['args'] as Node[])[0];
    if (!arg) return undefined;
    [k, b] = nodeKind(arg);
    negated = true;
  }
  if (k !== 'SubLink') return undefined;
  const link = b as SubLink;
  const op = strings(link.operName).join();
  if (link.subLinkType === 'EXISTS_SUBLINK') return { kind: 'exists', link, negated };
  if (link.subLinkType === 'ANY_SUBLINK' && (op === '' || op === '=')) return { kind: 'in', link, negated };
  if (link.subLinkType === 'ALL_SUBLINK' && (op === '<>' || op === '!='))
    return { kind: 'in', link, negated: !negated };
  return undefined;
}

/** A WHERE condition with subqueries, applied to `rel`; the result has `rel`'s columns. */
export function applySubqueryConjunct(rel: Planned, conj: Node, pc: PlannerContext): Planned {
  const form = topLevelForm(conj);
  if (form) return semiJoin(rel, form, pc);
  const width = rel.scope.length;
  const subs = withSubqueryColumns(rel, [conj], pc, { correlated: true });
  const ctx: ExprContext = { ...exprContext(pc, subs.rel.scope, 'WHERE'), substitute: subs.substitute };
  const p = coerce(compileExpr(conj, ctx), sqlType('bool'), {
    ctx,
    location: locationOf(conj),
    explicit: false,
  });
  return truncateRel(filterRel(subs.rel, p.fn), width);
}

/** A hidden column appended for a subquery: no name resolves to it, `*` leaves it out. */
function hidden(c: ScopeColumn, pc: PlannerContext): ScopeColumn {
  return {
    qualifier: `\u0000sub${pc.counter++}`,
    name: c.name,
    type: c.type,
    hiddenStar: true,
    hiddenUnqualified: true,
    ...(c.notNull === true ? { notNull: true } : {}),
  };
}

function hideAll(rel: Planned, pc: PlannerContext): Planned {
  return { ...rel, scope: rel.scope.map((c) => hidden(c, pc)) };
}

const keyName = (i: number) => `\u0001k${i}`;

function semiJoin(rel: Planned, form: Form, pc: PlannerContext): Planned {
  const view = pc.view;
  const link = form.link;
  const loc = link.location;
  const stmt = subselect(link);
  const corr = correlate(stmt, rel.scope, pc);
  const correlated = corr.inner.length > 0 || corr.residuals.length > 0;
  const agg = aggregates(stmt);
  if (correlated && (stmt.limitCount !== undefined || stmt.limitOffset !== undefined))
    throw unsupported(view, loc, 'LIMIT/OFFSET in a correlated subquery');
  if (form.kind === 'exists' && agg && !(stmt.groupClause?.length ?? 0))
    throw unsupported(view, loc, 'EXISTS over an aggregate without GROUP BY (it is always true)');
  if (agg && corr.residuals.length > 0)
    throw unsupported(view, loc, 'a correlated condition other than an equality in an aggregating subquery');
  // The residuals' inner columns join the select list so the residual can read them.
  const residualCols = innerColumns(corr, pc);
  const keys = corr.inner.map((n, i) => resTarget(keyName(i), n));
  let value: Node[] = [];
  if (form.kind === 'in') {
    const targets = stmt.targetList ?? [];
    if (targets.length !== 1) throw invalid(view, loc, 'subquery has too many columns');
    const val = (nodeKind(targets[0]!)[1] as { val?: Node }).val;
    if (!val || strings((nodeKind(val)[1] as { fields?: Node[] }).fields).includes('*'))
      throw unsupported(view, loc, '* as the column of an IN subquery');
    value = [resTarget('\u0001v', val)];
  }
  const list = [...keys, ...value, ...residualCols.targets];
  const rewritten: SelectStmt = {
    ...corr.stmt,
    targetList: list.length > 0 ? list : [resTarget('\u0001t', trueConst())],
    ...(agg && corr.inner.length > 0 ? { groupClause: [...corr.inner, ...(stmt.groupClause ?? [])] } : {}),
  };
  if (!stmt.limitCount) delete (rewritten as { sortClause?: unknown }).sortClause;
  const s = planSubquery(rewritten, rel.scope, pc);
  const octx = exprContext(pc, rel.scope, 'WHERE');
  const leftKey: Compiled[] = [];
  const rightKey: Compiled[] = [];
  corr.outer.forEach((o, i) =>
    addKey(compileExpr(o, octx), columnRef(s.scope, i), octx, loc, leftKey, rightKey),
  );
  let test: Compiled | undefined;
  if (form.kind === 'in') {
    test = compileExpr(link.testexpr!, octx);
    addKey(test, columnRef(s.scope, keys.length), octx, loc, leftKey, rightKey);
  }
  let residual: ((r: readonly Value[]) => Value) | undefined;
  if (corr.residuals.length > 0) {
    const first = keys.length + value.length;
    const scope = s.scope.map((c, i) => residualCols.columns[i - first] ?? hidden(c, pc));
    const rctx: ExprContext = {
      view,
      scope,
      offset: rel.scope.length,
      outer: { scope: rel.scope, offset: 0 },
      clause: 'the subquery condition',
      enclosing: pc.enclosing,
    };
    const preds = corr.residuals.map(
      (c) =>
        coerce(compileExpr(c, rctx), sqlType('bool'), { ctx: rctx, location: locationOf(c), explicit: false })
          .fn,
    );
    residual =
      preds.length === 1
        ? preds[0]!
        : (r) => {
            let sawNull = false;
            for (const p of preds) {
              const v = p(r);
              if (v === false) return false;
              if (v === null) sawNull = true;
            }
            return sawNull ? null : true;
          };
  }
  const mode = form.negated ? 'anti' : 'semi';
  const out = semiRel({ left: rel, right: s, mode, leftKey, rightKey, ...(residual ? { residual } : {}) });
  if (form.kind !== 'in' || !form.negated) return out;
  const valueCol = s.scope[keys.length]!;
  if (test!.notNull === true && valueCol.notNull === true) return out;
  if (corr.residuals.length > 0)
    throw unsupported(
      view,
      loc,
      'NOT IN over values that may be NULL, correlated by a condition other than an equality',
      'Use NOT EXISTS, or make both sides NOT NULL.',
    );
  return notInNulls(out, s, corr, test!, rel.scope.length, pc);
}

/** NOT IN's NULL rule over the anti-join's rows: keep a row if n = 0, or x is not NULL and n = c. */
function notInNulls(
  anti: Planned,
  s: Planned,
  corr: Correlation,
  test: Compiled,
  width: number,
  pc: PlannerContext,
): Planned {
  const counts = countsOf(s, corr.inner.length, corr.inner.length);
  const joined = joinCounts(anti, counts, corr, pc);
  const n = width + corr.inner.length;
  const c = n + 1;
  const x = test.fn;
  const keep = (r: readonly Value[]): Value => {
    const total = r[n] ?? null;
    if (total === null || total === 0n) return true;
    return x(r) !== null && r[c] === total;
  };
  return truncateRel(filterRel(joined, keep), width);
}

/** Per correlation group: count(*) and count(value) of the subquery's rows (keys first). */
function countsOf(s: Planned, keyCount: number, valueIndex: number): Planned {
  const int8 = sqlType('int8');
  const valueFn = (r: readonly Value[]) => r[valueIndex] ?? null;
  const countStar: AggregateCall = {
    name: 'count',
    star: true,
    distinct: false,
    args: [],
    argType: undefined,
    resultType: int8,
  };
  const countValue: AggregateCall = {
    name: 'count',
    star: false,
    distinct: false,
    args: [valueFn],
    argType: s.scope[valueIndex]!.type,
    resultType: int8,
  };
  const scope: ScopeColumn[] = [
    ...s.scope.slice(0, keyCount),
    { qualifier: null, name: 'n', type: int8, notNull: true },
    { qualifier: null, name: 'c', type: int8, notNull: true },
  ];
  return {
    node: {
      kind: 'aggregate',
      input: s.node,
      groupBy: s.scope.slice(0, keyCount).map((_, i) => (r: readonly Value[]) => r[i] ?? null),
      aggregates: [countStar, countValue],
      columns: columnsOf(scope),
    },
    scope,
    key: scope.slice(0, keyCount).map((_, i) => i),
  };
}

/** `rel` with the counts of its correlation group appended (a LEFT JOIN; no key: the one global row). */
function joinCounts(rel: Planned, counts: Planned, corr: Correlation, pc: PlannerContext): Planned {
  const octx = exprContext(pc, rel.scope, 'WHERE');
  const leftKey: Compiled[] = [];
  const rightKey: Compiled[] = [];
  corr.outer.forEach((o, i) =>
    addKey(compileExpr(o, octx), columnRef(counts.scope, i), octx, undefined, leftKey, rightKey),
  );
  return joinRel({
    left: rel,
    right: hideAll(counts, pc),
    kind: corr.outer.length === 0 ? 'inner' : 'left',
    leftKey,
    rightKey,
  });
}

/** The inner columns the residuals read, as extra select-list entries, and their names to resolve by. */
function innerColumns(corr: Correlation, pc: PlannerContext): { targets: Node[]; columns: ScopeColumn[] } {
  const targets: Node[] = [];
  const columns: ScopeColumn[] = [];
  const seen = new Set<number>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object' || 'SubLink' in v) return;
    const ref = (v as { ColumnRef?: { fields?: Node[]; location?: number } }).ColumnRef;
    if (ref) {
      const i = findColumn(strings(ref.fields), corr.innerScope, pc.view, ref.location);
      if (i < 0 || seen.has(i)) return;
      seen.add(i);
      const c = corr.innerScope[i]!;
      targets.push(resTarget(`\u0001r${targets.length}`, v as Node));
      columns.push({ qualifier: c.qualifier, name: c.name, type: c.type });
      return;
    }
    Object.values(v as Record<string, unknown>).forEach(walk);
  };
  walk(corr.residuals);
  return { targets, columns };
}

export interface SubqueryColumns {
  readonly rel: Planned;
  /** Maps a subquery's AST node (of the given expressions) to its value over `rel`'s rows. */
  readonly substitute: (n: Node) => Compiled | undefined;
}

/**
 * The subqueries in `nodes` as columns joined to `rel` (see the module comment). With
 * `correlated: false` (HAVING, the select list of a grouped query) a subquery may not read the
 * enclosing query.
 */
export function withSubqueryColumns(
  rel: Planned,
  nodes: readonly Node[],
  pc: PlannerContext,
  options: { correlated: boolean },
): SubqueryColumns {
  const links = subLinks(nodes);
  if (links.length === 0) return { rel, substitute: () => undefined };
  const values = new Map<string, Compiled>();
  let out = rel;
  for (const node of links) {
    const key = nodeKey(node);
    if (values.has(key)) continue;
    const link = nodeKind(node)[1] as SubLink;
    const outer = options.correlated ? out.scope : [];
    const r =
      link.subLinkType === 'EXPR_SUBLINK'
        ? scalarColumn(out, link, outer, pc)
        : link.subLinkType === 'EXISTS_SUBLINK'
          ? existsColumn(out, link, outer, pc)
          : inColumn(out, link, outer, pc);
    out = r.rel;
    values.set(key, r.value);
  }
  return {
    rel: out,
    substitute: (n) => (nodeKind(n)[0] === 'SubLink' ? values.get(nodeKey(n)) : undefined),
  };
}

interface Column {
  readonly rel: Planned;
  readonly value: Compiled;
}

/** Joins `s` (its first `keys` columns the correlation keys) to `rel` on the outer sides. */
function joinOnKeys(
  rel: Planned,
  s: Planned,
  corr: Correlation,
  pc: PlannerContext,
  kind: 'inner' | 'left',
  extra?: { left: Compiled; right: number },
): Planned {
  const octx = exprContext(pc, rel.scope, 'WHERE');
  const leftKey: Compiled[] = [];
  const rightKey: Compiled[] = [];
  corr.outer.forEach((o, i) =>
    addKey(compileExpr(o, octx), columnRef(s.scope, i), octx, undefined, leftKey, rightKey),
  );
  if (extra) addKey(extra.left, columnRef(s.scope, extra.right), octx, undefined, leftKey, rightKey);
  return joinRel({ left: rel, right: hideAll(s, pc), kind, leftKey, rightKey });
}

function scalarColumn(
  rel: Planned,
  link: SubLink,
  outer: readonly ScopeColumn[],
  pc: PlannerContext,
): Column {
  const view = pc.view;
  const loc = link.location;
  const stmt = subselect(link);
  const targets = stmt.targetList ?? [];
  if (targets.length !== 1) throw invalid(view, loc, 'subquery must return only one column');
  const corr = correlate(stmt, outer, pc);
  if (corr.residuals.length > 0)
    throw unsupported(
      view,
      loc,
      'a scalar subquery correlated by a condition other than an equality',
      'Correlate scalar subqueries by inner = outer equalities.',
    );
  if (!aggregates(stmt) || (stmt.groupClause?.length ?? 0) > 0)
    throw unsupported(
      view,
      loc,
      'a scalar subquery that is not an aggregate without GROUP BY (it could return more than one row)',
      'Write it as an aggregate, e.g. (SELECT max(x) FROM …), or join the table in FROM.',
    );
  const width = rel.scope.length;
  if (corr.inner.length === 0) {
    const s = planSubquery(corr.stmt, outer, pc);
    // A global aggregate has exactly one row; with HAVING, at most one.
    const joined = joinOnKeys(rel, s, corr, pc, stmt.havingClause ? 'left' : 'inner');
    return { rel: joined, value: columnRef(joined.scope, width) };
  }
  const keys = corr.inner.map((n, i) => resTarget(keyName(i), n));
  const rewritten: SelectStmt = {
    ...corr.stmt,
    targetList: [...keys, ...targets],
    groupClause: [...corr.inner],
  };
  const s = planSubquery(rewritten, outer, pc, { correlationGroups: keys.length });
  const joined = joinOnKeys(rel, s, corr, pc, 'left');
  const marker = width;
  const at = width + keys.length;
  const emptyRow = stmt.havingClause ? undefined : s.emptyRow;
  let empty: Value | undefined;
  const emptyValue = (): Value => (empty ??= emptyRow ? (emptyRow()[keys.length] ?? null) : null);
  const type = s.scope[keys.length]!.type;
  return {
    rel: joined,
    value: {
      type,
      fn: (r) => (r[marker] === null ? emptyValue() : (r[at] ?? null)),
    },
  };
}

function existsColumn(
  rel: Planned,
  link: SubLink,
  outer: readonly ScopeColumn[],
  pc: PlannerContext,
): Column {
  const view = pc.view;
  const stmt = subselect(link);
  const corr = correlate(stmt, outer, pc);
  if (corr.residuals.length > 0)
    throw unsupported(
      view,
      link.location,
      'EXISTS correlated by a condition other than an equality, other than as a whole WHERE condition',
    );
  if (aggregates(stmt)) throw unsupported(view, link.location, 'EXISTS over an aggregating subquery here');
  const keys = corr.inner.map((n, i) => resTarget(keyName(i), n));
  const s = planSubquery(
    { ...corr.stmt, targetList: [...keys, resTarget('\u0001m', trueConst())], distinctClause: [{} as Node] },
    outer,
    pc,
  );
  const width = rel.scope.length;
  const joined = joinOnKeys(rel, s, corr, pc, 'left');
  const m = width + keys.length;
  return { rel: joined, value: { type: sqlType('bool'), fn: (r) => r[m] === true, notNull: true } };
}

function inColumn(rel: Planned, link: SubLink, outer: readonly ScopeColumn[], pc: PlannerContext): Column {
  const view = pc.view;
  const op = strings(link.operName).join();
  const all = link.subLinkType === 'ALL_SUBLINK';
  if (!(
    (link.subLinkType === 'ANY_SUBLINK' && (op === '' || op === '=')) ||
    (all && (op === '<>' || op === '!='))
  ))
    throw unsupported(
      view,
      link.location,
      `${op || '='} ${all ? 'ALL' : link.subLinkType === 'ANY_SUBLINK' ? 'ANY' : String(link.subLinkType)} (subquery)`,
      'Use IN, NOT IN, EXISTS or a scalar subquery.',
    );
  const stmt = subselect(link);
  const targets = stmt.targetList ?? [];
  if (targets.length !== 1) throw invalid(view, link.location, 'subquery has too many columns');
  const corr = correlate(stmt, outer, pc);
  if (corr.residuals.length > 0)
    throw unsupported(view, link.location, 'IN correlated by a condition other than an equality, here');
  const agg = aggregates(stmt);
  const keys = corr.inner.map((n, i) => resTarget(keyName(i), n));
  const val = (nodeKind(targets[0]!)[1] as { val?: Node }).val!;
  const s = planSubquery(
    {
      ...corr.stmt,
      targetList: [...keys, resTarget('\u0001v', val), resTarget('\u0001m', trueConst())],
      ...(agg && corr.inner.length > 0 ? { groupClause: [...corr.inner, ...(stmt.groupClause ?? [])] } : {}),
      distinctClause: [{} as Node],
    },
    outer,
    pc,
  );
  const width = rel.scope.length;
  const test = compileExpr(link.testexpr!, exprContext(pc, rel.scope, 'WHERE'));
  const matched = joinOnKeys(rel, s, corr, pc, 'left', { left: test, right: keys.length });
  const m = width + keys.length + 1;
  const negate = all;
  if (test.notNull === true && s.scope[keys.length]!.notNull === true) {
    return {
      rel: matched,
      value: { type: sqlType('bool'), fn: (r) => (r[m] === true) !== negate, notNull: true },
    };
  }
  const counts = countsOf(s, keys.length, keys.length);
  const joined = joinCounts(matched, counts, corr, pc);
  const n = matched.scope.length + keys.length;
  const c = n + 1;
  const x = test.fn;
  const three = (r: readonly Value[]): Value => {
    if (r[m] === true) return true;
    const total = r[n] ?? null;
    if (total === null || total === 0n) return false;
    return x(r) === null || r[c] !== total ? null : false;
  };
  return {
    rel: joined,
    value: {
      type: sqlType('bool'),
      fn: negate
        ? (r) => {
            const v = three(r);
            return v === null ? null : !v;
          }
        : three,
    },
  };
}
