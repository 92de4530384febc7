/**
 * Collapses the committed source transactions of one epoch into their net effect per table and
 * key (sink/sink.ts `TableChanges`). The runtime feeds changes in commit order and calls
 * `commitTransaction` at each source commit; `cut` may only be called between transactions.
 *
 * Maintains the invariant that every key has at most one entry, which is the key's state at the
 * end of the epoch: an upsert of the full row, a delete, or a partial update (cells the source
 * did not log because their TOASTed value did not change). Unchanged cells are filled from the
 * epoch's own earlier row for the key whenever there is one, so a partial update survives only
 * for rows that exist downstream from before the epoch — a placeholder is never written.
 *
 * An epoch too large for memory leaves in chunks: `takeChunk` hands over the net effect so far
 * and starts the per-key state afresh, so each chunk is the net effect of its own run of changes
 * against the downstream state the earlier chunks left (a later update of a TOASTed row becomes
 * a partial update read from downstream, a later key move a `fromKey` of the row as written).
 * What names the epoch — its committed position and commit times — stays until `cut`.
 *
 * Changes that carry their cells packed (core/packed-cells.ts, the change log reader's) are kept
 * packed: the key is the only cell unpacked, and a sink that writes bytes gets the rows as they
 * were read (`TableChanges.upsertsPacked`). Only rows merged with others (unchanged TOAST cells,
 * keyless tables, a table whose columns changed mid-epoch) are unpacked here.
 */
import type { Position } from '../core/position.ts';
import { hasUnchanged, UNCHANGED, type Cell, type Row } from '../core/row.ts';
import {
  cellsOf,
  packedBytes,
  packedCellsAt,
  PackedCells,
  packedHasUnchanged,
  packedIntAt,
  textIntKey,
  unpackCells,
} from '../core/packed-cells.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { Epoch, PartialUpdate, RowDelta, TableChanges } from '../core/epoch.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangeEvent } from '../core/change.ts';

/** A row as it came: cells, or still packed. */
type Cells = Row | PackedCells;

type Entry =
  | { readonly kind: 'upsert'; readonly row: Cells }
  | { readonly kind: 'delete'; readonly key: Cells }
  | { readonly kind: 'partial'; readonly row: Cell[]; readonly fromKey: Row | null };

/**
 * A key: a single integer key column's value as a number (read from packed bytes without a
 * string), any other key as text (several columns: their JSON array).
 */
type Key = string | number;

interface TableState {
  schema: TableSchema;
  truncate: boolean;
  readonly entries: Map<Key, Entry>;
  readonly deltas: Map<string, { row: Row; count: number }>;
}

export class EpochBuilder {
  private tables = new Map<number, TableState>();
  private changeCount = 0;
  private byteCount = 0;
  /** Source row changes of the whole epoch, chunks included: its `sourceChanges`. */
  private epochChangeCount = 0;
  private committedPosition: Position | null = null;
  private lastCommitMs = 0;
  private firstCommitMs: number | null = null;
  private inTransaction = false;

  /** Source row changes since the last cut or chunk (before collapsing). */
  get changes(): number {
    return this.changeCount;
  }

  /** Approximate bytes of row text held (the collapsed state plus overwritten rows). */
  get bytes(): number {
    return this.byteCount;
  }

  /** Source commit time of the oldest transaction not yet cut, or null. */
  get oldestCommitMs(): number | null {
    return this.firstCommitMs;
  }

  /** True when at least one whole transaction (or heartbeat) is waiting to be cut. */
  get hasCommitted(): boolean {
    return this.committedPosition !== null;
  }

  get isInTransaction(): boolean {
    return this.inTransaction;
  }

  /** The position of the last committed transaction not yet cut (what `cut` would name). */
  get lastPosition(): Position | null {
    return this.committedPosition;
  }

