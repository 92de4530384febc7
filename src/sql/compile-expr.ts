/**
 * Compiles a scalar expression of the PostgreSQL AST into a closure over an input row, with the
 * result type PostgreSQL would infer. Semantics are PostgreSQL's: three-valued logic, NULL
 * propagation through strict operators, implicit casts toward the common type, errors for what
 * PostgreSQL would reject when the view is defined (unknown column, `text + int`, …).
 */
import type {
  A_Const,
  A_Expr,
  BoolExpr,
  BooleanTest,
  CaseExpr,
  CaseWhen,
  ColumnRef,
  FuncCall,
  MinMaxExpr,
  Node,
  NullTest,
  TypeCast,
  TypeName,
} from 'libpg-query';
import type { Value } from '../decode/value.ts';
import { Numeric } from '../decode/numeric.ts';
import { locationOf, nodeKind, strings } from './ast.ts';
import { outputText, rtrimSpaces } from './casts.ts';
import { coerce, constant, unifyCompiled } from './coerce.ts';
import { AGGREGATES, scalarFunction } from './functions.ts';
// Registers the temporal casts and functions (date_trunc, extract, date_part).
import './temporal-ops.ts';
import { noteRead, type Compiled, type ExprContext, type RowFn, type ScopeColumn } from './scope.ts';
import { isNumericFamily, sqlType, typeFromName, type SqlKind, type SqlType } from './sql-type.ts';
import { arith, compareValues, negate, SqlRuntimeError, type ArithOp } from './value-ops.ts';
import { qualifiedIntervalText, temporalOp, truncateInterval } from './temporal-arith.ts';
import { PgInterval } from '../decode/temporal.ts';
import { invalid, unsupported, type ViewSource } from './view-error.ts';

export function compileExpr(node: Node, ctx: ExprContext): Compiled {
  const sub = ctx.substitute?.(node);
  if (sub) return sub;
  const [kind, body] = nodeKind(node);
  const loc = locationOf(node);
  switch (kind) {
    case 'ColumnRef':
      return compileColumnRef(body as ColumnRef, ctx);
    case 'A_Const':
      return compileConst(body as A_Const);
    case 'TypeCast': {
      const tc = body as TypeCast;
      const target = typeFromTypeName(tc.typeName ?? {}, ctx);
      const arg = compileExpr(tc.arg!, ctx);
      const opts = { ctx, location: locationOf(tc.arg) ?? loc, explicit: true };
      const mask = intervalMask(tc.typeName, target);
      if (mask === undefined) return coerce(arg, target, opts);
      return qualifiedInterval(arg, mask, opts);
    }
    case 'A_Expr':
      return compileAExpr(body as A_Expr, ctx, loc);
    case 'BoolExpr':
      return compileBoolExpr(body as BoolExpr, ctx);
    case 'NullTest': {
      const nt = body as NullTest;
      const arg = compileExpr(nt.arg!, ctx).fn;
      const isNull = nt.nulltesttype === 'IS_NULL';
      return { type: sqlType('bool'), fn: (r) => (arg(r) === null) === isNull, notNull: true };
    }
    case 'BooleanTest': {
      const bt = body as BooleanTest;
      const arg = coerce(compileExpr(bt.arg!, ctx), sqlType('bool'), {
        ctx,
        location: loc,
        explicit: false,
      }).fn;
      const test: Record<string, (v: Value) => boolean> = {
        IS_TRUE: (v) => v === true,
        IS_NOT_TRUE: (v) => v !== true,
        IS_FALSE: (v) => v === false,
        IS_NOT_FALSE: (v) => v !== false,
        IS_UNKNOWN: (v) => v === null,
        IS_NOT_UNKNOWN: (v) => v !== null,
      };
      const t = test[bt.booltesttype ?? 'IS_TRUE']!;
      return { type: sqlType('bool'), fn: (r) => t(arg(r)), notNull: true };
    }
    case 'CaseExpr':
      return compileCase(body as CaseExpr, ctx, loc);
    case 'CoalesceExpr': {
      const args = unify((body['args'] as Node[]) ?? [], ctx, 'COALESCE', loc);
      const fns = args.map((a) => a.fn);
      return {
        type: args[0]!.type,
        ...(args.some((a) => a.notNull === true) ? { notNull: true } : {}),
        fn: (r) => {
          for (const f of fns) {
            const v = f(r);
            if (v !== null) return v;
          }
          return null;
        },
      };
    }
    case 'MinMaxExpr': {
      const mm = body as MinMaxExpr;
      const args = unify(mm.args ?? [], ctx, mm.op === 'IS_GREATEST' ? 'GREATEST' : 'LEAST', loc);
      const fns = args.map((a) => a.fn);
      const sign = mm.op === 'IS_GREATEST' ? 1 : -1;
      const cmp = comparator(args[0]!.type.kind);
      return {
        type: args[0]!.type,
        fn: (r) => {
          let best: Value = null;
          for (const f of fns) {
            const v = f(r);
            if (v !== null && (best === null || sign * cmp(v, best) > 0)) best = v;
          }
          return best;
        },
        ...(args.some((a) => a.notNull === true) ? { notNull: true } : {}),
      };
    }
    case 'FuncCall':
      return compileFuncCall(body as FuncCall, ctx, loc);
    case 'SubLink':
      throw unsupported(
        ctx.view,
        loc,
        `a subquery in ${ctx.clause}`,
        'Subqueries are supported in WHERE, HAVING and the select list.',
      );
    case 'SQLValueFunction':
      throw unsupported(
        ctx.view,
        loc,
        `volatile value ${String(body['op']).replace('SVFOP_', '')}`,
        'A view must depend only on its tables; pass the value in the data.',
      );
    case 'ParamRef':
      throw unsupported(ctx.view, loc, 'parameters ($n)');
    case 'A_ArrayExpr':
    case 'A_Indirection':
    case 'RowExpr':
      throw unsupported(ctx.view, loc, `${kind === 'RowExpr' ? 'row' : 'array'} expressions`);
    default:
      throw unsupported(ctx.view, loc, `expression ${kind}`);
  }
}

