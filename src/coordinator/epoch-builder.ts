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
 */
import type { Position } from '../core/position.ts';
import { hasUnchanged, UNCHANGED, type Cell, type Row } from '../core/row.ts';
import type { TableSchema } from '../core/table-schema.ts';
import type { Epoch, PartialUpdate, RowDelta, TableChanges } from '../core/epoch.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangeEvent } from '../core/change.ts';

type Entry =
  | { readonly kind: 'upsert'; readonly row: Row }
  | { readonly kind: 'delete'; readonly key: Row }
  | { readonly kind: 'partial'; readonly row: Cell[]; readonly fromKey: Row | null };

interface TableState {
  schema: TableSchema;
  truncate: boolean;
  readonly entries: Map<string, Entry>;
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
      case 'insert':
        this.insert(m.table, m.row);
        return 1;
      case 'update':
        this.update(m.table, m.row, m.old, m.oldIsFull);
        return 1;
      case 'delete':
        this.delete(m.table, m.old);
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
      else if (prev?.kind === 'upsert') cells = fillFrom(cells, prev.row);
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
      const deletes: Row[] = [];
      const upserts: Row[] = [];
      const partialUpdates: PartialUpdate[] = [];
      for (const e of st.entries.values()) {
        if (e.kind === 'upsert') upserts.push(e.row);
        else if (e.kind === 'delete') deletes.push(e.key);
        else partialUpdates.push({ row: e.row, fromKey: e.fromKey });
      }
      const rowDeltas: RowDelta[] = [];
      for (const d of st.deltas.values()) if (d.count !== 0) rowDeltas.push(d);
      if (st.truncate || deletes.length || upserts.length || partialUpdates.length || rowDeltas.length) {
        tables.push({ table: st.schema, truncate: st.truncate, deletes, upserts, partialUpdates, rowDeltas });
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

  private set(st: TableState, key: string, e: Entry): void {
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

  private keyOf(table: TableSchema, row: readonly Cell[]): string {
    const kc = table.keyColumns;
    if (kc.length === 1) return keyCell(table, row, kc[0]!);
    const parts: string[] = [];
    for (const i of kc) parts.push(keyCell(table, row, i));
    return JSON.stringify(parts);
  }
}

function keyCell(table: TableSchema, row: readonly Cell[], i: number): string {
  const c = row[i];
  if (typeof c !== 'string') {
    throw new TidemarkError('SOURCE_PROTOCOL', {
      detail: `key column ${table.columns[i]?.name} of ${table.schema}.${table.name} is ${c === null ? 'NULL' : 'missing (unchanged TOAST)'} in a change`,
    });
  }
  return c;
}

function fillFrom(row: readonly Cell[], from: readonly Cell[]): Cell[] {
  return row.map((c, i) => (c === UNCHANGED ? (from[i] ?? UNCHANGED) : c));
}

/** A table's columns changed mid-epoch: carry pending rows over by column name. */
function remapRows(st: TableState, next: TableSchema): void {
  const prevCols = st.schema.columns.map((c) => c.name);
  const idx = next.columns.map((c) => prevCols.indexOf(c.name));
  const map = <T extends Cell>(row: readonly T[]): T[] => idx.map((i) => (i < 0 ? null : row[i]) as T);
  for (const [k, e] of st.entries) {
    if (e.kind === 'upsert') st.entries.set(k, { kind: 'upsert', row: map(e.row) });
    else if (e.kind === 'delete') st.entries.set(k, { kind: 'delete', key: map(e.key) });
    else st.entries.set(k, { kind: 'partial', row: map(e.row), fromKey: e.fromKey && map(e.fromKey) });
  }
  for (const d of st.deltas.values()) d.row = map(d.row);
  st.schema = next;
}
