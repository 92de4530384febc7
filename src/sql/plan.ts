/**
 * The logical plan of a view: a tree of relational nodes whose expressions are already compiled
 * to closures over the node's input row. Every node lists its output columns with their SQL
 * types; rows are `Value[]` in that order.
 *
 *   Scan(table) ─► Filter ─► Join ─► SemiJoin ─► Aggregate ─► Filter(HAVING) ─► Project ─► Distinct ─► TopN
 *            (UnionAll at any level; subqueries in FROM nest whole trees, those in expressions are
 *             decorrelated into joins, semi-joins and aggregates; a CTE's tree is shared by its uses)
 */
import { createHash } from 'node:crypto';
import type { ColumnSchema, TableSchema } from '../core/table-schema.ts';
import type { RowFn } from './scope.ts';
import type { SqlType } from './sql-type.ts';

export interface PlanColumn {
  readonly name: string;
  readonly type: SqlType;
  /** Never NULL (derived conservatively); absent: may be NULL. */
  readonly notNull?: boolean;
}

export interface SortKey {
  readonly fn: RowFn;
  readonly descending: boolean;
  /** PostgreSQL's default: NULLS LAST ascending, NULLS FIRST descending. */
  readonly nullsFirst: boolean;
}

export type AggregateName = 'count' | 'sum' | 'avg' | 'min' | 'max' | 'bool_and' | 'bool_or' | 'string_agg';

export interface AggregateCall {
  readonly name: AggregateName;
  /** count(*): counts rows, `args` is empty. */
  readonly star: boolean;
  readonly distinct: boolean;
  /** Argument expressions over the aggregate's input row (string_agg: value, delimiter). */
  readonly args: readonly RowFn[];
  readonly argType: SqlType | undefined;
  readonly resultType: SqlType;
  /** string_agg: the constant delimiter. */
  readonly delimiter?: string;
  /** string_agg: order of the values (by the value itself; ascending when not given). */
  readonly descending?: boolean;
}

export type WindowFunctionName =
  'row_number' | 'rank' | 'dense_rank' | 'lag' | 'lead' | 'first_value' | 'last_value' | AggregateName;

/** One window function call over its window (`OVER (…)`). */
export interface WindowCall {
  readonly name: WindowFunctionName;
  /** lag/lead/first_value/last_value: the value; aggregates: see `aggregate`. */
  readonly value?: RowFn;
  /** lag/lead: how many rows back or ahead. */
  readonly offset: number;
  /** lag/lead: the value when there is no such row (evaluated on the current row). */
  readonly defaultValue?: RowFn;
  readonly aggregate?: AggregateCall;
  /**
   * The frame: `peers` — from the partition's start to the current row's last peer (RANGE, the
   * default with ORDER BY); `rows` — to the current row (ROWS … CURRENT ROW); `all` — the whole
   * partition (the default without ORDER BY).
   */
  readonly frame: 'peers' | 'rows' | 'all';
  readonly resultType: SqlType;
}

interface Base {
  readonly columns: readonly PlanColumn[];
}

