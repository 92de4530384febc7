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
import { outputText } from './casts.ts';
import { coerce, constant, unifyCompiled } from './coerce.ts';
import { AGGREGATES, scalarFunction } from './functions.ts';
// Registers the temporal casts and functions (date_trunc, extract, date_part).
import './temporal-ops.ts';
import { noteRead, type Compiled, type ExprContext, type RowFn, type ScopeColumn } from './scope.ts';
import { isNumericFamily, sqlType, typeFromName, type SqlType } from './sql-type.ts';
import { arith, compareValues, negate, type ArithOp } from './value-ops.ts';
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
      return coerce(compileExpr(tc.arg!, ctx), target, {
        ctx,
        location: locationOf(tc.arg) ?? loc,
        explicit: true,
      });
    }
    case 'A_Expr':
      return compileAExpr(body as A_Expr, ctx, loc);
    case 'BoolExpr':
      return compileBoolExpr(body as BoolExpr, ctx);
    case 'NullTest': {
      const nt = body as NullTest;
      const arg = compileExpr(nt.arg!, ctx).fn;
      const isNull = nt.nulltesttype === 'IS_NULL';
      return { type: sqlType('bool'), fn: (r) => (arg(r) === null) === isNull };
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
      return { type: sqlType('bool'), fn: (r) => t(arg(r)) };
    }
    case 'CaseExpr':
      return compileCase(body as CaseExpr, ctx, loc);
    case 'CoalesceExpr': {
      const args = unify((body['args'] as Node[]) ?? [], ctx, 'COALESCE', loc);
      const fns = args.map((a) => a.fn);
      return {
        type: args[0]!.type,
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
      return {
        type: args[0]!.type,
        fn: (r) => {
          let best: Value = null;
          for (const f of fns) {
            const v = f(r);
            if (v !== null && (best === null || sign * compareValues(v, best) > 0)) best = v;
          }
          return best;
        },
      };
    }
    case 'FuncCall':
      return compileFuncCall(body as FuncCall, ctx, loc);
    case 'SubLink':
      throw unsupported(ctx.view, loc, 'subqueries in expressions', 'Join the subquery in FROM instead.');
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
  return scalarFunction({ name, args, argNodes: f.args ?? [], ctx, location: loc });
}

function compileColumnRef(ref: ColumnRef, ctx: ExprContext): Compiled {
  const parts = strings(ref.fields);
  const loc = ref.location;
  if (parts.includes('*')) throw unsupported(ctx.view, loc, '`*` inside an expression');
  const index = resolveColumn(parts, ctx.scope, ctx.view, loc);
  if (ctx.grouped) {
    throw invalid(
      ctx.view,
      loc,
      `column "${parts.join('.')}" must appear in the GROUP BY clause or be used in an aggregate function`,
    );
  }
  return { type: ctx.scope[index]!.type, fn: (r) => r[index] ?? null, column: index };
}

