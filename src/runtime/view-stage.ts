/**
 * The views of one changefeed, between the epoch builder and the sink.
 *
 *   epoch e (base-table changes) ─► ViewMaintainer.step ─► state commit (epoch e, undo kept) ─► views' TableChanges
 *                                                                           │
 *                            sink.commitEpoch(tables + views, checkpoint e) ◄┘
 *
 * View state lives in LMDB under `<dataDir>/state/<changefeed>` and is committed *before* the
 * sink commits the same epoch, so after a crash it is either at the sink's checkpoint epoch or
 * exactly one ahead (then its last epoch is rolled back). Anything else — the directory lost or
 * from another run, view definitions changed, an input layout changed in what a view reads
 * (schema-reconcile.ts) — means the views cannot continue incrementally: the changefeed takes a
 * new snapshot (tables and views together, atomically), rather than guess; `rebuildReason` says
 * why. Schema changes during streaming are announced with `schemaChanged` at their barrier.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ViewMaintainer, type BarrierResult } from '../dataflow/view-maintainer.ts';
export type { BarrierResult } from '../dataflow/view-maintainer.ts';
import type { SchemaChange } from '../core/schema-change.ts';
import { LmdbStateStore } from '../dataflow/lmdb-state-store.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { SchemaDecision } from '../dataflow/schema-reconcile.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { SnapshotRows, TableChanges } from '../core/epoch.ts';

export interface ViewStageOptions {
  readonly views: readonly { name: string; sql: string }[];
  readonly catalog: readonly TableSchema[];
  readonly stateDir: string;
  /** The sink's checkpoint epoch, or null when the sink has none. */
  readonly sinkEpoch: number | null;
  /**
   * The changefeed's memory quota: the view state holds a sixteenth of it (at most 16 MiB) of an
   * epoch's writes before they spill into LMDB, a quarter of it (at most 64 MiB) of committed
   * epochs' writes before they are merged into LMDB's B-tree, and keeps at most the quota of
   * LMDB's pages mapped (at least 32 MiB). Default: the store's defaults (16, 64, 256 MiB).
   */
  readonly memoryQuotaBytes?: number;
}

const MiB = 1024 * 1024;

/** The LMDB store's options for a changefeed's memory quota (see ViewStageOptions). */
export function stateStoreLimits(quota: number | undefined): {
  spillBytes?: number;
  memtableBytes?: number;
  mapBudgetBytes?: number;
} {
  if (quota === undefined) return {};
  return {
    spillBytes: Math.max(64 * 1024, Math.min(16 * MiB, Math.floor(quota / 16))),
    memtableBytes: Math.max(256 * 1024, Math.min(64 * MiB, Math.floor(quota / 4))),
    mapBudgetBytes: Math.max(32 * MiB, quota),
  };
}

export class ViewStage {
  private constructor(
    private readonly maintainer: ViewMaintainer,
    private readonly store: LmdbStateStore,
    /** True when the state could not be reconciled with the sink: a new snapshot is needed. */
    readonly needsSnapshot: boolean,
    /** Why a new snapshot is needed (null when it is not). */
    readonly rebuildReason: string | null = null,
  ) {}

  static async open(opts: ViewStageOptions): Promise<ViewStage> {
    const open = async () => {
      mkdirSync(opts.stateDir, { recursive: true });
      const store = LmdbStateStore.open({ path: opts.stateDir, ...stateStoreLimits(opts.memoryQuotaBytes) });
      try {
        // One epoch ahead of the sink: undone before the state is read (a barrier in that epoch
        // may have rebuilt the views' graph and rewritten the schema record).
        const state = store.lastCommittedEpoch();
        if (opts.sinkEpoch !== null && state === opts.sinkEpoch + 1) await store.rollbackLastEpoch();
        return {
          store,
          maintainer: await ViewMaintainer.open({
            views: opts.views,
            catalog: opts.catalog,
            store,
            resume: true,
          }),
        };
      } catch (err) {
        await store.close();
        throw err;
      }
    };
    const wipe = () => rmSync(opts.stateDir, { recursive: true, force: true });
    const rebuild = async (reason: string) => {
      wipe();
      const fresh = await open();
      return new ViewStage(fresh.maintainer, fresh.store, true, reason);
    };
    if (opts.sinkEpoch === null) wipe();
    let opened: Awaited<ReturnType<typeof open>>;
    try {
      opened = await open();
    } catch (err) {
      if (err instanceof TidemarkError && err.code === 'VIEW_STATE_STALE') return rebuild(err.detail ?? '');
      throw err;
    }
    const { store, maintainer } = opened;
    const state = maintainer.lastCommittedEpoch();
    if (opts.sinkEpoch === null || state === opts.sinkEpoch) return new ViewStage(maintainer, store, false);
    await maintainer.close();
    return rebuild(
      `the view state is at epoch ${state ?? 'none'}, the sink's checkpoint at epoch ${opts.sinkEpoch}`,
    );
  }