  /**
   * Feeds one message of the commit-ordered stream (begin, row changes, truncate, commit;
   * relation messages are ignored). Returns 1 for a row change, 0 otherwise, so callers can count
   * rows without a second switch.
   */
  add(m: ChangeEvent): 0 | 1 {
    switch (m.tag) {
      case 'begin':
        this.beginTransaction();
        return 0;
      // A packed change is read through its packed cells only: a copy made by spreading it
      // (`{ ...m, table }`) keeps those but not the `row` and `old` that unpack them.
      case 'insert':
        if (m.packedRow !== undefined) this.insertPacked(m.table, m.packedRow);
        else this.insert(m.table, m.row);
        return 1;
      case 'update':
        if (m.packedRow !== undefined)
          this.updatePacked(m.table, m.packedRow, m.packedOld ?? null, m.oldIsFull);
        else this.update(m.table, m.row, m.old, m.oldIsFull);
        return 1;
      case 'delete':
        if (m.packedOld !== undefined) this.deletePacked(m.table, m.packedOld);
        else this.delete(m.table, m.old);
        return 1;
      case 'truncate':
        this.truncate(m.tables);
        return 0;
      case 'schema':
        return 0;
      case 'commit':
        this.commitTransaction(m.position, m.commitTimeMs);
        return 0;
    }
  }

  beginTransaction(): void {
    this.inTransaction = true;
  }

  insert(table: TableSchema, row: Row): void {
    const st = this.state(table);
    this.count(row);
    if (table.keyless) return this.delta(st, row, 1);
    this.set(st, this.keyOf(table, row), { kind: 'upsert', row });
  }

  delete(table: TableSchema, old: Row): void {
    const st = this.state(table);
    this.count(old);
    if (table.keyless) return this.delta(st, old, -1);
    this.set(st, this.keyOf(table, old), { kind: 'delete', key: old });
  }

  private insertPacked(table: TableSchema, row: PackedCells): void {
    if (table.keyless) return this.insert(table, unpackCells(row) as Row);
    const st = this.state(table);
    this.countPacked(row);
    this.set(st, this.packedKeyOf(table, row), { kind: 'upsert', row });
  }

  private deletePacked(table: TableSchema, old: PackedCells): void {
    if (table.keyless) return this.delete(table, unpackCells(old) as Row);
    const st = this.state(table);
    this.countPacked(old);
    this.set(st, this.packedKeyOf(table, old), { kind: 'delete', key: old });
  }

  /** Stays packed unless a cell is UNCHANGED (filled from an old row) or the table is keyless. */
  private updatePacked(
    table: TableSchema,
    row: PackedCells,
    old: PackedCells | null,
    oldIsFull: boolean,
  ): void {
    if (table.keyless || packedHasUnchanged(row)) {
      return this.update(table, unpackCells(row), old && (unpackCells(old) as Row), oldIsFull);
    }
    const st = this.state(table);
    this.countPacked(row);
    const kNew = this.packedKeyOf(table, row);
    const kOld = old ? this.packedKeyOf(table, old) : kNew;
    if (kOld !== kNew) this.set(st, kOld, { kind: 'delete', key: old! });
    this.set(st, kNew, { kind: 'upsert', row });
  }

  update(table: TableSchema, row: Cell[], old: Row | null, oldIsFull: boolean): void {
    const st = this.state(table);
    this.count(row);
    if (table.keyless) {
      if (!old || !oldIsFull) {
        throw new TidemarkError('SOURCE_PROTOCOL', {
          detail: `update of keyless table ${table.schema}.${table.name} without its old row (REPLICA IDENTITY must be FULL)`,
        });
      }
      this.delta(st, old, -1);
      this.delta(st, fillFrom(row, old) as Row, 1);
      return;
    }
    const kNew = this.keyOf(table, row);
    const kOld = old ? this.keyOf(table, old) : kNew;
    let cells = row;
    let fromKey: Row | null = null;
    if (hasUnchanged(cells)) {
      const prev = st.entries.get(kOld);
      if (old && oldIsFull) cells = fillFrom(cells, old);
      else if (prev?.kind === 'upsert') cells = fillFrom(cells, cellsOf(prev.row));
      else if (prev?.kind === 'partial') {
        cells = fillFrom(cells, prev.row);
        fromKey = prev.fromKey;
      }
    }
    if (kOld !== kNew) this.set(st, kOld, { kind: 'delete', key: old! });
    if (!hasUnchanged(cells)) {
      this.set(st, kNew, { kind: 'upsert', row: cells as Row });
    } else {
      this.set(st, kNew, {
        kind: 'partial',
        row: cells,
        fromKey: kOld !== kNew ? (fromKey ?? old!) : fromKey,
      });
    }
  }

  truncate(tables: readonly TableSchema[]): void {
    for (const t of tables) {
      const st = this.state(t);
      st.entries.clear();
      st.deltas.clear();
      st.truncate = true;
    }
    this.changeCount += tables.length;
    this.epochChangeCount += tables.length;
  }

