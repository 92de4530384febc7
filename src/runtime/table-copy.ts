/**
 * One table being copied online into a changefeed (issue 12): the chunk reads, their
 * reconciliation with the stream (watermarks), and the shadow table they fill.
 *
 *   issue(read) ─► window opens: every change of the table the stream delivers from here is noted
 *   chunk read  ─► rows, low, high
 *   stream passes a commit ≥ high (between transactions) ─► finish():
 *        rows whose key the window saw changed by a full image or a delete are dropped (the stream
 *        already applied the newer row); a key the window saw only in partial updates (TOAST
 *        unchanged) keeps the chunk's cells for the columns the stream did not log; the rest are
 *        the backfill, applied at this point of the stream
 *   last chunk ─► the shadow is complete: swapped in (the runtime does it, in the epoch's transaction)
 *
 * Every change of the table goes to the shadow (`shadow`, a table of its own downstream) while the
 * copy runs, so the shadow is at the stream's position; readers never see it under the table's
 * name until the swap. Keyless tables are read whole in one chunk (through the source's cursor onto
 * a local spill, row-spill.ts, when the runtime gives a path), and their changes are held
 * back until it lands (held-changes.ts, on disk past a budget): then the chunk's rows, and after them the held changes of the transactions
 * the chunk's snapshot did not see (`ChunkRead.contains`), go to the shadow — exact, since rows
 * without a key cannot be reconciled one by one. A source that cannot tell which transactions a
 * chunk holds has the chunk read again when its window saw any change. The argument:
 * docs/design/2026-12-04-online-snapshots.md.
 */
import { createHash } from 'node:crypto';
import type { RowChange } from '../core/change.ts';
import type { Position } from '../core/position.ts';
import { hasUnchanged, UNCHANGED, type Cell, type Row } from '../core/row.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { ChunkRead, ChunkReader } from '../source/connector.ts';
import { RowSpill } from './row-spill.ts';
import { HeldChanges, type RowEdit } from './held-changes.ts';

/** What a copy has durably done: the part of it that commits with an epoch. */
export interface CopyProgress {
  /** The table as copied (its shape when the copy started). */
  readonly table: TableSchema;
  /** The last key copied (a whole row; its key cells matter), null before the first chunk. */
  readonly lastKey: Row | null;
  readonly rows: number;
  readonly chunks: number;
  /** `copying`: chunks go on after `lastKey`; `swapped`: the table replaced its shadow. */
  readonly phase: 'copying' | 'swapped';
  /**
   * The shadow's name downstream. Absent in progress written before shadows were named for their
   * changefeed: such a copy starts over (its shadow is not where the runtime looks).
   */
  readonly shadow?: string;
}

type Touched = { readonly kind: 'full' } | { readonly kind: 'partial'; readonly cells: Cell[] };

interface Window {
  readonly touched: Map<string, Touched>;
  /** A keyless table's changes in the window, with their transaction (`BeginEvent.txn`). */
  readonly held: HeldChanges;
  /** Set when the chunk cannot be reconciled and must be read again (why). */
  reread: string | null;
}

export interface FinishedChunk {
  /** Rows to apply to the shadow now (a keyless table's read back from its spill, once). */
  readonly rows: Iterable<Row>;
  /** How many `rows` holds. */
  readonly rowCount: number;
  /** Changes to apply to the shadow after `rows` (a keyless table's, held back meanwhile; once). */
  readonly changes: Iterable<RowChange>;
  /** The shadow holds the whole table: swap it in. */
  readonly complete: boolean;
  /** The chunk was thrown away and will be read again (why), nothing to apply. */
  readonly reread: string | null;
  /** Changes held while the table was read went to disk (how many were held). */
  readonly held: { readonly count: number; readonly onDisk: boolean };
  /**
   * Deletes what `rows` and `changes` would read that was not read (their files). Call when done
   * with them, also when applying them failed half way: an iteration never started holds its file.
   */
  release(): void;
}