function compileFuncCall(f: FuncCall, ctx: ExprContext, loc: number | undefined): Compiled {
  const name = strings(f.funcname)
    .filter((n) => n !== 'pg_catalog')
    .join('.')
    .toLowerCase();
  if (f.over) {
    throw unsupported(
      ctx.view,
      loc,
      `window function ${name}() here`,
      'Only row_number() OVER (PARTITION BY … ORDER BY …) in a FROM subquery, filtered by rn <= N outside, is supported.',
    );
  }
  if (AGGREGATES.has(name)) {
    throw invalid(ctx.view, loc, `aggregate functions are not allowed in ${ctx.clause}`);
  }
  if (f.agg_star || f.agg_distinct || f.agg_order || f.agg_filter) {
    throw invalid(ctx.view, loc, `${name}() is not an aggregate function`);
  }
  const args = (f.args ?? []).map((a) => compileExpr(a, ctx));
  const out = scalarFunction({ name, args, argNodes: f.args ?? [], ctx, location: loc });
  // Every supported scalar function is strict (NULL in, NULL out), except concat (never NULL).
  return name === 'concat' || args.every((a) => a.notNull === true) ? { ...out, notNull: true } : out;
}

function compileColumnRef(ref: ColumnRef, ctx: ExprContext): Compiled {
  const parts = strings(ref.fields);
  const loc = ref.location;
  if (parts.includes('*')) throw unsupported(ctx.view, loc, '`*` inside an expression');
  let index = findColumn(parts, ctx.scope, ctx.view, loc);
  let col: ScopeColumn | undefined;
  if (index >= 0) {
    col = ctx.scope[index];
    index += ctx.offset ?? 0;
  } else if (ctx.outer !== undefined && (index = findColumn(parts, ctx.outer.scope, ctx.view, loc)) >= 0) {
    col = ctx.outer.scope[index];
    index += ctx.outer.offset;
  } else {
    throw notFound(parts, ctx, loc);
  }
  noteRead(col);
  if (ctx.grouped) {
    throw invalid(
      ctx.view,
      loc,
      `column "${parts.join('.')}" must appear in the GROUP BY clause or be used in an aggregate function`,
    );
  }
  const i = index;
  return {
    type: col!.type,
    fn: (r) => r[i] ?? null,
    column: i,
    ...(col!.notNull === true ? { notNull: true } : {}),
  };
}