  /**
   * A schema barrier for one input table: changes of `table` arrive in this layout from now on.
   * `unchanged` / `migrated`: go on (the reason says what changed and that no view reads it);
   * `rebuild`: the views must be rebuilt from a new snapshot — stop streaming and open the stage
   * again (it then reports `needsSnapshot`). Throws VIEW_SCHEMA_INCOMPATIBLE (not retriable) when
   * a view no longer binds, naming the view, the table and the change. Call at the barrier's
   * position, before any change in the new layout; allowed between the chunks of one epoch.
   */
  schemaChanged(table: TableSchema): Promise<SchemaDecision> {
    return this.maintainer.schemaChanged(table);
  }

  /**
   * A schema barrier (ViewMaintainer.barrier): call at the barrier's position, after `apply` of
   * the epoch's changes before it with `last: false` (the epoch is open), before any change in the
   * new layout. On a throw the epoch's pending state is dropped.
   */
  async barrier(change: SchemaChange, where: string, copyFollows = false): Promise<BarrierResult> {
    try {
      return await this.maintainer.barrier(change, where, copyFollows);
    } catch (err) {
      this.maintainer.abort();
      throw err;
    }
  }

  /**
   * An online copy of the input `table` starts (`fresh`) or resumes: its shadow's changes collect
   * in the view state until the swap, and the views keep the table's last rows meanwhile — as
   * the table downstream does. A fresh start needs the epoch open (`apply` with `last: false`).
   */
  copyStarted(table: TableSchema, shadow: TableSchema, fresh: boolean): void {
    this.maintainer.copyStarted(table, shadow, fresh);
  }

  /** The copy of `table` is given up (the epoch is open). */
  copyEnded(table: TableSchema): void {
    this.maintainer.copyEnded(table);
  }

  /** False when the copy of `table` holds no row: a resumed copy then starts over. */
  copyCollected(table: TableSchema): boolean {
    return this.maintainer.copyCollected(table);
  }

  /**
   * At the swap of `table`'s copy: the schema change the views take first when the copy's layout
   * is not theirs (ViewMaintainer.copyLayoutChange), or null. Take it with `copyRetracted`, then
   * `barrier(change, where, true)`, then `copySwapped`.
   */
  copyLayoutChange(table: TableSchema): SchemaChange | null {
    return this.maintainer.copyLayoutChange(table);
  }

  /** The table's rows retracted from the views (the views' changes page by page), in the open epoch. */
  copyRetracted(table: TableSchema): AsyncGenerator<TableChanges[]> {
    return this.pages(this.maintainer.copyRetracted(table));
  }

  /**
   * The copy of `table` replaces its rows in the views, in the open epoch, at the table's swap:
   * the views' changes page by page, to apply in order in the same transaction as the swap.
   * On failure (or when the caller stops reading) the epoch's pending state is dropped.
   */
  copySwapped(table: TableSchema): AsyncGenerator<TableChanges[]> {
    return this.pages(this.maintainer.copySwapped(table));
  }

  private async *pages(gen: Generator<TableChanges[]>): AsyncGenerator<TableChanges[]> {
    let done = false;
    try {
      for (const page of gen) yield page;
      done = true;
    } finally {
      if (!done) this.maintainer.abort();
    }
  }

  static stateDirFor(dataDir: string, changefeedId: string): string {
    return join(dataDir, 'state', changefeedId);
  }

  get inputTables(): readonly TableSchema[] {
    return this.maintainer.inputTables;
  }

  get viewTables(): readonly TableSchema[] {
    return this.maintainer.viewTables;
  }

  /** Each view's plan in words. */
  get planDescriptions(): readonly { name: string; plan: string[] }[] {
    return this.maintainer.planDescriptions;
  }

  /**
   * Passes snapshot chunks through: tables the views read are loaded into the views, replicated
   * tables are yielded, and at the end the views' initial rows follow. The view state is
   * committed under the snapshot's epoch in the sink (0, or the one after the checkpoint a new
   * snapshot replaces) when the last chunk has been taken, before the sink commits.
   */
  async *snapshot(
    chunks: AsyncIterable<SnapshotRows>,
    replicated: ReadonlySet<number>,
    epoch = 0,
  ): AsyncGenerator<SnapshotRows> {
    const inputs = new Set(this.inputTables.map((t) => t.relationId));
    for await (const c of chunks) {
      if (inputs.has(c.table.relationId)) await this.maintainer.loadSnapshot(c, epoch);
      if (replicated.has(c.table.relationId)) yield c;
    }
    for await (const v of this.maintainer.finishSnapshot(epoch)) yield v;
    await this.maintainer.commit(epoch);
  }

  /**
   * The views' changes for epoch `epoch` (or for one chunk of it), in the same order as the
   * base-table changes given. `continuing`: an earlier chunk of this epoch was applied (its state
   * is pending); `last`: commit the view state for the epoch (before the sink commits it). On
   * failure the whole epoch's pending state is dropped.
   */
  async apply(
    epoch: number,
    changes: readonly TableChanges[],
    step: { continuing?: boolean; last?: boolean } = {},
  ): Promise<TableChanges[]> {
    try {
      const out = await this.maintainer.step(epoch, changes, { continuing: step.continuing === true });
      if (step.last !== false) await this.maintainer.commit(epoch);
      return out;
    } catch (err) {
      this.maintainer.abort();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.maintainer.close();
    await this.store.close().catch(() => {});
  }
}
