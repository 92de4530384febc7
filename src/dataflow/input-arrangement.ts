/**
 * The current rows of one base table, kept in the state store so that collapsed changes can be
 * turned into weighted changes (an "upsert arrangement", as Materialize keeps for upsert sources):
 *
 *   keyed table    <ns>|key cell, or JSON(key cells) → JSON(text row)   upsert = −old +new, delete = −old
 *   keyless table  <ns>|JSON(text row)   → multiplicity      rowDeltas = ±n copies
 *
 * Cells stay in text form in state (cheap to store, exact); they are decoded to Values only for
 * the changes handed to the dataflow, and only the columns some view reads (rows in the dataflow
 * carry only those: the views are planned over tables pruned to them). Work per epoch is
 * proportional to the changes, except a TRUNCATE, which retracts every stored row.
 */
import type { Cell, Row as TextRow } from '../core/row.ts';
import { UNCHANGED } from '../core/row.ts';
import { decodeCell, typeHintFor } from '../decode/pg-values.ts';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import type { Value } from '../decode/value.ts';
import type { PartialUpdate, TableChanges } from '../core/epoch.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { Change } from './change.ts';
import { sameLayout } from './schema-record.ts';
import type { StateStore } from './state-store.ts';

/** Maps a row of another layout into the stored one (null for columns it lacks). */
type Adapter = <C extends Cell>(row: readonly C[]) => (C | null)[];

export class InputArrangement {
  private readonly oids: readonly number[];
  private readonly hints: readonly string[];
  private readonly keyColumns: readonly number[];
  /** Other layouts accepted for incoming rows (see `accept`). */
  private readonly accepted: TableSchema[] = [];
  private readonly adapters = new WeakMap<TableSchema, Adapter | null>();
  /** Indexes of the columns the rows handed on carry. */
  private readonly decoded: readonly number[];

  constructor(
    private readonly store: StateStore,
    /** The store namespace owned by this table, e.g. `t0`. */
    private readonly ns: string,
    /** The layout rows are stored and handed to the views in (the schema record's). */
    readonly table: TableSchema,
    /**
     * The columns the views read (by name), in table order: the rows handed on have only these
     * (the others are never decoded). Undefined: all of them.
     */
    read?: ReadonlySet<string>,
    /**
     * For a table's copy being made (view-maintainer `copyStarted`): a partial update of a row it
     * does not hold yet is skipped, as the sink skips it in the shadow table (the chunk that
     * holds the row brings it whole later).
     */
    private readonly lenient = false,
  ) {
    this.decoded = table.columns.flatMap((c, i) => (read === undefined || read.has(c.name) ? [i] : []));
    this.oids = table.columns.map((c) => c.typeOid);
    this.hints = table.columns.map((c) => typeHintFor(c, table.enums));
    this.keyColumns = table.keyless ? [] : table.keyColumns;
  }

  /**
   * Accepts rows in `layout` from now on, mapped into the stored layout by column name: a column
   * the stored layout lacks is left out, one `layout` lacks (or has with another type) reads as
   * NULL. Only for changes no view reads (schema-reconcile.ts decides); the key must map whole.
   */
  accept(layout: TableSchema): void {
    if (!sameLayout(layout, this.table) && !this.accepted.some((t) => sameLayout(t, layout)))
      this.accepted.push(layout);
  }

  /** Snapshot rows (inside an open store epoch) in `layout`: stored and returned as insertions. */
  load(layout: TableSchema, rows: readonly TextRow[], out: Change[]): void {
    const adapt = this.adapterFor(layout);
    for (const raw of rows) {
      const row = adapt === null ? raw : adapt(raw);
      if (this.keyColumns.length === 0) this.addKeyless(row, 1, out);
      else this.upsert(row, out);
    }
  }

  /**
   * One epoch's collapsed changes (inside an open store epoch), applied in the order sink.ts
   * prescribes; the matching weighted changes are appended to `out`. Returns true when the
   * changes it appended are consolidated (each key touched once, no truncate).
   */
  apply(incoming: TableChanges, out: Change[]): boolean {
    const changes = this.inStoredLayout(incoming);
    // Key-changing partial updates read the old row as it was when the epoch began.
    const moved: TextRow[] = [];
    for (const p of changes.partialUpdates) {
      if (p.fromKey === null) continue;
      const row = this.complete(p, p.fromKey);
      if (row !== null) moved.push(row);
    }
    if (changes.truncate) this.truncate(out);
    if (this.keyColumns.length === 0) {
      for (const d of changes.rowDeltas) this.addKeyless(d.row, d.count, out);
      return false;
    }
    const keys = new Set<string>();
    const touch = (key: string): string => {
      keys.add(key);
      return key;
    };
    for (const keyRow of changes.deletes) this.remove(touch(this.keyOf(keyRow)), out);
    for (const row of changes.upserts) this.upsert(row, out, touch);
    for (const row of moved) this.upsert(row, out, touch);
    for (const p of changes.partialUpdates) {
      const row = p.fromKey === null ? this.complete(p, p.row) : null;
      if (row !== null) this.upsert(row, out, touch);
    }
    const touched = changes.deletes.length + changes.upserts.length + changes.partialUpdates.length;
    return !changes.truncate && keys.size === touched;
  }