/** Index of a column by `[qualifier.]name`; errors as PostgreSQL words them. */
export function resolveColumn(
  parts: string[],
  scope: readonly ScopeColumn[],
  view: ViewSource,
  loc: number | undefined,
): number {
  const i = findColumn(parts, scope, view, loc);
  if (i < 0) throw notFound(parts, { view, scope, clause: '' }, loc);
  noteRead(scope[i]);
  return i;
}

/** Index of a column by `[qualifier.]name`, -1 when none; ambiguous names are an error. */
export function findColumn(
  parts: string[],
  scope: readonly ScopeColumn[],
  view: ViewSource,
  loc: number | undefined,
): number {
  const name = parts[parts.length - 1]!;
  const qualifier = parts.length >= 2 ? parts[parts.length - 2]! : null;
  let hit = -1;
  for (let i = 0; i < scope.length; i++) {
    const c = scope[i]!;
    if (c.name !== name) continue;
    if (qualifier === null ? c.hiddenUnqualified : c.qualifier !== qualifier) continue;
    if (hit >= 0)
      throw invalid(
        view,
        loc,
        `column reference "${parts.join('.')}" is ambiguous`,
        'Qualify it with a table name or alias.',
      );
    hit = i;
  }
  return hit;
}

function notFound(parts: string[], ctx: ExprContext, loc: number | undefined): Error {
  const qualifier = parts.length >= 2 ? parts[parts.length - 2]! : null;
  const shown = parts.join('.');
  if ((ctx.enclosing ?? []).some((s) => findColumn(parts, s, ctx.view, loc) >= 0)) {
    return unsupported(
      ctx.view,
      loc,
      `a reference to "${shown}" of an enclosing query in ${ctx.clause || 'this place'}`,
      'A subquery may refer to its enclosing query only in its WHERE conditions (which are decorrelated into joins).',
    );
  }
  const all = [ctx.scope, ...(ctx.outer ? [ctx.outer.scope] : [])];
  if (qualifier !== null && !all.some((s) => s.some((c) => c.qualifier === qualifier))) {
    return invalid(ctx.view, loc, `missing FROM-clause entry for table "${qualifier}"`);
  }
  return invalid(
    ctx.view,
    loc,
    `column "${shown}" does not exist`,
    'Check the column name against the table, or qualify it.',
  );
}

function compileConst(c: A_Const): Compiled {
  if (c.isnull) return constant(sqlType('unknown'), null);
  if (c.ival !== undefined) return constant(sqlType('int4'), c.ival.ival ?? 0);
  if (c.boolval !== undefined) return constant(sqlType('bool'), c.boolval.boolval ?? false);
  if (c.sval !== undefined) return constant(sqlType('unknown'), c.sval.sval ?? '');
  if (c.fval !== undefined) {
    const text = c.fval.fval ?? '0';
    if (/^\d+$/.test(text)) {
      const b = BigInt(text);
      if (b <= 2n ** 63n - 1n) return constant(sqlType('int8'), b);
    }
    return constant(sqlType('numeric'), Numeric.parse(text));
  }
  return constant(sqlType('unknown'), null);
}

export function typeFromTypeName(tn: TypeName, ctx: ExprContext): SqlType {
  const names = strings(tn.names).filter((n) => n !== 'pg_catalog');
  if ((tn.arrayBounds?.length ?? 0) > 0) throw unsupported(ctx.view, tn.location, 'array types');
  const mods = (tn.typmods ?? []).map((m) => {
    const [k, b] = nodeKind(m);
    return k === 'A_Const' ? ((b as A_Const).ival?.ival ?? 0) : 0;
  });
  const base = names.join('.');
  const t = typeFromName(mods.length > 0 && base === 'numeric' ? `numeric(${mods.join(',')})` : base);
  if (t.kind === 'other') throw unsupported(ctx.view, tn.location, `type ${base}`);
  return t;
}

/** Compiles expressions and casts them all to their common type (CASE, COALESCE, IN, UNION). */
export function unify(
  nodes: readonly Node[],
  ctx: ExprContext,
  what: string,
  loc: number | undefined,
): Compiled[] {
  const compiled = nodes.map((n) => compileExpr(n, ctx));
  return unifyCompiled(compiled, nodes, ctx, what, loc);
}

const COMPARE: Record<string, (c: number) => boolean> = {
  '=': (c) => c === 0,
  '<>': (c) => c !== 0,
  '!=': (c) => c !== 0,
  '<': (c) => c < 0,
  '<=': (c) => c <= 0,
  '>': (c) => c > 0,
  '>=': (c) => c >= 0,
};

