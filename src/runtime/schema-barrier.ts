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
 *                                                            re-copy needed → policy recopy: copy (online,
 *                                                              when the connector can and no view reads it) | SOURCE_SCHEMA_RECOPY
 *                                                            rename → policy renameTable: follow | fail
 *                                                            else replay downstream
 *                                   no, but now named by the selection (a swap) → SOURCE_TABLES_CHANGED
 *   anything else                   —                        ignored
 *
 * A change of a table a view reads goes to the view stage as well, whatever is decided here
 * (ViewStage.barrier: migrate, rebuild in the epoch, or VIEW_SCHEMA_CHANGED); `viewBarrier`.
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
  /** A change the log cannot replay (a volatile rewrite): copy the table again online, or stop. */
  readonly recopy: 'copy' | 'fail';
}

export interface BarrierContext {
  readonly changefeedId: string;
  /** The changefeed's `tables` selection. */
  readonly selection: readonly string[];
  /** Ids of the tables replicated to the sink. */
  readonly replicated: ReadonlySet<number>;
  readonly policy: SchemaPolicy;
  /** Where the change happened, for messages: "after <resolved position>". */
  readonly where: string;
  /** True when a table can be copied online here (the connector reads chunks; no view reads it). */
  readonly canCopy: (tableId: number) => boolean;
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
    }
  /** The table's rows cannot be derived downstream: copy it again online in its new shape. */
  | { readonly action: 'recopy'; readonly table: TableSchema; readonly reason: string };

export function decideBarrier(change: SchemaChange, ctx: BarrierContext): BarrierDecision {
  const id = schemaChangeTableId(change);
  const replicated = ctx.replicated.has(id);
  const ddl = change.ddl ? `: ${change.ddl.trim().slice(0, 300)}` : '';
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
        if (ctx.policy.recopy === 'copy' && ctx.canCopy(id))
          return { action: 'recopy', table: change.after, reason: change.recopy };
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

/** True when the views must see the change at its position (a table they read changed). */
export function viewBarrier(change: SchemaChange, viewInputs: ReadonlySet<number>): boolean {
  return change.kind !== 'table-created' && viewInputs.has(schemaChangeTableId(change));
}

function nameOf(change: SchemaChange): string {
  const t = change.kind === 'table-altered' ? change.after : change.table;
  return `${t.schema}.${t.name}`;
}