  /** A source transaction (or heartbeat) committed at `position`. */
  commitTransaction(position: Position, commitTimeMs: number): void {
    this.inTransaction = false;
    this.committedPosition = position;
    this.lastCommitMs = commitTimeMs;
    this.firstCommitMs ??= commitTimeMs;
  }

  /**
   * Takes everything committed so far as epoch number `epoch` and starts empty. Only between
   * transactions; returns null when nothing was committed since the last cut.
   */
  cut(epoch: number): Epoch | null {
    if (this.inTransaction) throw new Error('EpochBuilder.cut inside a transaction');
    if (!this.committedPosition) return null;
    const out: Epoch = {
      checkpoint: { position: this.committedPosition.toString(), epoch },
      commitTimeMs: this.lastCommitMs,
      sourceChanges: this.epochChangeCount,
      tables: this.takeChunk(),
    };
    this.epochChangeCount = 0;
    this.committedPosition = null;
    this.firstCommitMs = null;
    return out;
  }

  /**
   * Takes the net effect collected since the last cut or chunk, and starts the per-key state
   * empty (`changes` and `bytes` back to 0). Callable at any time, also inside a transaction:
   * the position and commit times taken in so far are kept (`hasCommitted`, `oldestCommitMs`,
   * `position`), so the `cut` after the last chunk still names the epoch's end and its
   * `sourceChanges` counts every chunk. Apply the chunks in order, each after the previous one,
   * then the cut epoch's tables (sink.ts `EpochWriter`).
   */
  takeChunk(): TableChanges[] {
    const tables: TableChanges[] = [];
    for (const st of this.tables.values()) {
      const deletes: Cells[] = [];
      const upserts: Cells[] = [];
      const partialUpdates: PartialUpdate[] = [];
      let packed = false;
      for (const e of st.entries.values()) {
        if (e.kind === 'upsert') {
          upserts.push(e.row);
          packed ||= e.row instanceof PackedCells;
        } else if (e.kind === 'delete') {
          deletes.push(e.key);
          packed ||= e.key instanceof PackedCells;
        } else partialUpdates.push({ row: e.row, fromKey: e.fromKey });
      }
      const rowDeltas: RowDelta[] = [];
      for (const d of st.deltas.values()) if (d.count !== 0) rowDeltas.push(d);
      if (st.truncate || deletes.length || upserts.length || partialUpdates.length || rowDeltas.length) {
        tables.push(
          packed
            ? new PackedTableChanges(st.schema, st.truncate, deletes, upserts, partialUpdates, rowDeltas)
            : {
                table: st.schema,
                truncate: st.truncate,
                deletes: deletes as Row[],
                upserts: upserts as Row[],
                partialUpdates,
                rowDeltas,
              },
        );
      }
    }
    this.tables = new Map();
    this.changeCount = 0;
    this.byteCount = 0;
    return tables;
  }

  /** The position of the last transaction taken in, or null. */
  get position(): Position | null {
    return this.committedPosition;
  }

  private state(table: TableSchema): TableState {
    let st = this.tables.get(table.relationId);
    if (!st) {
      st = { schema: table, truncate: false, entries: new Map(), deltas: new Map() };
      this.tables.set(table.relationId, st);
    } else if (st.schema !== table) {
      remapRows(st, table);
    }
    return st;
  }

  private set(st: TableState, key: Key, e: Entry): void {
    st.entries.set(key, e);
  }

  private delta(st: TableState, row: Row, by: number): void {
    const k = JSON.stringify(row);
    const d = st.deltas.get(k);
    if (d) d.count += by;
    else st.deltas.set(k, { row, count: by });
  }

  /**
   * Counts a change and its approximate heap cost: V8 spends ~150 bytes on the row array, the
   * map entry and its key, and ~20 bytes of header per string besides the characters.
   */
  private count(row: readonly Cell[]): void {
    this.changeCount++;
    this.epochChangeCount++;
    let b = 160;
    for (const c of row) b += typeof c === 'string' ? c.length + 24 : 8;
    this.byteCount += b;
  }

  private countPacked(row: PackedCells): void {
    this.changeCount++;
    this.epochChangeCount++;
    this.byteCount += 160 + packedBytes(row);
  }

