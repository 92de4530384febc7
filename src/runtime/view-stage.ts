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
 * from another run — means the views cannot continue incrementally: the changefeed takes a new
 * snapshot (tables and views together, atomically), rather than guess.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ViewMaintainer } from '../dataflow/view-maintainer.ts';
import { LmdbStateStore } from '../dataflow/lmdb-state-store.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { SnapshotRows, TableChanges } from '../core/epoch.ts';

export interface ViewStageOptions {
  readonly views: readonly { name: string; sql: string }[];
  readonly catalog: readonly TableSchema[];
  readonly stateDir: string;
  /** The sink's checkpoint epoch, or null when the sink has none. */
  readonly sinkEpoch: number | null;
}

export class ViewStage {
  private constructor(
    private readonly maintainer: ViewMaintainer,
    private readonly store: LmdbStateStore,
    /** True when the state could not be reconciled with the sink: a new snapshot is needed. */
    readonly needsSnapshot: boolean,
  ) {}

  static async open(opts: ViewStageOptions): Promise<ViewStage> {
    const open = async () => {
      mkdirSync(opts.stateDir, { recursive: true });
      const store = LmdbStateStore.open({ path: opts.stateDir });
      try {
        return {
          store,
          maintainer: await ViewMaintainer.open({ views: opts.views, catalog: opts.catalog, store }),
        };
      } catch (err) {
        await store.close();
        throw err;
      }
    };
    const wipe = () => rmSync(opts.stateDir, { recursive: true, force: true });
    if (opts.sinkEpoch === null) wipe();
    let { store, maintainer } = await open();
    const state = maintainer.lastCommittedEpoch();
    if (opts.sinkEpoch === null || state === opts.sinkEpoch) return new ViewStage(maintainer, store, false);
    if (state === opts.sinkEpoch + 1) {
      await maintainer.rollbackLastEpoch();
      return new ViewStage(maintainer, store, false);
    }
    await maintainer.close();
    wipe();
    ({ store, maintainer } = await open());
    return new ViewStage(maintainer, store, true);
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

  /**
   * Passes snapshot chunks through: tables the views read are loaded into the views, replicated
   * tables are yielded, and at the end the views' initial rows follow. The view state is
   * committed (epoch 0) when the last chunk has been taken, before the sink commits.
   */
  async *snapshot(
    chunks: AsyncIterable<SnapshotRows>,
    replicated: ReadonlySet<number>,
    epoch = 0,
  ): AsyncGenerator<SnapshotRows> {
    const inputs = new Set(this.inputTables.map((t) => t.relationId));
    for await (const c of chunks) {
      if (inputs.has(c.table.relationId)) await this.maintainer.loadSnapshot(c);
      if (replicated.has(c.table.relationId)) yield c;
    }
    for (const v of await this.maintainer.finishSnapshot()) yield v;
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
