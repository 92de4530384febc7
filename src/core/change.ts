/**
 * Changes as they travel from a connector through the change hub to the pipeline.
 *
 *   connector ──ChangeEvent──► hub (log, own sequence) ──ChangeMessage──► pipeline (epochs)
 *
 * A transaction is `begin · (row change | schema)* · commit`, contiguous; transactions come in
 * commit order. Every row change carries its table's shape at that point of the stream (the
 * shape its cells follow); a `schema` event is a barrier between the rows before it (old shape)
 * and after it (new shape). The commit carries the transaction's position. A heartbeat is a
 * transaction with no changes: it only advances the resolved position.
 */
import type { PackedCells } from './packed-cells.ts';
import type { Position } from './position.ts';
import type { Cell, Row } from './row.ts';
import type { SchemaChange } from './schema-change.ts';
import type { TableSchema } from './table-schema.ts';

/**
 * A change to rows, or a barrier, inside a transaction. A change may also carry its cells packed
 * (`packedRow`, `packedOld`: the same cells as `row`, `old`; core/packed-cells.ts), for consumers
 * that can use the bytes as they are; `row` and `old` then unpack on first use.
 */
export type RowChange =
  | {
      readonly tag: 'insert';
      readonly table: TableSchema;
      readonly row: Row;
      readonly packedRow?: PackedCells;
    }
  | {
      readonly tag: 'update';
      readonly table: TableSchema;
      readonly packedRow?: PackedCells;
      readonly packedOld?: PackedCells | null;
      /** The new row; cells may be UNCHANGED (TOAST not in the WAL). */
      readonly row: Cell[];
      /**
       * The old row as the source logged it, when it did: only the key cells (others null) if
       * the key changed, or the whole row with a full row image. Null when the key did not change
       * and the table logs only keys.
       */
      readonly old: Row | null;
      /** True when `old` is the whole old row (REPLICA IDENTITY FULL). */
      readonly oldIsFull: boolean;
    }
  | {
      readonly tag: 'delete';
      readonly table: TableSchema;
      readonly packedOld?: PackedCells;
      /** Key columns (others null), or the full row when keyless. */
      readonly old: Row;
    }
  | { readonly tag: 'truncate'; readonly tables: readonly TableSchema[] }
  /** A barrier: `change`'s table takes its new shape here. */
  | { readonly tag: 'schema'; readonly change: SchemaChange };

/**
 * A transaction's start. `txn` is the source's own id of the transaction where it has one
 * (PostgreSQL's xid, low 32 bits): an online copy's chunk tells by it whether the transaction is
 * in the chunk's rows (`ChunkRead.contains`).
 */
export interface BeginEvent {
  readonly tag: 'begin';
  readonly commitTimeMs: number;
  readonly txn?: number;
}

/** What a connector's replication session emits (`source/connector.ts`). */
export type ChangeEvent<P extends Position = Position> =
  BeginEvent | RowChange | { readonly tag: 'commit'; readonly position: P; readonly commitTimeMs: number };

/** What a subscription of the change hub yields: the commit also carries the hub's sequence. */
export type ChangeMessage<P extends Position = Position> =
  | BeginEvent
  | RowChange
  | {
      readonly tag: 'commit';
      readonly position: P;
      readonly commitTimeMs: number;
      /** The hub's own sequence number of the transaction (1, 2, …; gaps where cleaned). */
      readonly seq: bigint;
    };

/** One message at a time from a batched stream (tests and tools; the pipeline takes batches). */
export async function* eachMessage<M>(batches: AsyncIterable<readonly M[]>): AsyncGenerator<M> {
  for await (const batch of batches) yield* batch;
}