function compileAExpr(e: A_Expr, ctx: ExprContext, loc: number | undefined): Compiled {
  const op = strings(e.name).join('.');
  switch (e.kind) {
    case 'AEXPR_OP':
      if (!e.lexpr) return compileUnary(op, compileExpr(e.rexpr!, ctx), ctx, loc);
      return compileBinary(op, e.lexpr, e.rexpr!, ctx, loc);
    case 'AEXPR_IN': {
      const items = listItems(e.rexpr);
      const all = unify([e.lexpr!, ...items], ctx, 'IN', loc);
      const cmp = comparator(all[0]!.type.kind);
      const [x, ...rest] = all.map((c) => c.fn);
      const negated = op === '<>';
      const constants = all.slice(1).every((c) => c.constant !== undefined && c.constant.value !== null);
      const fx = x!;
      if (constants && all[0]!.type.kind !== 'bpchar') {
        // A list of constants: one set lookup by value token instead of a comparison per item.
        const values = all.slice(1).map((c) => c.constant!.value);
        const n = values.length;
        return {
          type: sqlType('bool'),
          fn: (r) => {
            const v = fx(r);
            if (v === null) return null;
            for (let i = 0; i < n; i++) if (cmp(v, values[i]!) === 0) return !negated;
            return negated;
          },
          ...notNullIf(all),
        };
      }
      return { type: sqlType('bool'), fn: (r) => inList(fx(r), rest, r, negated, cmp), ...notNullIf(all) };
    }
    case 'AEXPR_BETWEEN':
    case 'AEXPR_NOT_BETWEEN': {
      const [lo, hi] = listItems(e.rexpr);
      const ge = compileBinary('>=', e.lexpr!, lo!, ctx, loc);
      const le = compileBinary('<=', e.lexpr!, hi!, ctx, loc);
      const fge = ge.fn;
      const fle = le.fn;
      const not = e.kind === 'AEXPR_NOT_BETWEEN';
      return { type: sqlType('bool'), fn: (r) => not3(and3(fge(r), fle(r)), not), ...notNullIf([ge, le]) };
    }
    case 'AEXPR_NULLIF': {
      const [a, b] = unify([e.lexpr!, e.rexpr!], ctx, 'NULLIF', loc);
      const fa = a!.fn;
      const fb = b!.fn;
      const cmp = comparator(a!.type.kind);
      return {
        type: a!.type,
        fn: (r) => {
          const x = fa(r);
          const y = fb(r);
          return x !== null && y !== null && cmp(x, y) === 0 ? null : x;
        },
      };
    }
    case 'AEXPR_DISTINCT':
    case 'AEXPR_NOT_DISTINCT': {
      const [a, b] = unify([e.lexpr!, e.rexpr!], ctx, 'IS DISTINCT FROM', loc);
      const fa = a!.fn;
      const fb = b!.fn;
      const cmp = comparator(a!.type.kind);
      const distinct = e.kind === 'AEXPR_DISTINCT';
      return {
        type: sqlType('bool'),
        fn: (r) => {
          const x = fa(r);
          const y = fb(r);
          const d = x === null || y === null ? x !== y : cmp(x, y) !== 0;
          return d === distinct;
        },
        notNull: true,
      };
    }
    case 'AEXPR_LIKE':
    case 'AEXPR_ILIKE': {
      // character(n) is matched with its padding, as PostgreSQL's bpcharlike does.
      const [s, p] = [e.lexpr!, e.rexpr!].map((n) => {
        const c = compileExpr(n, ctx);
        if (c.type.kind === 'bpchar') return c;
        return coerce(c, sqlType('text'), { ctx, location: locationOf(n), explicit: false });
      });
      const negated = op.startsWith('!');
      const fs = s!.fn;
      const fp = p!.fn;
      const flags = e.kind === 'AEXPR_ILIKE' ? 'isu' : 'su';
      if (p!.constant !== undefined && typeof p!.constant.value === 'string') {
        const test = likeMatcher(p!.constant.value, flags);
        return {
          type: sqlType('bool'),
          fn: (r) => {
            const sv = fs(r);
            return sv === null ? null : test(sv as string) !== negated;
          },
          ...notNullIf([s!]),
        };
      }
      let cached: [string, RegExp] | undefined;
      return {
        type: sqlType('bool'),
        fn: (r) => {
          const sv = fs(r);
          const pv = fp(r);
          if (sv === null || pv === null) return null;
          if (cached?.[0] !== pv) cached = [pv as string, likeRegex(pv as string, flags)];
          return cached[1].test(sv as string) !== negated;
        },
        ...notNullIf([s!, p!]),
      };
    }
    case 'AEXPR_OP_ANY':
    case 'AEXPR_OP_ALL':
      throw unsupported(ctx.view, loc, `${op} ${e.kind === 'AEXPR_OP_ANY' ? 'ANY' : 'ALL'} (array)`);
    default:
      throw unsupported(ctx.view, loc, `operator form ${String(e.kind).replace('AEXPR_', '')}`);
  }
}