/** A finished chunk with nothing to apply. */
function nothing(complete: boolean, reread: string | null): FinishedChunk {
  return {
    rows: [],
    rowCount: 0,
    changes: [],
    complete,
    reread,
    held: { count: 0, onDisk: false },
    release: () => {},
  };
}

/**
 * The shadow of `table` for changefeed `owner` downstream: short (it fits a 63-byte limit), by
 * id, and the owner's own — changefeeds from two source databases share a sink schema and table
 * ids (each database numbers its tables from 16384), and one must never fill or empty another's.
 */
export function shadowOf(table: TableSchema, owner: string): TableSchema {
  // A negative id: the shadow is a table of its own in the epoch builder and the sinks' caches.
  return { ...table, name: shadowName(table.relationId, owner), relationId: -table.relationId };
}

/** The name of table `relationId`'s shadow for changefeed `owner` (in the table's schema). */
export function shadowName(relationId: number, owner: string): string {
  return `_tidemark_copy_${createHash('sha256').update(owner).digest('hex').slice(0, 8)}_${relationId}`;
}

/** Where a keyless table's read and the changes held meanwhile go (row-spill.ts, held-changes.ts). */
export interface CopySpill {
  readonly rowsPath: string;
  readonly heldPath: string;
  /** Bytes of held changes kept in memory before they spill. */
  readonly heldMemoryBytes: number;
}

export class TableCopy {
  readonly shadow: TableSchema;
  private window: Window | null = null;
  private pending: Promise<ChunkRead> | null = null;
  private result: ChunkRead | null = null;
  private failure: unknown = null;
  /** A read found the table moved: no read until the stream passes this position. */
  private waitingUntil: Position | null = null;
  /** Set by that wait, cleared by the next chunk that reads: a second failure right after fails. */
  private waitedForChange = false;
  /** A TRUNCATE reached the shadow: the stream alone holds the table from there. */
  private truncated = false;
  /** Chunks read from the source by this instance (re-reads included): tests count them. */
  reads = 0;
  /** Set when a result or failure arrives (the runtime wakes its stream loop). */
  onSettled: (() => void) | null = null;
  /** A keyless table's rows of the read in flight, on disk (row-spill.ts). */
  private spill: RowSpill | null = null;
  private state: CopyProgress;
  private dirty = true;

  constructor(
    private readonly reader: ChunkReader,
    progress: CopyProgress,
    readonly estimatedRows: number | null,
    /** The changefeed copying (its shadow's name is its own). */
    owner: string,
    /** Where a keyless table's read and the changes held meanwhile go; null: memory. */
    private readonly spillTo: CopySpill | null = null,
  ) {
    this.shadow = shadowOf(progress.table, owner);
    this.state = { ...progress, shadow: this.shadow.name };
  }

  get table(): TableSchema {
    return this.state.table;
  }

  get progress(): CopyProgress {
    return this.state;
  }

  /** True once since the last call when the progress changed (it then goes down with the next epoch). */
  takeDirty(): boolean {
    const d = this.dirty;
    this.dirty = false;
    return d;
  }

  get reading(): boolean {
    return this.pending !== null;
  }

  /**
   * Starts the next chunk read; the window opens now. Call between transactions, after every
   * change the stream delivered so far was observed.
   */
  issue(chunkRows: number): void {
    if (this.pending || this.state.phase !== 'copying' || this.truncated) return;
    this.closeWindow();
    const held = new HeldChanges(this.table, {
      spillPath: this.spillTo?.heldPath ?? null,
      memoryBytes: this.spillTo?.heldMemoryBytes ?? Infinity,
    });
    this.window = { touched: new Map(), held, reread: null };
    this.result = null;
    this.reads++;
    const after = this.table.keyless ? null : this.state.lastKey;
    this.spill?.close();
    this.spill = this.table.keyless && this.spillTo !== null ? new RowSpill(this.spillTo.rowsPath) : null;
    const spill = this.spill;
    const p = spill
      ? this.reader.read(null, chunkRows, (rows) => spill.append(rows))
      : this.reader.read(after, chunkRows);
    this.pending = p;
    p.then(
      (r) => {
        if (this.pending !== p) return;
        this.result = r;
        this.onSettled?.();
      },
      (err: unknown) => {
        if (this.pending !== p) return;
        this.failure = err;
        this.onSettled?.();
      },
    );
  }

