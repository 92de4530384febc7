import type { PackedCells } from '../../core/packed-cells.ts';
import type { Cell, Row } from '../../core/row.ts';
import type { Lsn } from './lsn.ts';

/**
 * The messages of PostgreSQL's logical replication stream as the pgoutput decoder yields them
 * (protocol version 1: https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html).
 *
 * Times are milliseconds since the Unix epoch (`…Ms`) plus the exact microseconds since the Unix
 * epoch (`…Us`, a safe integer until the year 2255). Cells are text form (decode/row.ts); decoded
 * with `packed`, tuples also come as packed cells (`packedRow`, `packedOld`: core/packed-cells.ts)
 * and `row` and `old` unpack them on first use.
 */

/** Replica identity of a relation: default (key), nothing, full, index. */
export type ReplicaIdentity = 'd' | 'n' | 'f' | 'i';

export interface RelationColumn {
  /** True when the column is part of the replica identity key (flag bit 1). */
  readonly isKey: boolean;
  readonly name: string;
  readonly typeOid: number;
  readonly typeMod: number;
}

export type PgoutputMessage =
  | {
      readonly tag: 'begin';
      /** The commit LSN of the transaction (its position). */
      readonly finalLsn: Lsn;
      readonly commitTimeMs: number;
      readonly commitTimeUs: number;
      readonly xid: number;
    }
  | {
      readonly tag: 'commit';
      readonly flags: number;
      readonly commitLsn: Lsn;
      /** The end of the commit record: where a restarted stream resumes after this transaction. */
      readonly endLsn: Lsn;
      readonly commitTimeMs: number;
      readonly commitTimeUs: number;
    }
  | { readonly tag: 'origin'; readonly originLsn: Lsn; readonly name: string }
  | {
      readonly tag: 'relation';
      readonly relationId: number;
      readonly schema: string;
      readonly name: string;
      readonly replicaIdentity: ReplicaIdentity;
      readonly columns: readonly RelationColumn[];
    }
  | { readonly tag: 'type'; readonly typeOid: number; readonly schema: string; readonly name: string }
  | {
      readonly tag: 'insert';
      readonly relationId: number;
      readonly row: Row;
      readonly packedRow?: PackedCells;
    }
  | {
      readonly tag: 'update';
      readonly relationId: number;
      /** 'key' when the old key columns were sent (key changed), 'full' for REPLICA IDENTITY FULL. */
      readonly oldKind: 'key' | 'full' | null;
      /** For 'key': key columns, others null. For 'full': the whole old row (may hold UNCHANGED). */
      readonly old: Cell[] | null;
      /** The new row; TOASTed columns that did not change are UNCHANGED. */
      readonly row: Cell[];
      readonly packedRow?: PackedCells;
      readonly packedOld?: PackedCells | null;
    }
  | {
      readonly tag: 'delete';
      readonly relationId: number;
      readonly oldKind: 'key' | 'full';
      readonly old: Row;
      readonly packedOld?: PackedCells;
    }
  | {
      readonly tag: 'truncate';
      readonly cascade: boolean;
      readonly restartIdentity: boolean;
      readonly relationIds: readonly number[];
    }
  | {
      readonly tag: 'message';
      readonly transactional: boolean;
      readonly lsn: Lsn;
      readonly prefix: string;
      /** The content bytes; a view into the received chunk (copy it to keep it past the batch). */
      readonly content: Buffer;
    };

/** A primary keepalive ('k'): the server's WAL end; every change before it has been sent. */
export interface KeepaliveMessage {
  readonly tag: 'keepalive';
  readonly walEnd: Lsn;
  readonly sendTimeMs: number;
  readonly replyRequested: boolean;
}

/** An XLogData ('w') envelope around one pgoutput message. */
export interface XLogData {
  readonly tag: 'xlog';
  readonly walStart: Lsn;
  readonly walEnd: Lsn;
  readonly sendTimeMs: number;
  /** The pgoutput message bytes (a subarray, not a copy). */
  readonly payload: Buffer;
}

/** What the replication connection yields, in stream order. */
export type ReplicationEvent = PgoutputMessage | KeepaliveMessage;