  private inStoredLayout(changes: TableChanges): TableChanges {
    const f = this.adapterFor(changes.table);
    if (f === null) return changes;
    return {
      ...changes,
      table: this.table,
      deletes: changes.deletes.map((r) => f(r)),
      upserts: changes.upserts.map((r) => f(r)),
      partialUpdates: changes.partialUpdates.map((p) => ({
        row: f(p.row),
        fromKey: p.fromKey === null ? null : f(p.fromKey),
      })),
      rowDeltas: changes.rowDeltas.map((d) => ({ row: f(d.row), count: d.count })),
    };
  }

  /** null: rows are in the stored layout already. */
  private adapterFor(layout: TableSchema): Adapter | null {
    if (layout === this.table) return null;
    const known = this.adapters.get(layout);
    if (known !== undefined) return known;
    let adapter: Adapter | null = null;
    if (!sameLayout(layout, this.table)) {
      if (!this.accepted.some((t) => sameLayout(t, layout))) {
        const names = (t: TableSchema) => t.columns.map((c) => `${c.name} ${c.typeName}`).join(', ');
        throw new TidemarkError('VIEW_SCHEMA_MISMATCH', {
          detail: `changes of ${qualifiedName(this.table)} arrive with columns (${names(layout)}) but the views' state holds (${names(this.table)}); the schema change was not announced to the views (ViewStage.schemaChanged)`,
        });
      }
      const from = this.table.columns.map((c) =>
        layout.columns.findIndex(
          (x) => x.name === c.name && x.typeName === c.typeName && x.typeOid === c.typeOid,
        ),
      );
      adapter = <C extends Cell>(row: readonly C[]): (C | null)[] => {
        const out = new Array<C | null>(from.length);
        for (let i = 0; i < from.length; i++) {
          const j = from[i] as number;
          out[i] = j < 0 ? null : (row[j] ?? null);
        }
        return out;
      };
    }
    this.adapters.set(layout, adapter);
    return adapter;
  }

  /**
   * A page of the stored rows (inside an open store epoch) as changes of weight `sign` × their
   * multiplicity, from the key after `after`; `last` is the page's last key (undefined: done).
   */
  page(
    sign: 1 | -1,
    after: string | undefined,
    limit: number,
  ): { changes: Change[]; last: string | undefined } {
    const entries = this.store.scanPrefix(this.ns, '', { limit, ...(after === undefined ? {} : { after }) });
    const changes: Change[] = entries.map(([key, value]) =>
      this.keyColumns.length === 0
        ? { row: this.decode(JSON.parse(key) as TextRow), weight: sign * Number(value) }
        : { row: this.decode(JSON.parse(value) as TextRow), weight: sign },
    );
    return { changes, last: entries.length === 0 ? undefined : entries[entries.length - 1]![0] };
  }

  /**
   * Moves every stored row through `convert` (from `from`'s layout into this arrangement's),
   * inside an open store epoch, via the scratch namespace `scratch`. Both arrangements share the
   * namespace; `from` is not used afterwards.
   */
  convertFrom(from: InputArrangement, convert: (row: TextRow) => TextRow, scratch: string): void {
    const PAGE = 1000;
    for (;;) {
      const entries = this.store.scanPrefix(from.ns, '', { limit: PAGE });
      if (entries.length === 0) break;
      for (const [key, value] of entries) {
        const keyless = from.keyColumns.length === 0;
        const row = convert(JSON.parse(keyless ? key : value) as TextRow);
        this.store.put(scratch, key, JSON.stringify([row, keyless ? Number(value) : 1]));
        this.store.delete(from.ns, key);
      }
    }
    for (;;) {
      const entries = this.store.scanPrefix(scratch, '', { limit: PAGE });
      if (entries.length === 0) break;
      for (const [key, value] of entries) {
        const [row, count] = JSON.parse(value) as [TextRow, number];
        if (this.keyColumns.length === 0) {
          const k = JSON.stringify(row);
          this.store.put(this.ns, k, String(Number(this.store.get(this.ns, k) ?? 0) + count));
        } else this.store.put(this.ns, this.keyOf(row), JSON.stringify(row));
        this.store.delete(scratch, key);
      }
    }
  }