export type PlanNode =
  | (Base & { readonly kind: 'scan'; readonly table: TableSchema })
  | (Base & { readonly kind: 'filter'; readonly input: PlanNode; readonly predicate: RowFn })
  | (Base & {
      readonly kind: 'project';
      readonly input: PlanNode;
      readonly exprs: readonly RowFn[];
      /** Per expression, the input column it copies when it is a plain column reference. */
      readonly copies?: readonly (number | null)[];
    })
  | (Base & {
      readonly kind: 'join';
      readonly joinType: 'inner' | 'left' | 'right' | 'full';
      readonly left: PlanNode;
      readonly right: PlanNode;
      /** Equi-join keys: `leftKey[i](leftRow)` = `rightKey[i](rightRow)`; NULL never matches. */
      readonly leftKey: readonly RowFn[];
      readonly rightKey: readonly RowFn[];
      /**
       * The left (right) side's key is among its plain equi-key columns: at most one row per join
       * key, so the join stores that side by join key (dataflow/join.ts). Absent when not known.
       */
      readonly leftUnique?: true;
      readonly rightUnique?: true;
    })
  | (Base & {
      readonly kind: 'aggregate';
      readonly input: PlanNode;
      /** Output row = group values, then one value per aggregate. No groups = one global row. */
      readonly groupBy: readonly RowFn[];
      readonly aggregates: readonly AggregateCall[];
    })
  | (Base & {
      readonly kind: 'semi-join';
      /** semi: left rows with a match (EXISTS, IN); anti: left rows without one (NOT EXISTS, NOT IN). */
      readonly mode: 'semi' | 'anti';
      readonly left: PlanNode;
      readonly right: PlanNode;
      /** Equi keys as in a join (NULL never matches); empty: every right row is a candidate. */
      readonly leftKey: readonly RowFn[];
      readonly rightKey: readonly RowFn[];
      /** A further condition over `[...leftRow, ...rightRow]`; a match needs it to be true. */
      readonly residual?: RowFn;
    })
  | (Base & {
      readonly kind: 'window';
      readonly input: PlanNode;
      /** Empty: one partition. */
      readonly partitionBy: readonly RowFn[];
      readonly orderBy: readonly SortKey[];
      /** Appended to each input row, in order. */
      readonly functions: readonly WindowCall[];
    })
  | (Base & { readonly kind: 'distinct'; readonly input: PlanNode })
  | (Base & { readonly kind: 'union-all'; readonly inputs: readonly PlanNode[] })
  | (Base & {
      readonly kind: 'top-n';
      readonly input: PlanNode;
      /** Empty: one partition (ORDER BY … LIMIT). */
      readonly partitionBy: readonly RowFn[];
      /** Ties are broken by the whole row, so the result is deterministic. */
      readonly orderBy: readonly SortKey[];
      readonly limit: number;
      readonly offset: number;
      /** Appends the 1-based row number within the partition (row_number()) as a last column. */
      readonly rowNumber: boolean;
    });

export interface ViewPlan {
  readonly name: string;
  readonly outputColumns: readonly ColumnSchema[];
  /** Output columns forming a key; empty = rows are a multiset (the whole row with multiplicity). */
  readonly key: readonly number[];
  /** Base tables read, each once, in first-reference order. */
  readonly inputs: readonly TableSchema[];
  /** The base-table columns the view reads (relation id → column names), `*` expanded. */
  readonly reads: ReadonlyMap<number, ReadonlySet<string>>;
  readonly root: PlanNode;
}

/**
 * A digest of how the views are planned: every node's kind, columns and settings, in tree order,
 * tables by id, expressions only counted. Operator state is laid out by the plan (node ids in
 * build order, join sides, row layouts), so state built under one digest is read only under the
 * same one: a planner that orders joins another way gets a fresh state, not another's.
 */
export function planDigest(plans: readonly ViewPlan[]): string {
  return createHash('sha256').update(planShape(plans)).digest('hex');
}

/**
 * The text `planDigest` hashes. A plan node met again (a CTE read twice) is written as a reference
 * to its first appearance, so the text grows with the nodes, not with the paths to them (nested
 * CTEs each read twice would double it at every level).
 */
export function planShape(plans: readonly ViewPlan[]): string {
  const seen = new Map<object, number>();
  return JSON.stringify(
    plans.map((p) => [p.name, p.key, p.root]),
    (k, v: unknown) => {
      if (k === 'table') return (v as TableSchema).relationId;
      if (typeof v === 'function') return 'fn';
      if (typeof v === 'bigint') return String(v);
      if (isPlanNode(v)) {
        const first = seen.get(v);
        if (first !== undefined) return { ref: first };
        seen.set(v, seen.size);
      }
      return v;
    },
  );
}

const PLAN_KINDS: Readonly<Record<PlanNode['kind'], true>> = {
  scan: true,
  filter: true,
  project: true,
  join: true,
  aggregate: true,
  'semi-join': true,
  window: true,
  distinct: true,
  'union-all': true,
  'top-n': true,
};

/** A plan node (not a shared SqlType, which also has a `kind`: those stay written in full). */
function isPlanNode(v: unknown): v is PlanNode {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as { kind?: unknown; columns?: unknown };
  return typeof o.kind === 'string' && Object.hasOwn(PLAN_KINDS, o.kind) && Array.isArray(o.columns);
}
