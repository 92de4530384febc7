/**
 * A new changefeed whose target tables already hold rows (a restore, an earlier run), decided by
 * `onNonEmptyTarget` before its initial snapshot starts:
 *
 *   fail       SINK_TARGET_NOT_EMPTY naming the tables and the option, before anything is read
 *   truncate   the sink's snapshot as always: every table emptied and refilled in one transaction
 *   reconcile  the snapshot goes through one chunked epoch transaction instead (`beginEpoch`):
 *              for a non-empty table only rows that differ from the stored ones (canonical text,
 *              matched by key) are upserted and stored rows whose key the snapshot lacks are
 *              deleted; the other tables are written in full; the checkpoint commits with it
 *
 * Reconcile compares each batch of the snapshot with the stored rows of the same keys (read in
 * one snapshot of the downstream taken before the epoch began), and keeps the canonical key of
 * every snapshot row of a reconciled table to find the stored rows to delete at the end: memory
 * grows with those tables' row counts (about 100 bytes a row). A keyless table cannot be matched
 * row by row: it is truncated and refilled inside the same transaction.
 */
import type { Checkpoint, SnapshotRows, TableChanges } from '../core/epoch.ts';
import type { Row } from '../core/row.ts';
import { WHOLE_TABLE } from '../core/table-read.ts';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import type { Sink } from '../sink/sink.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { TableCanon } from './table-digest.ts';

export type NonEmptyTargetPolicy = 'reconcile' | 'truncate' | 'fail';

export interface NonEmptyTargets {
  readonly policy: NonEmptyTargetPolicy;
  /** The target tables that hold rows now. */
  readonly tables: readonly TableSchema[];
}

/** What a reconciling snapshot did, per kind of row. */
export interface ReconcileCounts {
  /** Snapshot rows written: missing downstream or stored with other values (non-empty tables). */
  rewritten: number;
  /** Stored rows whose key the snapshot does not have, deleted. */
  deleted: number;
  /** Snapshot rows already stored exactly, left untouched. */
  unchanged: number;
  /** Rows of the tables that were empty (or keyless and refilled), written in full. */
  copied: number;
}

const CHUNK_ROWS = 5000;

/**
 * Finds the target tables that already hold rows, and refuses them when the policy is `fail`.
 * Call before the initial snapshot of a new changefeed (no checkpoint), never for a resumed one.
 * Stores that cannot be read back (files, NATS) report none.
 */
export async function checkNonEmptyTargets(
  sink: Sink,
  tables: readonly TableSchema[],
  policy: NonEmptyTargetPolicy,
): Promise<NonEmptyTargets> {
  if (!sink.openRead) return { policy, tables: [] };
  const read = await sink.openRead();
  const found: TableSchema[] = [];
  try {
    for (const t of tables) if (await read.hasRows(t)) found.push(t);
  } finally {
    await read.close();
  }
  if (policy === 'fail' && found.length > 0) {
    throw new TidemarkError('SINK_TARGET_NOT_EMPTY', {
      detail: `${found.map(qualifiedName).join(', ')} already hold${found.length === 1 ? 's' : ''} rows downstream and onNonEmptyTarget is fail`,
    });
  }
  return { policy, tables: found };
}

/**
 * Writes a new changefeed's initial snapshot at `at`: `sink.writeSnapshot` unless some target
 * table holds rows and the policy is `reconcile` (see the module comment). Returns the counts of a
 * reconciling write, null otherwise.
 */
export async function writeInitialSnapshot(o: {
  sink: Sink;
  tables: readonly TableSchema[];
  rows: AsyncIterable<SnapshotRows>;
  at: Checkpoint;
  targets: NonEmptyTargets;
}): Promise<ReconcileCounts | null> {
  if (o.targets.policy !== 'reconcile' || o.targets.tables.length === 0 || !o.sink.openRead) {
    await o.sink.writeSnapshot(o.tables, o.rows, o.at);
    return null;
  }
  return reconcileSnapshot(o.sink, o.rows, o.at, o.targets.tables);
}

interface Pending {
  readonly table: TableSchema;
  truncate: boolean;
  upserts: Row[];
  deletes: Row[];
  readonly deltas: Map<string, { row: Row; count: number }>;
}

async function reconcileSnapshot(
  sink: Sink,
  rows: AsyncIterable<SnapshotRows>,
  at: Checkpoint,
  nonEmpty: readonly TableSchema[],
): Promise<ReconcileCounts> {
  const counts: ReconcileCounts = { rewritten: 0, deleted: 0, unchanged: 0, copied: 0 };
  const reconciled = new Map<number, { canon: TableCanon; seen: Set<string> }>();
  const pending = new Map<number, Pending>();
  let pendingRows = 0;
  const slot = (t: TableSchema): Pending => {
    let p = pending.get(t.relationId);
    if (!p)
      pending.set(
        t.relationId,
        (p = { table: t, truncate: false, upserts: [], deletes: [], deltas: new Map() }),
      );
    return p;
  };
  for (const t of nonEmpty) {
    if (t.keyless) slot(t).truncate = true;
    else reconciled.set(t.relationId, { canon: new TableCanon(t), seen: new Set() });
  }
  // The stored rows as they were before this transaction: its own writes do not move them.
  const read = await sink.openRead!();
  const writer = await sink.beginEpoch();
  const flush = async () => {
    const tables: TableChanges[] = [...pending.values()].map((p) => ({
      table: p.table,
      truncate: p.truncate,
      upserts: p.upserts,
      deletes: p.deletes,
      partialUpdates: [],
      rowDeltas: [...p.deltas.values()],
    }));
    pending.clear();
    pendingRows = 0;
    if (tables.length > 0) await writer.applyChunk(tables);
  };
  try {
    await flush(); // keyless non-empty tables are emptied first
    for await (const chunk of rows) {
      const r = reconciled.get(chunk.table.relationId);
      const p = slot(chunk.table);
      if (r) {
        const stored = new Map<string, string>();
        for (const s of await read.readRowsByKeys(
          chunk.table,
          chunk.rows.map((x) => r.canon.keyOf(x)),
        )) {
          const c = r.canon.row(s);
          stored.set(c.key, c.encoded);
        }
        for (const row of chunk.rows) {
          const c = r.canon.row(row);
          r.seen.add(c.key);
          if (stored.get(c.key) === c.encoded) {
            counts.unchanged++;
          } else {
            p.upserts.push(row);
            counts.rewritten++;
          }
        }
      } else if (chunk.table.keyless) {
        for (const row of chunk.rows) {
          const k = JSON.stringify(row);
          const d = p.deltas.get(k);
          if (d) d.count++;
          else p.deltas.set(k, { row, count: 1 });
        }
        counts.copied += chunk.rows.length;
      } else {
        p.upserts.push(...chunk.rows);
        counts.copied += chunk.rows.length;
      }
      pendingRows += chunk.rows.length;
      if (pendingRows >= CHUNK_ROWS) await flush();
    }
    for (const { canon, seen } of reconciled.values()) {
      const t = canon.table;
      for await (const batch of read.readRows(t, WHOLE_TABLE)) {
        for (const s of batch) {
          if (seen.has(canon.row(s).key)) continue;
          const del: Row = t.columns.map(() => null);
          t.keyColumns.forEach((i) => (del[i] = s[i] ?? null));
          slot(t).deletes.push(del);
          counts.deleted++;
          if (++pendingRows >= CHUNK_ROWS) await flush();
        }
      }
    }
    await flush();
    await writer.commit({ checkpoint: at, commitTimeMs: Date.now(), sourceChanges: 0, tables: [] });
    return counts;
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    await read.close();
  }
}
