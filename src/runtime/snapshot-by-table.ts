/**
 * A new changefeed's initial snapshot committed in parts (issue 12, "resumable"): one table per
 * sink transaction, and a large table a chunk of its rows per transaction, into the shadow of an
 * online copy in progress at the snapshot's position, swapped in once whole. Every commit is an
 * epoch at the snapshot's position P (epochs at.epoch, at.epoch + 1, …) and carries the copy
 * progress that tells a restart where to go on:
 *
 *   first commit      every later table `copying` from its first key
 *   a small table     [t]  written whole (`writeSnapshot`), `swapped`
 *   a large table     [shadow] rows up to key K1 ─ `copying` after K1 ─► [shadow] (append) up to K2 ─ …
 *                     ─► replaceTable(t, shadow) in an epoch of its own, `swapped`
 *
 * After a crash the committed tables are kept and the others are copied online (`table-copy.ts`)
 * from their committed progress: a large table goes on after the last key that committed, the
 * stream from P applied to its shadow. Why that is exact: docs/design/2026-12-04-online-snapshots.md,
 * "Resuming an interrupted initial snapshot".
 */
import type { Checkpoint, SnapshotRows } from '../core/epoch.ts';
import { snapshotRowCount } from '../core/epoch.ts';
import type { Row } from '../core/row.ts';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import type { Sink } from '../sink/sink.ts';
import type { KeyOrderedRows, SourceSnapshot } from '../source/connector.ts';
import type { CopyProgressStore } from './copy-progress.ts';
import type { Logger } from './logger.ts';
import { shadowOf, type CopyProgress } from './table-copy.ts';

export interface SnapshotByTable {
  readonly sink: Sink;
  readonly tables: readonly TableSchema[];
  readonly snapshot: Pick<SourceSnapshot, 'rowsOf' | 'rowsInKeyOrder'>;
  /** The snapshot's position and its first epoch. */
  readonly at: Checkpoint;
  readonly copyStore: CopyProgressStore;
  /** Rows per committed chunk of a large table (`snapshot.chunkRows`). */
  readonly chunkRows: number;
  /**
   * A first chunk larger than this decides for the shadow (it is held in memory until decided):
   * a share of the memory quota.
   */
  readonly firstChunkBytes: number;
  /** Counts the rows as they pass (status, rate); yields the chunks as they are. */
  readonly counted: <C extends SnapshotRows>(rows: AsyncIterable<C>) => AsyncIterable<C>;
  readonly log: Logger;
  /** The changefeed (shadows are named for it). */
  readonly owner: string;
}

/** Writes the snapshot; returns the last epoch committed. */
export async function snapshotByTable(o: SnapshotByTable): Promise<number> {
  const { sink, tables, copyStore, log } = o;
  const position = o.at.position;
  let epoch = o.at.epoch;
  let first = true;
  /** Progress carried by the epoch about to commit; the first also holds every later table's start. */
  const save = (i: number, progress: CopyProgress[]) => {
    copyStore.save(epoch, first ? [...progress, ...tables.slice(i + 1).map(fresh)] : progress);
    first = false;
  };
  /** `t` in one transaction, marked `swapped` before it commits. */
  const whole = async (i: number, t: TableSchema, chunks: AsyncIterable<SnapshotRows>) => {
    let rows = 0;
    const marked = (async function* () {
      for await (const chunk of chunks) {
        rows += snapshotRowCount(chunk);
        yield chunk;
      }
      save(i, [{ ...fresh(t), rows, phase: 'swapped' }]);
    })();
    await sink.writeSnapshot([t], marked, { position, epoch });
    log.info('snapshot table committed', { table: qualifiedName(t), rows, epoch });
    epoch++;
  };

  for (const [i, t] of tables.entries()) {
    if (t.keyless || t.keyColumns.length === 0 || o.snapshot.rowsInKeyOrder === undefined) {
      await whole(i, t, o.counted(o.snapshot.rowsOf!([t])));
      continue;
    }
    const it = o.counted(o.snapshot.rowsInKeyOrder(t))[Symbol.asyncIterator]();
    try {
      // The first chunk is held until the table is known to be larger: a table that ends inside
      // it is written whole, as any small table.
      const held: KeyOrderedRows[] = [];
      let rows = 0;
      let bytes = 0;
      let next = await it.next();
      while (!next.done && rows < o.chunkRows && bytes < o.firstChunkBytes) {
        held.push(next.value);
        rows += snapshotRowCount(next.value);
        bytes += next.value.copyText?.bytes.length ?? 0;
        next = await it.next();
      }
      if (next.done) {
        await whole(i, t, fromArray(held));
        continue;
      }
      held.push(next.value);
      await inChunks(i, t, async () => {
        const h = held.shift();
        return h !== undefined ? { done: false, value: h } : it.next();
      });
    } finally {
      await it.return?.(undefined);
    }
  }
  for (const t of tables) copyStore.forget(t.relationId);
  return epoch - 1;

  /** A large table: its shadow filled a chunk per transaction, then swapped in. */
  async function inChunks(
    i: number,
    t: TableSchema,
    pull: () => Promise<IteratorResult<KeyOrderedRows>>,
  ): Promise<void> {
    const shadow = shadowOf(t, o.owner);
    let progress: CopyProgress = { ...fresh(t), shadow: shadow.name };
    let ahead = await pull();
    while (!ahead.done) {
      let rows = 0;
      let lastKey: Row | null = null;
      const chunk = (async function* () {
        while (!ahead.done) {
          const c = ahead.value;
          rows += snapshotRowCount(c);
          lastKey = c.lastKey;
          yield as(shadow, c);
          ahead = await pull();
          if (rows >= o.chunkRows) break;
        }
        progress = { ...progress, lastKey, rows: progress.rows + rows, chunks: progress.chunks + 1 };
        save(i, [progress]);
      })();
      await sink.writeSnapshot([shadow], chunk, { position, epoch }, { append: progress.chunks > 0 });
      log.info('snapshot chunk committed', {
        table: qualifiedName(t),
        rows: progress.rows,
        chunks: progress.chunks,
        epoch,
      });
      epoch++;
    }
    const w = await sink.beginEpoch();
    try {
      await w.replaceTable(t, shadow);
      save(i, [{ ...progress, phase: 'swapped' }]);
      await w.commit({
        checkpoint: { position, epoch },
        commitTimeMs: Date.now(),
        sourceChanges: 0,
        tables: [],
      });
    } catch (err) {
      await w.abort().catch(() => {});
      throw err;
    }
    log.info('snapshot table committed', {
      table: qualifiedName(t),
      rows: progress.rows,
      chunks: progress.chunks,
      epoch,
    });
    epoch++;
  }
}

function fresh(t: TableSchema): CopyProgress {
  return { table: t, lastKey: null, rows: 0, chunks: 0, phase: 'copying' };
}

/** `c`'s rows as rows of `table`, without decoding them (a spread would: `rows` is a getter). */
function as(table: TableSchema, c: SnapshotRows): SnapshotRows {
  return {
    table,
    get rows() {
      return c.rows;
    },
    ...(c.copyText ? { copyText: c.copyText } : {}),
  };
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}