  /**
   * One page of replacing this arrangement's rows by `copy`'s (a table's copy, complete), inside
   * an open store epoch; the weighted changes are appended to `out`. Phase `own` walks this
   * arrangement from the key after `after` and retracts what the copy lacks (a keyless table:
   * every row); phase `all` retracts every row (before the views take a new layout); phase `copy`
   * then moves the copy's rows in (an unchanged row is no change) and empties the copy. Returns
   * the page's last key; undefined when the phase is done.
   */
  replacePage(
    copy: InputArrangement,
    phase: 'own' | 'all' | 'copy',
    after: string | undefined,
    limit: number,
    out: Change[],
  ): string | undefined {
    const keyless = this.keyColumns.length === 0;
    const from = after === undefined ? {} : { after };
    if (phase !== 'copy') {
      const entries = this.store.scanPrefix(this.ns, '', { limit, ...from });
      for (const [key, value] of entries) {
        if (keyless) this.addKeyless(JSON.parse(key) as TextRow, -Number(value), out);
        else if (phase === 'all' || copy.store.get(copy.ns, key) === undefined) this.remove(key, out);
      }
      return entries.length === 0 ? undefined : entries[entries.length - 1]![0];
    }
    const adapt = this.adapterFor(copy.table);
    // From the last key (not the start): deletes stay in the epoch's batch until it spills.
    const entries = copy.store.scanPrefix(copy.ns, '', { limit, ...from });
    for (const [key, value] of entries) {
      const raw = JSON.parse(keyless ? key : value) as TextRow;
      const row = adapt === null ? raw : adapt(raw);
      if (keyless) this.addKeyless(row, Number(value), out);
      else this.upsert(row, out);
      copy.store.delete(copy.ns, key);
    }
    return entries.length === 0 ? undefined : entries[entries.length - 1]![0];
  }

  /** Deletes every stored row (inside an open store epoch), page by page, without changes. */
  clear(): void {
    let after: string | undefined;
    for (;;) {
      const entries = this.store.scanPrefix(this.ns, '', {
        limit: 1000,
        ...(after === undefined ? {} : { after }),
      });
      if (entries.length === 0) return;
      for (const [key] of entries) this.store.delete(this.ns, key);
      after = entries[entries.length - 1]![0];
    }
  }

  /** True when no row is stored. */
  get empty(): boolean {
    return this.store.scanPrefix(this.ns, '', { limit: 1 }).length === 0;
  }

  /** The row `p` completes (null: not held, for a lenient arrangement). */
  private complete(p: PartialUpdate, keySource: readonly Cell[]): TextRow | null {
    const stored = this.store.get(this.ns, this.keyOf(keySource));
    if (stored === undefined) {
      if (this.lenient) return null;
      throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
        detail: `partial update of ${qualifiedName(this.table)} names a row the views' state does not hold`,
      });
    }
    const old = JSON.parse(stored) as TextRow;
    return p.row.map((c, i) => (c === UNCHANGED ? (old[i] ?? null) : c));
  }

  private upsert(row: TextRow, out: Change[], touch?: (key: string) => string): void {
    const key = this.keyOf(row);
    touch?.(key);
    const stored = this.store.get(this.ns, key);
    const text = JSON.stringify(row);
    // An update that changes nothing (e.g. a replayed row) is no change for the views.
    if (stored === text) return;
    if (stored !== undefined) out.push({ row: this.decode(JSON.parse(stored) as TextRow), weight: -1 });
    this.store.put(this.ns, key, text);
    out.push({ row: this.decode(row), weight: 1 });
  }

  private remove(key: string, out: Change[]): void {
    const stored = this.store.get(this.ns, key);
    if (stored === undefined) return;
    out.push({ row: this.decode(JSON.parse(stored) as TextRow), weight: -1 });
    this.store.delete(this.ns, key);
  }

  private addKeyless(row: TextRow, count: number, out: Change[]): void {
    if (count === 0) return;
    const key = JSON.stringify(row);
    const before = Number(this.store.get(this.ns, key) ?? 0);
    const after = before + count;
    if (after < 0) {
      throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
        detail: `${qualifiedName(this.table)} would hold ${after} copies of a row`,
      });
    }
    if (after === 0) this.store.delete(this.ns, key);
    else this.store.put(this.ns, key, String(after));
    out.push({ row: this.decode(row), weight: count });
  }

  private truncate(out: Change[]): void {
    for (const [key, value] of this.store.scanPrefix(this.ns, '')) {
      if (this.keyColumns.length === 0) {
        out.push({ row: this.decode(JSON.parse(key) as TextRow), weight: -Number(value) });
      } else {
        out.push({ row: this.decode(JSON.parse(value) as TextRow), weight: -1 });
      }
      this.store.delete(this.ns, key);
    }
  }

  /** The state key of a row: its one key cell as is (text never holds NUL), or the cells as JSON. */
  private keyOf(row: readonly Cell[]): string {
    if (this.keyColumns.length === 1) {
      const c = row[this.keyColumns[0] as number];
      return c === undefined || c === null || c === UNCHANGED ? '\u0000' : c;
    }
    const cells: (string | null)[] = [];
    for (const i of this.keyColumns) {
      const c = row[i];
      cells.push(c === undefined || c === UNCHANGED ? null : c);
    }
    return JSON.stringify(cells);
  }

  private decode(row: TextRow): Value[] {
    const decoded = this.decoded;
    const out = new Array<Value>(decoded.length);
    for (let j = 0; j < decoded.length; j++) {
      const i = decoded[j] as number;
      out[j] = decodeCell(row[i] ?? null, this.oids[i] ?? 0, this.hints[i]);
    }
    return out;
  }
}