  /**
   * A change of the table from the stream, of the transaction `txn` (its begin's, if the source
   * gives one): noted in the open window; returns it aimed at the shadow, or null when it must
   * not be applied now (a keyless table's, before its copy lands: held).
   */
  observe(change: RowChange, txn?: number): RowChange | null {
    const t = this.table;
    const w = this.window;
    if (change.tag === 'truncate') {
      // Empty at this point: what follows in the stream is the whole table, the copy is over.
      this.truncated = true;
      this.abandonRead();
      return {
        tag: 'truncate',
        tables: change.tables.map((x) => (x.relationId === t.relationId ? this.shadow : x)),
      };
    }
    if (change.tag === 'schema') return change;
    // Emptied by a TRUNCATE: from there the stream holds the whole table.
    if (this.truncated) return { ...change, table: this.shadow };
    if (t.keyless) {
      if (w && txn !== undefined) w.held.push(change, txn);
      else if (w) w.reread = 'the table changed while it was read';
      return null;
    }
    if (w) this.note(w, change);
    else if (
      change.tag === 'update' &&
      change.old &&
      keyText(t, change.old) !== keyText(t, change.row) &&
      hasUnchanged(change.row)
    ) {
      // A key moved with TOAST cells not logged, outside any window: the shadow may lack the old
      // row the sink would copy them from, and its new key may lie before the copy's front.
      this.restart('a key moved with unlogged TOAST values');
    }
    return { ...change, table: this.shadow };
  }

  private note(w: Window, change: RowEdit): void {
    const t = this.table;
    switch (change.tag) {
      case 'insert':
        w.touched.set(keyText(t, change.row), { kind: 'full' });
        return;
      case 'delete':
        w.touched.set(keyText(t, change.old), { kind: 'full' });
        return;
      case 'update': {
        const k = keyText(t, change.row);
        const moved = change.old !== null && keyText(t, change.old) !== k;
        if (moved) w.touched.set(keyText(t, change.old!), { kind: 'full' });
        if (!hasUnchanged(change.row)) {
          w.touched.set(k, { kind: 'full' });
          return;
        }
        if (moved) {
          w.reread = 'a key moved with unlogged TOAST values';
          this.restart('a key moved with unlogged TOAST values');
          return;
        }
        const prev = w.touched.get(k);
        if (prev?.kind === 'full') return; // the shadow holds the row the stream wrote; this applies on it
        const cells = prev
          ? prev.cells.map((c, i) => (change.row[i] === UNCHANGED ? c : change.row[i]!))
          : [...change.row];
        w.touched.set(k, { kind: 'partial', cells });
      }
    }
  }

  /**
   * The chunk read failed because the table, its schema or a column is no longer under its
   * described name (SOURCE_SNAPSHOT_SCHEMA_MOVED): no read until the stream passed `until` (the
   * source's end at the failure), whose schema barrier restarts the copy in the new shape. False
   * when the read after such a wait failed the same way (the caller fails then).
   */
  waitForChange(until: Position): boolean {
    if (this.waitedForChange) return false;
    this.waitedForChange = true;
    this.waitingUntil = until;
    this.pending = null;
    this.result = null;
    this.closeWindow();
    this.dropSpill();
    return true;
  }

  /** True when the chunk read has arrived and the stream has passed its high watermark. */
  ready(lastCommit: Position | null): boolean {
    if (this.waitingUntil !== null) return lastCommit !== null && lastCommit.compare(this.waitingUntil) >= 0;
    if (this.failure !== null) return true;
    if (this.truncated) return this.state.phase === 'copying';
    const r = this.result;
    return r !== null && lastCommit !== null && lastCommit.compare(r.high) >= 0;
  }

