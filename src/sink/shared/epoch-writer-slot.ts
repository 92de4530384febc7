import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { EpochWriter } from '../sink.ts';
import type { Epoch, TableChanges } from '../../core/epoch.ts';
import type { SchemaChange } from '../../core/schema-change.ts';
import type { TableSchema } from '../../core/table-schema.ts';

/**
 * What a sink does for one epoch written in chunks; `EpochWriterSlot` adds the sequencing, the
 * states and the one-writer-per-sink rule, so each sink writes only its store's steps.
 */
export interface EpochWriterSteps {
  /** Applies one chunk inside the epoch's transaction (beginning it if needed). */
  applyChunk(tables: readonly TableChanges[], chunk: number): Promise<void>;
  /** Applies a schema change inside the epoch's transaction (beginning it if needed). */
  applySchema(change: SchemaChange): Promise<void>;
  /**
   * Replaces `table`'s rows with `shadow`'s and drops the shadow (`EpochWriter.replaceTable`).
   * Without it the slot drops `table` and renames the shadow through `applySchema`, which is
   * whole-or-nothing wherever DDL commits with the epoch and readers' snapshots cover the catalog.
   */
  replaceTable?(table: TableSchema, shadow: TableSchema): Promise<void>;
  /** Applies the last chunk and the checkpoint, and commits. `chunks` chunks came before. */
  commit(epoch: Epoch, chunks: number): Promise<void>;
  /** Rolls back whatever the steps began. Called once, after a failed step or on abort. */
  discard(): Promise<void>;
}

type State = 'open' | 'busy' | 'committed' | 'failed' | 'aborted';

/**
 * Transitions of an EpochWriter (sink.ts), as a table: what each call does in each state.
 *
 *   state       applyChunk / applySchema / replaceTable / commit   abort
 *   open        → busy → open | committed; fails → failed        → aborted (discard)
 *   busy        INTERNAL (calls are sequential)                  waits for the call, then as its outcome
 *   committed   INTERNAL                                         no-op
 *   failed      INTERNAL (the transaction is gone)               no-op
 *   aborted     INTERNAL                                         no-op
 *
 * A failed step is discarded before its error is rethrown, so the store holds nothing of the
 * epoch by the time the caller sees the failure, and the slot is free for the retry.
 */
export class EpochWriterSlot {
  readonly #label: string;
  #open = false;

  /** `label` names the sink in errors (`postgres sink`, `file sink /dir`). */
  constructor(label: string) {
    this.#label = label;
  }

  /** True while a writer is open (between `open` and its commit, failure or abort). */
  get busy(): boolean {
    return this.#open;
  }

  /** The one open writer over `steps`; INTERNAL if another is open (a broken precondition). */
  open(steps: EpochWriterSteps): EpochWriter {
    if (this.#open) {
      throw new TidemarkError('INTERNAL', {
        detail: `${this.#label}: an epoch was begun while another one is still being written`,
      });
    }
    this.#open = true;
    let state: State = 'open';
    let chunks = 0;
    let pending: Promise<unknown> = Promise.resolve();
    const release = () => {
      this.#open = false;
    };
    const step = async <T>(name: string, fn: () => Promise<T>, last: boolean): Promise<T> => {
      if (state !== 'open') {
        throw new TidemarkError('INTERNAL', {
          detail: `${this.#label}: EpochWriter.${name} on a writer that is ${state === 'busy' ? 'busy with another call' : state}`,
        });
      }
      state = 'busy';
      const run = (async () => {
        try {
          const out = await fn();
          state = last ? 'committed' : 'open';
          if (last) release();
          return out;
        } catch (err) {
          state = 'failed';
          // The step's error is what the caller needs; a failing rollback (connection gone)
          // leaves nothing committed either.
          await steps.discard().catch(() => undefined);
          release();
          throw err;
        }
      })();
      pending = run.catch(() => undefined);
      return run;
    };
    const dropAndRename = async (table: TableSchema, shadow: TableSchema) => {
      await steps.applySchema({ kind: 'table-dropped', tableId: table.relationId, table, ddl: null });
      await steps.applySchema({
        kind: 'table-altered',
        before: shadow,
        after: table,
        columns: [],
        recopy: null,
        ddl: null,
      });
    };
    return {
      applyChunk: (tables) => step('applyChunk', () => steps.applyChunk(tables, ++chunks), false),
      applySchema: (change) => step('applySchema', () => steps.applySchema(change), false),
      replaceTable: (table, shadow) =>
        step('replaceTable', () => (steps.replaceTable ?? dropAndRename)(table, shadow), false),
      commit: (epoch) => step('commit', () => steps.commit(epoch, chunks), true),
      abort: async () => {
        await pending;
        if (state !== 'open') return;
        state = 'aborted';
        try {
          await steps.discard();
        } finally {
          release();
        }
      },
    };
  }
}
