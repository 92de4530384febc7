/**
 * `a JOIN b ON p JOIN c ON q` → `FROM a, b, c WHERE p AND q`: a chain of inner joins is the same
 * relation as its items side by side filtered by its conditions, and in that form plan-where.ts
 * chooses the join order (dimensions joined to each other before the large table, so the large
 * table is held in one join state instead of one per join).
 *
 * An inner join is flattened only where the rewrite cannot change what a name means: no USING or
 * NATURAL, no alias, no subquery in ON, and every column its ON reads names an item of that join
 * (`x.col`), or is unqualified and, by the catalog, a column of exactly one item of the whole
 * FROM list. Otherwise the join stays one FROM item, planned as written.
 */
import type { JoinExpr, Node, RangeSubselect, RangeVar } from 'libpg-query';
import { nodeKind, strings } from './ast.ts';
import { AGGREGATES } from './functions.ts';
import { containsSubLink } from './plan-from.ts';

export interface Flattened {
  readonly from: Node[];
  readonly where: Node | undefined;
}

/** A table reference's column names (after its column aliases), undefined when not known here (a CTE). */
export type TableColumns = (rv: RangeVar) => readonly string[] | undefined;

/** Every column name of the FROM list, or undefined when an item's are not known. */
type Names = readonly string[] | undefined;

/** The FROM list with its top-level inner-join chains opened, their ON conditions added to WHERE. */
export function flattenInnerJoins(
  from: readonly Node[],
  where: Node | undefined,
  columns: TableColumns,
): Flattened {
  const items: Node[] = [];
  const conds: Node[] = [];
  const perItem = from.map((item) => itemColumns(item, columns));
  const names = perItem.every((c) => c !== undefined) ? perItem.flat() : undefined;
  for (const item of from) {
    const opened = open(item, names, columns);
    if (opened === undefined) items.push(item);
    else {
      items.push(...opened.items);
      conds.push(...opened.conds);
    }
  }
  if (conds.length === 0) return { from: items, where };
  const all = where === undefined ? conds : [where, ...conds];
  const and = all.length === 1 ? all[0]! : ({ BoolExpr: { boolop: 'AND_EXPR', args: all } } as Node);
  return { from: items, where: and };
}

/** An inner join's items and conditions, or undefined when it must stay as written. */
function open(item: Node, names: Names, columns: TableColumns): { items: Node[]; conds: Node[] } | undefined {
  const [kind, body] = nodeKind(item);
  if (kind !== 'JoinExpr') return { items: [item], conds: [] };
  const j = body as JoinExpr;
  if (j.jointype !== 'JOIN_INNER' || j.isNatural || j.alias || strings(j.usingClause).length > 0)
    return undefined;
  const left = open(j.larg!, names, columns);
  const right = open(j.rarg!, names, columns);
  if (left === undefined || right === undefined) return undefined;
  const quals = j.quals as Node | undefined;
  const items = [...left.items, ...right.items];
  const own = items.map((i) => itemColumns(i, columns));
  const ownNames = own.every((c) => c !== undefined) ? own.flat() : undefined;
  if (quals !== undefined && !qualsStayMeaningful(quals, items, names, ownNames)) return undefined;
  return {
    items: [...left.items, ...right.items],
    conds: [...left.conds, ...right.conds, ...(quals === undefined ? [] : [quals])],
  };
}

/**
 * True when every column `quals` reads means the same in the whole FROM list as in the join: a
 * qualified one names an item of the join; an unqualified one is a column of exactly one item of
 * the join (as PostgreSQL resolves ON) and of exactly one of the whole list.
 */
function qualsStayMeaningful(quals: Node, items: readonly Node[], names: Names, ownNames: Names): boolean {
  if (containsSubLink(quals)) return false;
  const qualifiers = new Set(items.map(qualifierOf));
  let ok = true;
  const walk = (v: unknown): void => {
    if (!ok) return;
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if ('FuncCall' in o) {
        // Aggregates and window functions are refused in ON; left in place, the refusal names
        // JOIN conditions as PostgreSQL's does (in the WHERE list it would say WHERE).
        const f = o['FuncCall'] as { funcname?: Node[]; over?: unknown };
        const name = strings(f.funcname).at(-1)?.toLowerCase();
        if (f.over !== undefined || (name !== undefined && AGGREGATES.has(name))) ok = false;
        else Object.values(o).forEach(walk);
      } else if ('ColumnRef' in o) {
        const fields = strings((o['ColumnRef'] as { fields?: Node[] }).fields);
        const column = fields[fields.length - 1];
        if (fields.length === 0 || column === undefined) ok = false;
        else if (fields.length === 1)
          ok =
            names?.filter((n) => n === column).length === 1 &&
            ownNames?.filter((n) => n === column).length === 1;
        else ok = qualifiers.has(fields[fields.length - 2]!);
      } else Object.values(o).forEach(walk);
    }
  };
  walk(quals);
  return ok;
}

/** The name an item's columns are qualified by (`alias`, or a table's own name). */
function qualifierOf(item: Node): string | undefined {
  const [kind, body] = nodeKind(item);
  if (kind === 'RangeVar') {
    const rv = body as RangeVar;
    return rv.alias?.aliasname ?? rv.relname;
  }
  if (kind === 'RangeSubselect') return (body as RangeSubselect).alias?.aliasname;
  return undefined;
}

/** The column names an item shows, by the catalog; undefined when they are not known here. */
function itemColumns(item: Node, columns: TableColumns): readonly string[] | undefined {
  const [kind, body] = nodeKind(item);
  if (kind === 'JoinExpr') {
    const j = body as JoinExpr;
    const l = itemColumns(j.larg!, columns);
    const r = itemColumns(j.rarg!, columns);
    return l === undefined || r === undefined ? undefined : [...l, ...r];
  }
  return kind === 'RangeVar' ? columns(body as RangeVar) : undefined;
}