/** `{ notNull: true }` when every operand is never NULL (strict operators). */
function notNullIf(args: readonly Compiled[]): { notNull?: true } {
  return args.every((a) => a.notNull === true) ? { notNull: true } : {};
}

/** Value order for one kind: character(n) compares without trailing spaces. */
export function comparator(kind: SqlKind): (a: Value, b: Value) => number {
  if (kind === 'bpchar') return (a, b) => compareValues(rtrimSpaces(a as string), rtrimSpaces(b as string));
  return compareValues;
}

function listItems(n: Node | undefined): Node[] {
  if (!n) return [];
  const [k, b] = nodeKind(n);
  return k === 'List' ? ((b['items'] as Node[]) ?? []) : [n];
}

function compileUnary(op: string, arg: Compiled, ctx: ExprContext, loc: number | undefined): Compiled {
  if (op === '+' || op === '-') {
    if (!isNumericFamily(arg.type.kind) && arg.type.kind !== 'interval') {
      throw invalid(ctx.view, loc, `operator does not exist: ${op} ${arg.type.typeName}`);
    }
    if (op === '+') return arg;
    const kind = arg.type.kind;
    const f = arg.fn;
    if (arg.constant)
      return constant(arg.type, arg.constant.value === null ? null : negateValue(kind, arg.constant.value));
    return {
      type: arg.type,
      fn: (r) => {
        const v = f(r);
        return v === null ? null : negateValue(kind, v);
      },
      ...notNullIf([arg]),
    };
  }
  throw unsupported(ctx.view, loc, `prefix operator ${op}`);
}

function negateValue(kind: SqlKind, v: Value): Value {
  if (kind === 'interval') {
    const iv = v as PgInterval;
    return new PgInterval(-iv.months, -iv.days, -iv.micros);
  }
  return negate(kind, v);
}

function compileBinary(op: string, l: Node, r: Node, ctx: ExprContext, loc: number | undefined): Compiled {
  const a = compileExpr(l, ctx);
  const b = compileExpr(r, ctx);
  if (op === '||') return concatOp(a, b, ctx, loc);
  const cmp = COMPARE[op];
  if (cmp) {
    const [x, y] = unifyCompiled([a, b], [l, r], ctx, `operator ${op}:`, loc);
    if ((x!.type.kind === 'other' || x!.type.kind === 'json') && op !== '=' && op !== '<>' && op !== '!=') {
      throw unsupported(ctx.view, loc, `ordering values of type ${x!.type.typeName}`);
    }
    const order = comparator(x!.type.kind);
    const fx = x!.fn;
    const fy = y!.fn;
    return fold(
      {
        type: sqlType('bool'),
        fn: (row) => {
          const vx = fx(row);
          if (vx === null) return null;
          const vy = fy(row);
          return vy === null ? null : cmp(order(vx, vy));
        },
        ...notNullIf([x!, y!]),
      },
      [x!, y!],
      ctx,
      loc,
    );
  }
  if (op === '+' || op === '-' || op === '*' || op === '/' || op === '%') {
    return fold(arithmetic(op, a, b, [l, r], ctx, loc), [a, b], ctx, loc);
  }
  throw unsupported(ctx.view, loc, `operator ${op}`);
}

/** Evaluates an operator over constants once, when the view is planned. */
function fold(c: Compiled, args: readonly Compiled[], ctx: ExprContext, loc: number | undefined): Compiled {
  if (!args.every((a) => a.constant !== undefined)) return c;
  try {
    return constant(c.type, c.fn([]));
  } catch (err) {
    if (err instanceof SqlRuntimeError) throw invalid(ctx.view, loc, err.message);
    throw err;
  }
}