  /**
   * The chunk reconciled with the window (call when `ready`, between transactions). Throws the
   * read's error.
   */
  finish(): FinishedChunk {
    if (this.waitingUntil !== null) {
      this.waitingUntil = null;
      return nothing(false, 'the table changed while it was read');
    }
    if (this.failure !== null) {
      const f = this.failure;
      this.failure = null;
      this.pending = null;
      this.dropSpill();
      throw f;
    }
    if (this.truncated) {
      this.abandonRead();
      return nothing(true, null);
    }
    const r = this.result!;
    const w = this.window!;
    this.pending = null;
    this.result = null;
    this.window = null;
    if (w.held.count > 0 && !r.contains) w.reread = 'the table changed while it was read';
    const spill = this.spill;
    this.spill = null;
    if (w.reread !== null) {
      spill?.close();
      w.held.close();
      return nothing(false, w.reread);
    }
    this.waitedForChange = false;
    const seen = r.contains;
    const changes = seen ? this.aimed(w.held.take((txn) => !seen(txn))) : [];
    const t = this.table;
    let rows: Iterable<Row>;
    let rowCount: number;
    if (spill) {
      // A reader that returns the rows instead of handing them over: they go to the spill too.
      try {
        if (r.rows.length > 0) spill.append(r.rows);
      } catch (err) {
        spill.close();
        w.held.close();
        throw err;
      }
      rows = spill.rows();
      rowCount = spill.count;
    } else if (t.keyless) {
      rows = r.rows;
      rowCount = r.rows.length;
    } else {
      const kept: Row[] = [];
      for (const row of r.rows) {
        const seen = w.touched.get(keyText(t, row));
        if (!seen) kept.push(row);
        else if (seen.kind === 'partial')
          kept.push(row.map((c, i) => (seen.cells[i] === UNCHANGED ? c : (seen.cells[i] as string | null))));
      }
      rows = kept;
      rowCount = kept.length;
    }
    this.state = {
      ...this.state,
      lastKey: r.lastKey ?? this.state.lastKey,
      rows: this.state.rows + rowCount,
      chunks: this.state.chunks + 1,
    };
    this.dirty = true;
    const held = { count: w.held.count, onDisk: !w.held.inMemory };
    const release = () => {
      w.held.close();
      spill?.close();
    };
    return { rows, rowCount, changes, complete: r.done, reread: null, held, release };
  }

  /** The swap went into the epoch being built. */
  swapped(): void {
    this.state = { ...this.state, phase: 'swapped' };
    this.dirty = true;
  }

  async close(): Promise<void> {
    this.abandonRead();
    await this.reader.close();
  }

  private restart(why: string): void {
    void why;
    this.state = { ...this.state, lastKey: null };
    this.dirty = true;
  }

  private abandonRead(): void {
    this.pending = null;
    this.result = null;
    this.closeWindow();
    this.dropSpill();
  }

  private closeWindow(): void {
    this.window?.held.close();
    this.window = null;
  }

  private dropSpill(): void {
    this.spill?.close();
    this.spill = null;
  }

  /** Held changes, aimed at the shadow. */
  private *aimed(changes: Iterable<RowEdit>): Generator<RowChange> {
    for (const c of changes) yield { ...c, table: this.shadow };
  }
}

/** A row's key as a map key (the key cells' text; any NULL or unlogged cell kept distinct). */
function keyText(t: TableSchema, row: readonly Cell[]): string {
  const parts = t.keyColumns.map((i) => {
    const c = row[i];
    return c === UNCHANGED ? '\u0000u' : c === null || c === undefined ? '\u0000n' : c;
  });
  return parts.length === 1 ? parts[0]! : JSON.stringify(parts);
}
