/** Implicit and explicit casts applied to compiled expressions. */
import type { Node } from 'libpg-query';
import type { Value } from '../decode/value.ts';
import { locationOf } from './ast.ts';
import { castFn, isExplicitCast, isImplicitCast } from './casts.ts';
import type { Compiled, ExprContext } from './scope.ts';
import { commonType, sqlType, type SqlType } from './sql-type.ts';
import { invalid } from './view-error.ts';

export function constant(type: SqlType, value: Value): Compiled {
  return { type, fn: () => value, constant: { value }, ...(value === null ? {} : { notNull: true }) };
}

export interface CoerceOptions {
  ctx: ExprContext;
  location: number | undefined;
  explicit: boolean;
}

/** Casts `c` to `to`, implicitly (only where PostgreSQL would) or explicitly (CAST / `::`). */
export function coerce(c: Compiled, to: SqlType, opts: CoerceOptions): Compiled {
  if (
    c.type.kind === to.kind &&
    (to.kind !== 'numeric' || to.scale === undefined || c.type.typeName === to.typeName)
  ) {
    return c.type.typeName === to.typeName || !opts.explicit ? c : { ...c, type: to };
  }
  const ok = opts.explicit ? isExplicitCast(c.type.kind, to.kind) : isImplicitCast(c.type.kind, to.kind);
  if (!ok) {
    throw invalid(
      opts.ctx.view,
      opts.location,
      opts.explicit
        ? `cannot cast type ${c.type.typeName} to ${to.typeName}`
        : `${c.type.typeName} cannot be used as ${to.typeName} without a cast`,
      'Add an explicit CAST where PostgreSQL allows one.',
    );
  }
  const cast = castFn(c.type, to);
  if (c.constant) {
    const v = c.constant.value;
    let out: Value;
    try {
      out = v === null ? null : cast(v);
    } catch (err) {
      throw invalid(opts.ctx.view, opts.location, (err as Error).message);
    }
    return constant(to, out);
  }
  const f = c.fn;
  return {
    type: to,
    ...(c.notNull === true ? { notNull: true } : {}),
    fn: (r) => {
      const v = f(r);
      return v === null ? null : cast(v);
    },
  };
}

export function unifyCompiled(
  compiled: Compiled[],
  nodes: readonly (Node | undefined)[],
  ctx: ExprContext,
  what: string,
  loc: number | undefined,
): Compiled[] {
  let t: SqlType | undefined = compiled[0]?.type ?? sqlType('unknown');
  for (const c of compiled.slice(1)) {
    const next: SqlType | undefined = commonType(t, c.type);
    if (!next)
      throw invalid(ctx.view, loc, `${what} types ${t.typeName} and ${c.type.typeName} cannot be matched`);
    t = next;
  }
  const target = t.kind === 'unknown' ? sqlType('text') : t;
  return compiled.map((c, i) =>
    coerce(c, target, { ctx, location: locationOf(nodes[i]) ?? loc, explicit: false }),
  );
}