  /** The same key `keyOf` gives the unpacked row, unpacking only the key cells. */
  private packedKeyOf(table: TableSchema, row: PackedCells): Key {
    const kc = table.keyColumns;
    if (kc.length === 1) {
      const n = packedIntAt(row, kc[0]!);
      if (n !== null) return n;
    }
    const cells = packedCellsAt(row, kc.length === 1 || isAscending(kc) ? kc : [...kc].sort((a, b) => a - b));
    if (kc.length === 1) return keyCell(table, cells, 0, kc[0]!);
    const parts: string[] = [];
    if (isAscending(kc)) for (let j = 0; j < kc.length; j++) parts.push(keyCell(table, cells, j, kc[j]!));
    else {
      const sorted = [...kc].sort((a, b) => a - b);
      for (const i of kc) parts.push(keyCell(table, cells, sorted.indexOf(i), i));
    }
    return JSON.stringify(parts);
  }

  private keyOf(table: TableSchema, row: readonly Cell[]): Key {
    const kc = table.keyColumns;
    if (kc.length === 1) {
      const text = keyCell(table, row, kc[0]!, kc[0]!);
      return textIntKey(text) ?? text;
    }
    const parts: string[] = [];
    for (const i of kc) parts.push(keyCell(table, row, i, i));
    return JSON.stringify(parts);
  }
}

/** `cells[at]`, the key column `i` of a change; a NULL or UNCHANGED key is the source's fault. */
function keyCell(table: TableSchema, cells: readonly Cell[], at: number, i: number): string {
  const c = cells[at];
  if (typeof c !== 'string') {
    throw new TidemarkError('SOURCE_PROTOCOL', {
      detail: `key column ${table.columns[i]?.name} of ${table.schema}.${table.name} is ${c === null ? 'NULL' : 'missing (unchanged TOAST)'} in a change`,
    });
  }
  return c;
}

function isAscending(xs: readonly number[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i]! <= xs[i - 1]!) return false;
  return true;
}

function fillFrom(row: readonly Cell[], from: readonly Cell[]): Cell[] {
  return row.map((c, i) => (c === UNCHANGED ? (from[i] ?? UNCHANGED) : c));
}

/** A table's columns changed mid-epoch: carry pending rows over by column name. */
function remapRows(st: TableState, next: TableSchema): void {
  const prevCols = st.schema.columns.map((c) => c.name);
  const idx = next.columns.map((c) => prevCols.indexOf(c.name));
  const map = <T extends Cell>(from: readonly T[] | PackedCells): T[] => {
    const row = cellsOf(from) as T[];
    return idx.map((i) => (i < 0 ? null : row[i]) as T);
  };
  for (const [k, e] of st.entries) {
    if (e.kind === 'upsert') st.entries.set(k, { kind: 'upsert', row: map(e.row) });
    else if (e.kind === 'delete') st.entries.set(k, { kind: 'delete', key: map(e.key) });
    else st.entries.set(k, { kind: 'partial', row: map(e.row), fromKey: e.fromKey && map(e.fromKey) });
  }
  for (const d of st.deltas.values()) d.row = map(d.row);
  st.schema = next;
}

/**
 * A table's changes where some upserts or deletes are still packed: `upserts` and `deletes`
 * unpack on first use; `upsertsPacked` and `deletesPacked` give them as they are. Both are
 * getters, so a copy made by spreading (which rewrites rows) carries neither.
 */
class PackedTableChanges implements TableChanges {
  private unpackedDeletes: Row[] | undefined;
  private unpackedUpserts: Row[] | undefined;
  constructor(
    readonly table: TableSchema,
    readonly truncate: boolean,
    private readonly deleteCells: readonly Cells[],
    private readonly upsertCells: readonly Cells[],
    readonly partialUpdates: readonly PartialUpdate[],
    readonly rowDeltas: readonly RowDelta[],
  ) {}
  get deletes(): Row[] {
    return (this.unpackedDeletes ??= this.deleteCells.map((r) => cellsOf(r) as Row));
  }
  get upserts(): Row[] {
    return (this.unpackedUpserts ??= this.upsertCells.map((r) => cellsOf(r) as Row));
  }
  get deletesPacked(): readonly Cells[] {
    return this.deleteCells;
  }
  get upsertsPacked(): readonly Cells[] {
    return this.upsertCells;
  }
}