function arithmetic(
  op: ArithOp,
  a: Compiled,
  b: Compiled,
  nodes: Node[],
  ctx: ExprContext,
  loc: number | undefined,
): Compiled {
  const temporal = temporalOp(op, a.type.kind, b.type.kind);
  if (temporal !== undefined) {
    const opts = (i: number) => ({ ctx, location: locationOf(nodes[i]) ?? loc, explicit: false });
    const fx = coerce(a, sqlType(temporal.left), opts(0)).fn;
    const fy = coerce(b, sqlType(temporal.right), opts(1)).fn;
    const f = temporal.fn;
    return {
      type: sqlType(temporal.result),
      fn: (row) => {
        const vx = fx(row);
        if (vx === null) return null;
        const vy = fy(row);
        return vy === null ? null : f(vx, vy);
      },
      ...notNullIf([a, b]),
    };
  }
  const numeric = (t: SqlType) => isNumericFamily(t.kind) || t.kind === 'unknown';
  if (!numeric(a.type) || !numeric(b.type) || (a.type.kind === 'unknown' && b.type.kind === 'unknown')) {
    throw invalid(
      ctx.view,
      loc,
      `operator does not exist: ${a.type.typeName} ${op} ${b.type.typeName}`,
      'Cast the operands to matching types.',
    );
  }
  const [x, y] = unifyCompiled([a, b], nodes, ctx, `operator ${op}:`, loc);
  const type = x!.type.kind === 'numeric' ? sqlType('numeric') : x!.type;
  const kind = type.kind;
  const fx = x!.fn;
  const fy = y!.fn;
  return {
    type,
    fn: (row) => {
      const vx = fx(row);
      if (vx === null) return null;
      const vy = fy(row);
      return vy === null ? null : arith(kind, op, vx, vy);
    },
    ...notNullIf([a, b]),
  };
}

function concatOp(a: Compiled, b: Compiled, ctx: ExprContext, loc: number | undefined): Compiled {
  const text = (c: Compiled): RowFn => {
    const f = c.fn;
    const kind = c.type.kind;
    // character(n) is cast to text (padding removed) before ||, as in PostgreSQL.
    if (kind === 'bpchar')
      return (r) => {
        const v = f(r);
        return v === null ? null : rtrimSpaces(v as string);
      };
    return (r) => {
      const v = f(r);
      return v === null ? null : outputText(kind, v);
    };
  };
  const textual = (k: SqlKind) => k === 'text' || k === 'unknown' || k === 'bpchar';
  if (!textual(a.type.kind) && !textual(b.type.kind)) {
    throw invalid(ctx.view, loc, `operator does not exist: ${a.type.typeName} || ${b.type.typeName}`);
  }
  const fa = text(a);
  const fb = text(b);
  return fold(
    {
      type: sqlType('text'),
      fn: (r) => {
        const x = fa(r);
        const y = fb(r);
        return x === null || y === null ? null : (x as string) + (y as string);
      },
      ...notNullIf([a, b]),
    },
    [a, b],
    ctx,
    loc,
  );
}

function compileBoolExpr(e: BoolExpr, ctx: ExprContext): Compiled {
  const compiled = (e.args ?? []).map((n) =>
    coerce(compileExpr(n, ctx), sqlType('bool'), { ctx, location: locationOf(n), explicit: false }),
  );
  const args = compiled.map((c) => c.fn);
  const bool = sqlType('bool');
  if (e.boolop === 'NOT_EXPR') {
    const f = args[0]!;
    return { type: bool, fn: (r) => not3(f(r), true), ...notNullIf(compiled) };
  }
  const isAnd = e.boolop === 'AND_EXPR';
  return {
    type: bool,
    fn: (r) => {
      let sawNull = false;
      for (const f of args) {
        const v = f(r);
        if (v === null) sawNull = true;
        else if (v === !isAnd) return v;
      }
      return sawNull ? null : isAnd;
    },
    ...notNullIf(compiled),
  };
}

