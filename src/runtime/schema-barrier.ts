/**
 * What a changefeed does with a schema change that reaches it through the change hub (a barrier,
 * `core/schema-change.ts`): decided here, applied by the stream loop (changefeed.ts), which cuts
 * the epoch's downstream work at the barrier — the changes before it, the sink's DDL, the changes
 * after it, one commit.
 *
 *   change                          table replicated?        decision
 *   table-created                   matches the selection    add it: created downstream at the barrier
 *                                   (unreplicable: left out, warned)
 *   table-dropped                   yes                      policy dropTable: drop | keep | fail
 *   table-altered                   yes                      no safe replica identity → SOURCE_REPLICA_IDENTITY
 *                                                            re-copy needed → SOURCE_SCHEMA_RECOPY
 *                                                            rename → policy renameTable: follow | fail
 *                                                            else replay downstream
 *                                   no, but now named by the selection (a swap) → SOURCE_TABLES_CHANGED
 *   any, on a table a view reads    —                        a change other than added columns →
 *                                                            VIEW_SCHEMA_CHANGED (until views migrate state)
 *   anything else                   —                        ignored
 */
import type { SchemaChange } from '../core/schema-change.ts';
import { schemaChangeTableId } from '../core/schema-change.ts';
import { selects } from '../core/selection.ts';
import type { TableSchema } from '../core/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

export interface SchemaPolicy {
  /** A replicated table dropped in the source: drop it downstream, keep it (its last rows), or stop. */
  readonly dropTable: 'drop' | 'keep' | 'fail';
  /** A replicated table renamed in the source: rename it downstream too, or stop. */
  readonly renameTable: 'follow' | 'fail';
}

export interface BarrierContext {
  readonly changefeedId: string;
  /** The changefeed's `tables` selection. */
  readonly selection: readonly string[];
  /** Ids of the tables replicated to the sink. */
  readonly replicated: ReadonlySet<number>;
  /** Ids of the tables views read (replicated or not). */
  readonly viewInputs: ReadonlySet<number>;
  readonly policy: SchemaPolicy;
  /** Where the change happened, for messages: "after <resolved position>". */
  readonly where: string;
}

export type BarrierDecision =
  | { readonly action: 'ignore' }
  | { readonly action: 'left-out'; readonly table: TableSchema; readonly reason: string }
  | {
      readonly action: 'apply';
      /** Send the change to the sink. */
      readonly toSink: boolean;
      /** The table starts being replicated (created), stops (dropped), or takes a new shape. */
      readonly table: { readonly add?: TableSchema; readonly remove?: number; readonly update?: TableSchema };
    };

export function decideBarrier(change: SchemaChange, ctx: BarrierContext): BarrierDecision {
  const id = schemaChangeTableId(change);
  const replicated = ctx.replicated.has(id);
  const ddl = change.ddl ? `: ${change.ddl.trim().slice(0, 300)}` : '';
  if (ctx.viewInputs.has(id) && !onlyAddsColumns(change)) {
    throw new TidemarkError('VIEW_SCHEMA_CHANGED', {
      detail: `changefeed ${ctx.changefeedId}: a view reads ${nameOf(change)}, whose schema changed (${change.kind}) ${ctx.where}${ddl}`,
    });
  }
  switch (change.kind) {
    case 'table-created': {
      if (!selects(ctx.selection, change.table)) return { action: 'ignore' };
      if (change.unreplicable !== null)
        return { action: 'left-out', table: change.table, reason: change.unreplicable };
      return { action: 'apply', toSink: true, table: { add: change.table } };
    }
    case 'table-dropped': {
      if (!replicated) return { action: 'ignore' };
      if (ctx.policy.dropTable === 'fail') {
        throw new TidemarkError('SOURCE_TABLE_DROPPED', {
          detail: `changefeed ${ctx.changefeedId}: ${nameOf(change)} was dropped in the source ${ctx.where}${ddl}`,
        });
      }
      return { action: 'apply', toSink: ctx.policy.dropTable === 'drop', table: { remove: id } };
    }
    case 'table-altered': {
      if (!replicated) {
        const wasNamed = selects(ctx.selection, change.before);
        if (selects(ctx.selection, change.after) && !wasNamed) {
          throw new TidemarkError('SOURCE_TABLES_CHANGED', {
            detail: `changefeed ${ctx.changefeedId}: another table (id ${id}) took the name ${change.after.schema}.${change.after.name} ${ctx.where}${ddl} — its rows were never copied`,
          });
        }
        return { action: 'ignore' };
      }
      if (change.unreplicable !== undefined) {
        throw new TidemarkError('SOURCE_REPLICA_IDENTITY', {
          detail: `changefeed ${ctx.changefeedId}: ${change.after.schema}.${change.after.name} ${ctx.where}: ${change.unreplicable}${ddl}`,
        });
      }
      if (change.recopy !== null) {
        throw new TidemarkError('SOURCE_SCHEMA_RECOPY', {
          detail: `changefeed ${ctx.changefeedId}: ${change.before.schema}.${change.before.name} needs a new copy ${ctx.where}: ${change.recopy}${ddl}`,
        });
      }
      const renamed =
        change.before.schema !== change.after.schema || change.before.name !== change.after.name;
      if (renamed && ctx.policy.renameTable === 'fail') {
        throw new TidemarkError('SOURCE_TABLE_RENAMED', {
          detail: `changefeed ${ctx.changefeedId}: ${change.before.schema}.${change.before.name} was renamed to ${change.after.schema}.${change.after.name} ${ctx.where}${ddl}`,
        });
      }
      return { action: 'apply', toSink: true, table: { update: change.after } };
    }
  }
}

/** True when the change only appends columns (a view's positional reads of old columns still hold). */
function onlyAddsColumns(change: SchemaChange): boolean {
  if (change.kind !== 'table-altered') return change.kind === 'table-created';
  const { before, after } = change;
  return (
    before.schema === after.schema &&
    before.name === after.name &&
    change.recopy === null &&
    change.columns.every((c) => c.op === 'added') &&
    before.columns.every(
      (c, i) => after.columns[i]?.name === c.name && after.columns[i]?.typeName === c.typeName,
    )
  );
}

function nameOf(change: SchemaChange): string {
  const t = change.kind === 'table-altered' ? change.after : change.table;
  return `${t.schema}.${t.name}`;
}
