import type { Position } from './position.ts';
import type { Cell, Row } from './row.ts';
import type { TableSchema } from './table-schema.ts';

/**
 * The contract between a source database and the rest of the pipeline.
 *
 *   source DB ──► ChangeSource.snapshot() ──► rows of each table at position P
 *             └─► ChangeSource.stream(after P) ──► begin · change* · commit, in commit order
 *                              ▲
 *   sink commits epoch ending at C ── acknowledge(C) ──┘ (source may now discard the log up to C)
 *
 * Messages of one transaction are contiguous; transactions arrive in commit order; every change
 * carries nothing but its table and row, the commit carries the position. A `heartbeat` is a
 * commit with no changes: it only advances the resolved position.
 */
export type ChangeMessage =
  | { readonly tag: 'begin'; readonly commitTimeMs: number }
  | { readonly tag: 'relation'; readonly table: TableSchema }
  | { readonly tag: 'insert'; readonly table: TableSchema; readonly row: Row }
  | {
      readonly tag: 'update';
      readonly table: TableSchema;
      /** The new row; cells may be UNCHANGED (TOAST not in the WAL). */
      readonly row: Cell[];
      /**
       * The old row as the source logged it, when it did: only the key cells (others null) if
       * the key changed, or the whole row under REPLICA IDENTITY FULL. Null when the key did not
       * change and the table logs only keys.
       */
      readonly old: Row | null;
      /** True when `old` is the whole old row (REPLICA IDENTITY FULL). */
      readonly oldIsFull: boolean;
    }
  | {
      readonly tag: 'delete';
      readonly table: TableSchema;
      /** Key columns (others null), or the full row when keyless. */ readonly old: Row;
    }
  | { readonly tag: 'truncate'; readonly tables: readonly TableSchema[] }
  | { readonly tag: 'commit'; readonly position: Position; readonly commitTimeMs: number };

export interface SnapshotChunk {
  readonly table: TableSchema;
  readonly rows: Row[];
}

/** One message at a time from a batched stream (tests and tools; the runtime takes batches). */
export async function* eachMessage(
  batches: AsyncIterable<readonly ChangeMessage[]>,
): AsyncGenerator<ChangeMessage> {
  for await (const batch of batches) yield* batch;
}