function compileCase(e: CaseExpr, ctx: ExprContext, loc: number | undefined): Compiled {
  const whens = (e.args ?? []).map((w) => nodeKind(w)[1] as CaseWhen);
  const results = unify(
    [...whens.map((w) => w.result!), ...(e.defresult ? [e.defresult] : [])],
    ctx,
    'CASE',
    loc,
  );
  const conds: RowFn[] = whens.map((w) => {
    if (e.arg) return compileBinary('=', e.arg, w.expr!, ctx, locationOf(w.expr)).fn;
    return coerce(compileExpr(w.expr!, ctx), sqlType('bool'), {
      ctx,
      location: locationOf(w.expr),
      explicit: false,
    }).fn;
  });
  const outs = results.map((c) => c.fn);
  const def = e.defresult ? outs[whens.length]! : () => null;
  const n = conds.length;
  return {
    type: results[0]!.type,
    fn: (r) => {
      for (let i = 0; i < n; i++) if (conds[i]!(r) === true) return outs[i]!(r);
      return def(r);
    },
    ...(e.defresult ? notNullIf(results) : {}),
  };
}

/** The interval field mask of `interval '…' day` and friends, when the cast has one. */
function intervalMask(tn: TypeName | undefined, target: SqlType): number | undefined {
  if (target.kind !== 'interval' || !tn?.typmods?.length) return undefined;
  const [k, b] = nodeKind(tn.typmods[0]!);
  return k === 'A_Const' ? ((b as A_Const).ival?.ival ?? 0) : undefined;
}

function qualifiedInterval(
  arg: Compiled,
  mask: number,
  opts: { ctx: ExprContext; location: number | undefined; explicit: boolean },
): Compiled {
  const v = arg.constant?.value;
  if (typeof v === 'string' && (arg.type.kind === 'unknown' || arg.type.kind === 'text')) {
    const iv = coerce(constant(arg.type, qualifiedIntervalText(v, mask)), sqlType('interval'), opts);
    return constant(sqlType('interval'), truncateInterval(iv.constant!.value as PgInterval, mask));
  }
  const f = coerce(arg, sqlType('interval'), opts).fn;
  return {
    type: sqlType('interval'),
    fn: (r) => {
      const x = f(r);
      return x === null ? null : truncateInterval(x as PgInterval, mask);
    },
    ...notNullIf([arg]),
  };
}

function inList(
  x: Value,
  items: RowFn[],
  row: readonly Value[],
  negated: boolean,
  cmp: (a: Value, b: Value) => number,
): Value {
  if (x === null) return null;
  let sawNull = false;
  for (const f of items) {
    const v = f(row);
    if (v === null) sawNull = true;
    else if (cmp(x, v) === 0) return !negated;
  }
  return sawNull ? null : negated;
}

function and3(a: Value, b: Value): Value {
  if (a === false || b === false) return false;
  return a === null || b === null ? null : true;
}

function not3(v: Value, negate: boolean): Value {
  return v === null || !negate ? v : !v;
}

/**
 * A LIKE test for a constant pattern: plain string tests for the common shapes (`abc%`, `%abc`,
 * `%abc%`, `%a%b%` in order), a RegExp otherwise.
 */
export function likeMatcher(pattern: string, flags: string): (s: string) => boolean {
  if (!flags.includes('i') && !pattern.includes('_') && !pattern.includes('\\')) {
    const parts = pattern.split('%');
    if (parts.length === 1) return (s) => s === pattern;
    const first = parts[0]!;
    const last = parts[parts.length - 1]!;
    const middle = parts.slice(1, -1).filter((p) => p !== '');
    const minLength = first.length + last.length;
    return (s) => {
      if (s.length < minLength || !s.startsWith(first) || !s.endsWith(last)) return false;
      let at = first.length;
      const end = s.length - last.length;
      for (const m of middle) {
        const i = s.indexOf(m, at);
        if (i < 0 || i + m.length > end) return false;
        at = i + m.length;
      }
      return true;
    };
  }
  const re = likeRegex(pattern, flags);
  return (s) => re.test(s);
}

/** LIKE pattern → RegExp: `%` any run, `_` one character, `\` escapes. */
export function likeRegex(pattern: string, flags: string): RegExp {
  let re = '^';
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '\\' && i + 1 < chars.length) re += escapeRe(chars[++i]!);
    else if (c === '%') re += '.*';
    else if (c === '_') re += '.';
    else re += escapeRe(c);
  }
  return new RegExp(`${re}$`, flags);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