/** Index of a column by `[qualifier.]name`; errors as PostgreSQL words them. */
export function resolveColumn(
  parts: string[],
  scope: readonly ScopeColumn[],
  view: ViewSource,
  loc: number | undefined,
): number {
  const name = parts[parts.length - 1]!;
  const qualifier = parts.length >= 2 ? parts[parts.length - 2]! : null;
  const hits: number[] = [];
  scope.forEach((c, i) => {
    if (c.name !== name) return;
    if (qualifier === null ? c.hiddenUnqualified : c.qualifier !== qualifier) return;
    hits.push(i);
  });
  const shown = parts.join('.');
  if (hits.length === 0) {
    if (qualifier !== null && !scope.some((c) => c.qualifier === qualifier)) {
      throw invalid(view, loc, `missing FROM-clause entry for table "${qualifier}"`);
    }
    throw invalid(
      view,
      loc,
      `column "${shown}" does not exist`,
      'Check the column name against the table, or qualify it.',
    );
  }
  if (hits.length > 1)
    throw invalid(
      view,
      loc,
      `column reference "${shown}" is ambiguous`,
      'Qualify it with a table name or alias.',
    );
  noteRead(scope[hits[0]!]);
  return hits[0]!;
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
      const [x, ...rest] = all.map((c) => c.fn);
      const negated = op === '<>';
      return { type: sqlType('bool'), fn: (r) => inList(x!(r), rest, r, negated) };
    }
    case 'AEXPR_BETWEEN':
    case 'AEXPR_NOT_BETWEEN': {
      const [lo, hi] = listItems(e.rexpr);
      const ge = compileBinary('>=', e.lexpr!, lo!, ctx, loc).fn;
      const le = compileBinary('<=', e.lexpr!, hi!, ctx, loc).fn;
      const not = e.kind === 'AEXPR_NOT_BETWEEN';
      return { type: sqlType('bool'), fn: (r) => not3(and3(ge(r), le(r)), not) };
    }
    case 'AEXPR_NULLIF': {
      const [a, b] = unify([e.lexpr!, e.rexpr!], ctx, 'NULLIF', loc);
      const fa = a!.fn;
      const fb = b!.fn;
      return { type: a!.type, fn: (r) => nullif(fa(r), fb(r)) };
    }
    case 'AEXPR_DISTINCT':
    case 'AEXPR_NOT_DISTINCT': {
      const [a, b] = unify([e.lexpr!, e.rexpr!], ctx, 'IS DISTINCT FROM', loc);
      const fa = a!.fn;
      const fb = b!.fn;
      const distinct = e.kind === 'AEXPR_DISTINCT';
      return { type: sqlType('bool'), fn: (r) => isDistinct(fa(r), fb(r)) === distinct };
    }
    case 'AEXPR_LIKE':
    case 'AEXPR_ILIKE': {
      const [s, p] = [e.lexpr!, e.rexpr!].map((n) =>
        coerce(compileExpr(n, ctx), sqlType('text'), { ctx, location: locationOf(n), explicit: false }),
      );
      const negated = op.startsWith('!');
      const fs = s!.fn;
      const fp = p!.fn;
      const flags = e.kind === 'AEXPR_ILIKE' ? 'isu' : 'su';
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
      };
    }
    default:
      throw unsupported(ctx.view, loc, `operator form ${String(e.kind).replace('AEXPR_', '')}`);
  }
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
      return constant(arg.type, arg.constant.value === null ? null : negate(kind, arg.constant.value));
    return {
      type: arg.type,
      fn: (r) => {
        const v = f(r);
        return v === null ? null : negate(kind, v);
      },
    };
  }
  throw unsupported(ctx.view, loc, `prefix operator ${op}`);
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
    const fx = x!.fn;
    const fy = y!.fn;
    return {
      type: sqlType('bool'),
      fn: (row) => {
        const vx = fx(row);
        if (vx === null) return null;
        const vy = fy(row);
        return vy === null ? null : cmp(compareValues(vx, vy));
      },
    };
  }
  if (op === '+' || op === '-' || op === '*' || op === '/' || op === '%') {
    return arithmetic(op, a, b, [l, r], ctx, loc);
  }
  throw unsupported(ctx.view, loc, `operator ${op}`);
}

function arithmetic(
  op: ArithOp,
  a: Compiled,
  b: Compiled,
  nodes: Node[],
  ctx: ExprContext,
  loc: number | undefined,
): Compiled {
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
  };
}

function concatOp(a: Compiled, b: Compiled, ctx: ExprContext, loc: number | undefined): Compiled {
  const text = (c: Compiled): RowFn => {
    const f = c.fn;
    const kind = c.type.kind;
    return (r) => {
      const v = f(r);
      return v === null ? null : outputText(kind, v);
    };
  };
  if (
    a.type.kind !== 'text' &&
    a.type.kind !== 'unknown' &&
    b.type.kind !== 'text' &&
    b.type.kind !== 'unknown'
  ) {
    throw invalid(ctx.view, loc, `operator does not exist: ${a.type.typeName} || ${b.type.typeName}`);
  }
  const fa = text(a);
  const fb = text(b);
  return {
    type: sqlType('text'),
    fn: (r) => {
      const x = fa(r);
      const y = fb(r);
      return x === null || y === null ? null : (x as string) + (y as string);
    },
  };
}

function compileBoolExpr(e: BoolExpr, ctx: ExprContext): Compiled {
  const args = (e.args ?? []).map(
    (n) => coerce(compileExpr(n, ctx), sqlType('bool'), { ctx, location: locationOf(n), explicit: false }).fn,
  );
  const bool = sqlType('bool');
  if (e.boolop === 'NOT_EXPR') {
    const f = args[0]!;
    return { type: bool, fn: (r) => not3(f(r), true) };
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
  return {
    type: results[0]!.type,
    fn: (r) => {
      for (let i = 0; i < conds.length; i++) if (conds[i]!(r) === true) return outs[i]!(r);
      return def(r);
    },
  };
}

function inList(x: Value, items: RowFn[], row: readonly Value[], negated: boolean): Value {
  if (x === null) return null;
  let sawNull = false;
  for (const f of items) {
    const v = f(row);
    if (v === null) sawNull = true;
    else if (compareValues(x, v) === 0) return !negated;
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

function nullif(a: Value, b: Value): Value {
  return a !== null && b !== null && compareValues(a, b) === 0 ? null : a;
}

function isDistinct(a: Value, b: Value): boolean {
  if (a === null || b === null) return a !== b;
  return compareValues(a, b) !== 0;
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
