/**
 * Decides what a change of the input tables' layouts means for a view state built over the
 * stored layouts (schema-record.ts):
 *
 *   nothing changed ─────────────────────────────────────────────► unchanged
 *   a view no longer binds (a column it names is gone, …) ───────► VIEW_SCHEMA_INCOMPATIBLE (thrown)
 *   a view reads a changed column, its output or its reads change,
 *   a key changed, a table was replaced ─────────────────────────► rebuild (from a new snapshot)
 *   only columns no view reads changed ──────────────────────────► migrated: the state keeps its
 *                                                                  layout, rows in the new layout
 *                                                                  are mapped into it by name
 *
 * "Reads" is what the planner resolved an expression to (`ViewPlan.reads`, `*` expanded), so a
 * view over `SELECT *` reads every column and an added column changes its output.
 */
import type { TableSchema } from '../core/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ViewPlan } from '../sql/plan.ts';
import {
  describeColumn,
  describeTableChange,
  diffTable,
  isUnchanged,
  type TableChange,
  type ViewDefinition,
} from './schema-record.ts';

export type SchemaDecision =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'migrated'; readonly reason: string }
  | { readonly kind: 'rebuild'; readonly reason: string };

export interface ReconcileInput {
  readonly views: readonly ViewDefinition[];
  /** The plans the state was built with, over `storedInputs`. */
  readonly storedPlans: readonly ViewPlan[];
  readonly storedInputs: readonly TableSchema[];
  /** The layout each stored input arrives in now (same order); undefined: the table is gone. */
  readonly current: readonly (TableSchema | undefined)[];
  /** Plans a view against the current layouts. */
  readonly planCurrent: (view: ViewDefinition) => Promise<ViewPlan>;
}

export async function reconcileSchemas(input: ReconcileInput): Promise<SchemaDecision> {
  const changes = new Map<number, TableChange | 'gone'>();
  input.storedInputs.forEach((t, i) => {
    const now = input.current[i];
    const c = now === undefined ? 'gone' : diffTable(t, now);
    if (c === 'gone' || !isUnchanged(c)) changes.set(t.relationId, c);
  });
  if (changes.size === 0) return { kind: 'unchanged' };
  const describe = (relationId: number, t: TableSchema): string => {
    const c = changes.get(relationId);
    return c === 'gone' || c === undefined ? `${t.schema}.${t.name}: dropped` : describeTableChange(c);
  };
  const rebuild: string[] = [];
  for (const [i, view] of input.views.entries()) {
    const stored = input.storedPlans[i] as ViewPlan;
    const touched = stored.inputs.filter((t) => changes.has(t.relationId));
    if (touched.length === 0) continue;
    const what = touched.map((t) => describe(t.relationId, t)).join('; ');
    let now: ViewPlan;
    try {
      now = await input.planCurrent(view);
    } catch (err) {
      if (!(err instanceof TidemarkError) || !err.code.startsWith('VIEW_')) throw err;
      throw new TidemarkError('VIEW_SCHEMA_INCOMPATIBLE', {
        detail: `view "${view.name}" no longer binds after ${what}: ${err.detail ?? err.message}`,
        cause: err,
      });
    }
    for (const t of touched) {
      const c = changes.get(t.relationId);
      if (c === undefined || c === 'gone') continue;
      if (c.replaced)
        rebuild.push(`view "${view.name}" reads ${c.table}, which was dropped and created again`);
      if (c.key) rebuild.push(`view "${view.name}" reads ${describeTableChange({ ...c, columns: [] })}`);
      const reads = stored.reads.get(t.relationId);
      for (const col of c.columns) {
        if (col.kind === 'added') continue;
        if (reads?.has(col.column))
          rebuild.push(`view "${view.name}" reads ${c.table} ${describeColumn(col)}`);
        // Rows of a keyless table are matched on every column, so none may change under them.
        else if (t.keyless)
          rebuild.push(
            `view "${view.name}" reads ${c.table}, keyless (rows matched on all columns): ${describeColumn(col)}`,
          );
      }
    }
    if (!sameOutput(stored, now)) rebuild.push(`the output of view "${view.name}" changes with ${what}`);
    else if (!sameReads(stored, now))
      rebuild.push(`view "${view.name}" would read other columns after ${what}`);
  }
  if (rebuild.length > 0) return { kind: 'rebuild', reason: unique(rebuild).join('; ') };
  const all = input.storedInputs
    .filter((t) => changes.has(t.relationId))
    .map((t) => describe(t.relationId, t));
  return { kind: 'migrated', reason: `${all.join('; ')} (no view reads what changed)` };
}

function sameOutput(a: ViewPlan, b: ViewPlan): boolean {
  const cols = (p: ViewPlan) => JSON.stringify(p.outputColumns.map((c) => [c.name, c.typeName, c.isKey]));
  return cols(a) === cols(b) && JSON.stringify(a.key) === JSON.stringify(b.key);
}

function sameReads(a: ViewPlan, b: ViewPlan): boolean {
  const flat = (p: ViewPlan) =>
    JSON.stringify(
      [...p.reads].map(([rel, cols]) => [rel, [...cols].sort()] as const).sort((x, y) => x[0] - y[0]),
    );
  return flat(a) === flat(b);
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
