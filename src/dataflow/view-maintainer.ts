/**
 * The bridge the changefeed runtime calls: text rows of base tables in, the views' changes out,
 * in the sink's shapes (sink.ts), with all state in one StateStore.
 *
 *   SnapshotRows ─► loadSnapshot ─┐                                   ┌─► finishSnapshot → SnapshotRows
 *                                 ├─► InputArrangement ─► Graph ─────►┤
 *   TableChanges ─► step(e) ──────┘   (per base table:    (views)     └─► TableChanges of e
 *                                      upserts → ±rows)
 *   commit(e) ─► store.commitEpoch(e) (undo of e kept)     rollbackLastEpoch() ─► state of e−1
 *
 * The runtime commits view state before the sink commits the epoch; after a crash the state is
 * at the sink's checkpoint epoch or one ahead, and then `rollbackLastEpoch()` puts it back.
 *
 * State namespaces: `t<i>` for the i-th input table (inputTables order), `copy<id>` for a copy of
 * input table <id> being made online (swapped in by `copySwapped`), `n<id>` for graph nodes,
 * `meta` for the schema record (schema-record.ts: the views and input layouts the state was built
 * with, written with the first epoch). A store is reopened only with the same views; input
 * layouts that changed are reconciled (schema-reconcile.ts): rows in a migrated layout are mapped
 * into the stored one, anything else is refused (VIEW_STATE_STALE: rebuild from a snapshot;
 * VIEW_SCHEMA_INCOMPATIBLE: the SQL no longer binds) — never decoded by position with a stale plan.
 */
import { describePlan } from '../sql/describe-plan.ts';
import type { Row as TextRow } from '../core/row.ts';
import { encodeText } from '../decode/pg-values.ts';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import type { Value } from '../decode/value.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { SnapshotRows, TableChanges } from '../core/epoch.ts';
import { schemaChangeTableId, type ColumnChange, type SchemaChange } from '../core/schema-change.ts';
import { buildViewGraph } from '../sql/build-graph.ts';
import { planView } from '../sql/planner.ts';
import { planDigest, type ViewPlan } from '../sql/plan.ts';
import { markConsolidated, type Change } from './change.ts';
import { GraphBuilder, type Graph, type NodeRef } from './graph.ts';
import { InputArrangement } from './input-arrangement.ts';
import { decodeCountedRow, OperatorState } from './operator.ts';
import { rowKey, valueToken } from './row-key.ts';
import { refusal, rowConverter } from './schema-rebuild.ts';
import { reconcileSchemas, type SchemaDecision } from './schema-reconcile.ts';
import {
  nodePrefix,
  readSchemaRecord,
  sameLayout,
  schemaRecord,
  writeSchemaRecord,
  type SchemaRecord,
  type ViewDefinition,
} from './schema-record.ts';
import type { StateStore } from './state-store.ts';

export type { ViewDefinition } from './schema-record.ts';

/** What a schema barrier did to the views' state (ViewMaintainer.barrier). */
export type BarrierResult =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'migrated'; readonly reason: string }
  | {
      readonly kind: 'rebuilt';
      readonly reason: string;
      /** Views whose table changed shape: dropped (`before`) and created (`after`) downstream. */
      readonly reshaped: readonly { readonly before: TableSchema; readonly after: TableSchema }[];
      /** The whole new contents of each view reading the table (truncating unless reshaped). */
      readonly rows: readonly TableChanges[];
    };

export interface ViewMaintainerOptions {
  readonly views: readonly ViewDefinition[];
  /** The base tables the views may read. */
  readonly catalog: readonly TableSchema[];
  /** Owned by the maintainer from now on: `close()` closes it. */
  readonly store: StateStore;
  /**
   * The stream resumes at the state's epoch and replays every schema change after it as a
   * barrier (the change hub): a stored state is read in the layouts its record holds, not
   * reconciled with the catalog's (today's) layouts.
   */
  readonly resume?: boolean;
}

/** Rows per SnapshotRows chunk handed out by finishSnapshot. */
const SNAPSHOT_CHUNK_ROWS = 1000;

interface ViewOutput {
  readonly name: string;
  readonly table: TableSchema;
  readonly oids: readonly number[];
  readonly key: readonly number[];
}

export class ViewMaintainer {
  /**
   * While a snapshot loads: each view's contents so far, kept in the store (namespace `s<i>`:
   * rowKey → count and row) so a view larger than memory spills with the epoch's writes.
   */
  private snapshot: Map<string, OperatorState> | null = null;

  private constructor(
    private readonly store: StateStore,
    private graph: Graph,
    private arrangements: ReadonlyMap<string, InputArrangement>,
    private outputs: readonly ViewOutput[],
    /**
     * Base tables the views read, in state-namespace order, in the layouts the state holds (the
     * schema record's; the catalog's for a fresh store). Replaced when a barrier rebuilds.
     */
    public inputTables: readonly TableSchema[],
    private record: SchemaRecord,
    private readonly options: ViewMaintainerOptions,
    /** The layout each input's changes arrive in now (undefined: the table is gone). */
    private currentLayouts: (TableSchema | undefined)[],
    /** Each view's plan in words (sql/describe-plan.ts), for the operator; replaced when a barrier rebuilds. */
    public planDescriptions: readonly { name: string; plan: string[] }[],
  ) {}

  /** One table per view as the sink creates it. */
  get viewTables(): readonly TableSchema[] {
    return this.outputs.map((o) => o.table);
  }

  /**
   * Plans every view (failing with VIEW_INVALID / VIEW_UNSUPPORTED), builds one dataflow graph
   * over `store` and returns the maintainer at the store's last committed epoch. A store with
   * committed state is read with the plans of its schema record: when the views changed, or the
   * catalog's layouts differ in what the views read, it fails with VIEW_STATE_STALE (the caller
   * rebuilds from a snapshot) or VIEW_SCHEMA_INCOMPATIBLE (a view no longer binds).
   */
  static async open(options: ViewMaintainerOptions): Promise<ViewMaintainer> {
    const store = options.store;
    const record = store.lastCommittedEpoch() === null ? null : readSchemaRecord(store);
    if (store.lastCommittedEpoch() !== null && record === null)
      throw stale('the view state was written before schema records were kept');
    let plans: ViewPlan[];
    let inputTables: TableSchema[];
    let current: (TableSchema | undefined)[];
    let decision: SchemaDecision = { kind: 'unchanged' };
    if (record === null) {
      plans = await planAll(options.views, lookupIn(options.catalog));
      inputTables = inputsOf(plans);
      current = inputTables;
    } else {
      const changed = viewChanges(record.views, options.views);
      if (changed !== null) throw stale(changed);
      plans = await planAll(options.views, lookupIn([...record.inputs, ...options.catalog]));
      inputTables = inputsOf(plans);
      if (options.resume === true) {
        const at = record.current ?? record.inputs;
        current = inputTables.map((t) => at.find((x) => x.relationId === t.relationId) ?? t);
      } else current = inputTables.map((t) => currentLayout(t, options.catalog));
      if (options.resume !== true)
        decision = await reconcileSchemas({
          views: options.views,
          storedPlans: plans,
          storedInputs: inputTables,
          current,
          planCurrent: (v) =>
            planView({ ...v, catalog: lookupIn([...defined(current), ...options.catalog]) }),
        });
      if (decision.kind === 'rebuild') throw stale(decision.reason);
      if (record.plans !== planDigest(plans))
        throw stale(
          'this version of Tidemark plans the views another way (join order, operators) than the one that built their state',
        );
    }
    const { graph, arrangements, outputs } = await buildGraph(
      store,
      options.views,
      plans,
      inputTables,
      record === null ? 'n' : nodePrefix(record),
    );
    inputTables.forEach((t, i) => {
      const now = current[i];
      if (now !== undefined) arrangements.get(qualifiedName(t))?.accept(now);
    });
    const vm = new ViewMaintainer(
      store,
      graph,
      arrangements,
      outputs,
      inputTables,
      record ?? schemaRecord(options.views, inputTables, planDigest(plans)),
      options,
      current,
      plans.map((p) => ({ name: p.name, plan: describePlan(p) })),
    );
    vm.schemaStatus = decision;
    for (const [rel, f] of Object.entries(record?.fills ?? {}))
      vm.fills.set(Number(rel), new Map(Object.entries(f)));
    return vm;
  }

  /** How the input layouts at open compared with the stored ones (migrated: with the reason). */
  schemaStatus: SchemaDecision = { kind: 'unchanged' };

  /**
   * A schema barrier: `table` is the layout changes of that table arrive in from now on. Returns
   * `unchanged` or `migrated` (changes in the new layout are accepted, mapped into the stored
   * one), or `rebuild` (the views' state must be rebuilt from a new snapshot; changes in the new
   * layout stay refused). Throws VIEW_SCHEMA_INCOMPATIBLE when a view no longer binds, naming
   * the view, the table and the change. May be called between `step` calls, also between the
   * chunks of one epoch; tables no view reads are `unchanged`.
   */
  async schemaChanged(table: TableSchema): Promise<SchemaDecision> {
    let i = this.inputTables.findIndex((t) => t.relationId === table.relationId);
    if (i < 0) i = this.inputTables.findIndex((t) => qualifiedName(t) === qualifiedName(table));
    if (i < 0) return { kind: 'unchanged' };
    const current = this.currentLayouts.map((t, j) => (j === i ? table : t));
    if (sameLayout(table, this.currentLayouts[i] ?? this.inputTables[i]!)) return { kind: 'unchanged' };
    const decision = await reconcileSchemas({
      views: this.options.views,
      storedPlans: await planAll(
        this.options.views,
        lookupIn([...this.inputTables, ...this.options.catalog]),
      ),
      storedInputs: this.inputTables,
      current,
      planCurrent: (v) =>
        planView({ ...v, catalog: lookupIn([...defined(current), ...this.options.catalog]) }),
    });
    if (decision.kind !== 'rebuild') {
      this.currentLayouts[i] = table;
      this.arrangements.get(qualifiedName(this.inputTables[i]!))?.accept(table);
    }
    return decision;
  }

  /**
   * A schema barrier of a table (issue 11: views are re-planned at that point). Precondition:
   * the epoch is open (`step` was called for it, with the changes before the barrier). Returns
   *
   *   - `unchanged` / `migrated`: no view reads what changed; changes in the new layout are
   *     mapped into the stored one and the epoch goes on;
   *   - `rebuilt`: every view bound again but one reads what changed (a retyped column, an added
   *     column under `SELECT *`, a key): the state was rebuilt from the input arrangements in the
   *     new layout, in this epoch; `reshaped` views changed their table (the sink drops and
   *     creates it), `rows` hold the whole new contents of every view that reads the table
   *     (truncating the old ones unless reshaped).
   *
   * Throws VIEW_SCHEMA_CHANGED (not retriable) when a view no longer binds or the table's rows
   * cannot be derived (unless `copyFollows`: a copy of the table will replace them), naming the
   * view, the column and the fix. On a throw the epoch's pending
   * state is the caller's to abort.
   */
  async barrier(change: SchemaChange, where: string, copyFollows = false): Promise<BarrierResult> {
    if (change.kind === 'table-created') return { kind: 'unchanged' };
    const id = schemaChangeTableId(change);
    const i = this.inputTables.findIndex((t) => t.relationId === id);
    if (i < 0) return { kind: 'unchanged' };
    const stored = this.inputTables[i]!;
    const views = this.options.views;
    const storedPlans = await planAll(views, lookupIn([...this.inputTables, ...this.options.catalog]));
    const readsOf = (k: number) => storedPlans[k]!.reads.get(id) ?? new Set<string>();
    const readers = storedPlans.flatMap((p, k) => (p.inputs.some((t) => t.relationId === id) ? [k] : []));
    // A table whose rows the change rewrote is copied again when the caller can (`copyFollows`:
    // at the copy's swap, its old rows retracted first — copyLayoutChange).
    if (change.kind === 'table-dropped' || (change.recopy !== null && !copyFollows)) {
      const k = readers[0] ?? 0;
      throw refusal(views[k]!.name, stored, readsOf(k), change, where);
    }
    const current = this.currentLayouts.map((t, j) => (j === i ? change.after : t));
    const catalog = catalogOver(current, this.options.catalog);
    const plans: ViewPlan[] = [];
    for (const [k, v] of views.entries()) {
      try {
        plans.push(await planView({ ...v, catalog }));
      } catch (err) {
        if (!(err instanceof TidemarkError) || !err.code.startsWith('VIEW_')) throw err;
        throw refusal(v.name, stored, readsOf(k), change, where, err);
      }
    }
    const decision = await reconcileSchemas({
      views,
      storedPlans,
      storedInputs: this.inputTables,
      current,
      planCurrent: (v) => Promise.resolve(plans[views.indexOf(v)]!),
    });
    if (decision.kind !== 'rebuild') {
      for (const c of change.columns)
        if (c.op === 'added') this.fillsOf(id).set(c.column, c.fill.kind === 'value' ? c.fill.text : null);
      this.currentLayouts[i] = change.after;
      this.arrangements.get(qualifiedName(stored))?.accept(change.after);
      // Recorded with the epoch: a restart at it reads changes in these layouts.
      this.record = {
        ...this.record,
        current: defined(this.currentLayouts),
        fills: Object.fromEntries([...this.fills].map(([rel, f]) => [String(rel), Object.fromEntries(f)])),
      };
      writeSchemaRecord(this.store, this.record);
      return decision;
    }
    return this.rebuild(plans, i, change.columns, decision.reason, readers, where);
  }

  /** Fills of columns added to an input by migrated barriers (rowConverter's `fills`). */
  private readonly fills = new Map<number, Map<string, string | null>>();

  private fillsOf(relationId: number): Map<string, string | null> {
    let f = this.fills.get(relationId);
    if (f === undefined) this.fills.set(relationId, (f = new Map()));
    return f;
  }

  private async rebuild(
    plans: readonly ViewPlan[],
    changed: number,
    columns: readonly ColumnChange[],
    reason: string,
    readers: readonly number[],
    where: string,
  ): Promise<BarrierResult> {
    const inputs = inputsOf(plans);
    if (
      inputs.length !== this.inputTables.length ||
      inputs.some((t, j) => t.relationId !== this.inputTables[j]!.relationId)
    ) {
      throw new TidemarkError('VIEW_SCHEMA_CHANGED', {
        detail: `the views read other tables when planned again ${where} (${reason}). Fix: restart the changefeed: the views are rebuilt from a new snapshot`,
      });
    }
    const PAGE = 1000;
    // The old graph's state is retracted to nothing, input by input (its namespaces stay empty).
    for (const t of this.inputTables) {
      const name = qualifiedName(t);
      const arrangement = this.arrangements.get(name)!;
      let after: string | undefined;
      for (;;) {
        const { changes, last } = arrangement.page(-1, after, PAGE);
        if (last === undefined) break;
        this.graph.stepInOpenEpoch(new Map([[name, changes]]));
        after = last;
      }
    }
    const generation = (this.record.generation ?? 0) + 1;
    const record = schemaRecord(this.options.views, inputs, planDigest(plans), generation);
    const built = await buildGraph(this.store, this.options.views, plans, inputs, nodePrefix(record));
    // Input rows move into the new layouts.
    for (const [j, t] of inputs.entries()) {
      const old = this.inputTables[j]!;
      const from = this.arrangements.get(qualifiedName(old))!;
      // Nothing to convert (a table retracted before its copy's rows come in, say): no cast is
      // needed, so none can fail.
      if (sameLayout(old, t)) continue;
      if (from.empty) {
        this.fills.delete(t.relationId);
        continue;
      }
      const convert = rowConverter(old, t, j === changed ? columns : [], this.fillsOf(t.relationId));
      built.arrangements.get(qualifiedName(t))!.convertFrom(from, convert, `x${j}`);
      this.fills.delete(t.relationId);
    }
    // The new graph is loaded from them; the contents of the views that read the table collect.
    const acc = new Map(readers.map((k) => [plans[k]!.name, new OperatorState(this.store, `r${k}`)]));
    for (const t of inputs) {
      const name = qualifiedName(t);
      const arrangement = built.arrangements.get(name)!;
      let after: string | undefined;
      for (;;) {
        const { changes, last } = arrangement.page(1, after, PAGE);
        if (last === undefined) break;
        for (const [view, deltas] of built.graph.stepInOpenEpoch(new Map([[name, changes]]))) {
          const state = acc.get(view);
          if (state !== undefined) for (const c of deltas) state.addRow('c', rowKey(c.row), c.row, c.weight);
        }
        after = last;
      }
    }
    const reshaped: { before: TableSchema; after: TableSchema }[] = [];
    const rows: TableChanges[] = [];
    for (const k of readers) {
      const before = this.outputs[k]!;
      const now = built.outputs[k]!;
      const same = sameLayout(before.table, now.table);
      if (!same) reshaped.push({ before: before.table, after: now.table });
      const state = acc.get(now.name)!;
      const upserts: TextRow[] = [];
      const rowDeltas: { row: TextRow; count: number }[] = [];
      let after: string | undefined;
      for (;;) {
        const page = state.scanPrefix('c', '', { limit: PAGE, ...(after === undefined ? {} : { after }) });
        if (page.length === 0) break;
        for (const [key, value] of page) {
          const c = decodeCountedRow(value);
          const text = this.encode(now, c.row);
          if (now.key.length === 0) rowDeltas.push({ row: text, count: c.weight });
          else upserts.push(text);
          state.delete('c', key);
        }
        after = page[page.length - 1]![0];
      }
      rows.push({ table: now.table, truncate: same, deletes: [], upserts, partialUpdates: [], rowDeltas });
    }
    writeSchemaRecord(this.store, record);
    this.record = record;
    this.graph = built.graph;
    this.arrangements = built.arrangements;
    this.outputs = built.outputs;
    this.inputTables = inputs;
    this.planDescriptions = plans.map((p) => ({ name: p.name, plan: describePlan(p) }));
    this.currentLayouts = [...inputs];
    return { kind: 'rebuilt', reason, reshaped, rows };
  }

  /** The epoch of the committed state (0 = the snapshot), or null before the first commit. */
  lastCommittedEpoch(): number | null {
    return this.store.lastCommittedEpoch();
  }

  /**
   * Adds a chunk of base-table snapshot rows (any table, any order, any number of calls; tables
   * no view reads are ignored). Opens epoch `epoch` — the snapshot's epoch in the sink: 0, or
   * the next one when the snapshot replaces an older checkpoint — on the first call. Nothing is
   * durable until `commit(epoch)`. Precondition: the store is fresh (nothing committed).
   */
  loadSnapshot(rows: SnapshotRows, epoch = 0): Promise<void> {
    this.startSnapshot(epoch);
    const arrangement = this.arrangements.get(qualifiedName(rows.table));
    if (arrangement === undefined) return Promise.resolve();
    const changes: Change[] = [];
    this.guard(() => {
      arrangement.load(rows.table, rows.rows, changes);
      this.accumulate(this.graph.stepInOpenEpoch(new Map([[qualifiedName(rows.table), changes]])));
    });
    return Promise.resolve();
  }

  /**
   * Ends the snapshot: the views' initial rows, in chunks (at least one per view, maybe empty),
   * read from the store page by page. Call after the last `loadSnapshot` (or alone, for empty
   * tables, with the snapshot's `epoch`) and consume it whole; the epoch stays pending until
   * `commit(epoch)`.
   */
  async *finishSnapshot(epoch = 0): AsyncGenerator<SnapshotRows> {
    this.startSnapshot(epoch);
    const acc = this.snapshot!;
    for (const o of this.outputs) {
      const state = acc.get(o.name)!;
      let rows: TextRow[] = [];
      let emitted = false;
      let after: string | undefined;
      for (;;) {
        const page = state.scanPrefix('c', '', {
          limit: SNAPSHOT_CHUNK_ROWS,
          ...(after === undefined ? {} : { after }),
        });
        if (page.length === 0) break;
        for (const [key, value] of page) {
          const c = decodeCountedRow(value);
          const text = this.encode(o, c.row);
          for (let n = 0; n < c.weight; n++) rows.push(text);
          // Read once: the accumulated contents are not state (dropped with the epoch's writes).
          state.delete('c', key);
          if (rows.length >= SNAPSHOT_CHUNK_ROWS) {
            yield { table: o.table, rows };
            emitted = true;
            rows = [];
          }
        }
        after = page[page.length - 1]![0];
      }
      if (rows.length > 0 || !emitted) yield { table: o.table, rows };
    }
    this.snapshot = null;
  }

  private startSnapshot(epoch: number): void {
    if (this.snapshot !== null) return;
    this.beginEpoch(epoch);
    this.snapshot = new Map(this.outputs.map((o, i) => [o.name, new OperatorState(this.store, `s${i}`)]));
  }

  /**
   * One epoch's collapsed base-table changes (tables no view reads are ignored) → the changes of
   * every view that changed, for the same epoch. State stays pending until `commit(epoch)`.
   * Precondition: `epoch` is above the last committed epoch and no epoch is pending — unless
   * `continuing`: then `epoch` is pending and this is its next chunk (applied after the earlier
   * ones; the changes returned are relative to the state they left).
   */
  step(
    epoch: number,
    changes: readonly TableChanges[],
    options: { continuing?: boolean } = {},
  ): Promise<TableChanges[]> {
    if (options.continuing !== true) this.beginEpoch(epoch);
    const inputs = new Map<string, Change[]>();
    const consolidated = new Map<string, boolean>();
    const out: TableChanges[] = [];
    this.guard(() => {
      for (const tc of changes) {
        const name = qualifiedName(tc.table);
        const copy = this.copies.get(name);
        if (copy !== undefined) {
          copy.arrangement.apply(tc, []);
          continue;
        }
        const arrangement = this.arrangements.get(name);
        if (arrangement === undefined) continue;
        let list = inputs.get(name);
        if (list === undefined) inputs.set(name, (list = []));
        const unique = arrangement.apply(tc, list);
        consolidated.set(name, unique && !consolidated.has(name));
      }
      for (const [name, list] of inputs) if (consolidated.get(name) === true) markConsolidated(list);
      const deltas = this.graph.stepInOpenEpoch(inputs);
      for (const o of this.outputs) {
        const tc = this.toTableChanges(o, deltas.get(o.name) ?? []);
        if (tc !== null) out.push(tc);
      }
    });
    return Promise.resolve(out);
  }

  /**
   * Copies of input tables being made online (a re-copy), by the copy's table name: the copy's
   * rows and the stream's changes to it collect in namespace `copy<id>` until the swap; the
   * input's own arrangement (and so the views) keeps the table's last rows until then — as the
   * table downstream does.
   */
  private readonly copies = new Map<
    string,
    { input: string; table: TableSchema; arrangement: InputArrangement }
  >();

  /**
   * `copy` (a table of its own in the epochs, e.g. the sink's shadow) collects a new copy of the
   * input `table`: its changes go there from now on, not to the views. `fresh`: the copy starts
   * from nothing (anything stored for an earlier copy is dropped; precondition: the epoch is
   * open); otherwise it resumes with the rows the committed state holds.
   */
  copyStarted(table: TableSchema, copy: TableSchema, fresh: boolean): void {
    const input = this.inputTables.find((t) => t.relationId === table.relationId);
    if (input === undefined)
      throw new TidemarkError('INTERNAL', { detail: `${qualifiedName(table)} is not an input of the views` });
    const arrangement = new InputArrangement(this.store, `copy${table.relationId}`, copy, new Set(), true);
    if (fresh) this.guard(() => arrangement.clear());
    this.copies.set(qualifiedName(copy), { input: qualifiedName(input), table, arrangement });
  }

  /** False when the copy of `table` holds no row (as after a state rebuilt without it). */
  copyCollected(table: TableSchema): boolean {
    const name = this.copyOf(table);
    return name !== null && !this.copies.get(name)!.arrangement.empty;
  }

  /**
   * The schema change the views take at the swap of `table`'s copy when the copy's layout is not
   * the one the views read the table in (the table changed shape while copied, or a rewrite made
   * the copy): by column name (a renamed column shows as dropped and added). Null when the
   * layouts are the same. Before calling `barrier` with it (`copyFollows`), retract the table's
   * rows (`copyRetracted`): the views then never hold rows converted into the new layout, only
   * the copy's.
   */
  copyLayoutChange(table: TableSchema): SchemaChange | null {
    const name = this.copyOf(table);
    if (name === null) return null;
    const { table: copied } = this.copies.get(name)!;
    const i = this.inputTables.findIndex((t) => t.relationId === table.relationId);
    const before = this.currentLayouts[i] ?? this.inputTables[i]!;
    if (sameLayout(before, copied)) return null;
    const columns: ColumnChange[] = [];
    for (const c of before.columns) {
      const now = copied.columns.find((x) => x.name === c.name);
      if (now === undefined) columns.push({ op: 'dropped', column: c.name });
      else if (now.typeName !== c.typeName || now.typeOid !== c.typeOid)
        columns.push({
          op: 'retyped',
          column: c.name,
          fromType: c.typeName,
          toType: now.typeName,
          reproducible: false,
        });
    }
    for (const c of copied.columns)
      if (!before.columns.some((x) => x.name === c.name))
        columns.push({ op: 'added', column: c.name, fill: { kind: 'per-row' } });
    return {
      kind: 'table-altered',
      before,
      after: copied,
      columns,
      recopy: 'the table was copied again online in a new shape',
      ddl: null,
    };
  }

  /** Every row of input `table` retracted, page by page (see copyLayoutChange), in the open epoch. */
  copyRetracted(table: TableSchema, pageRows = SNAPSHOT_CHUNK_ROWS): Generator<TableChanges[]> {
    return this.copyPhases(table, ['all'], pageRows);
  }

  /** The copy of `table` is given up: what it collected is dropped. Precondition: the epoch is open. */
  copyEnded(table: TableSchema): void {
    const name = this.copyOf(table);
    if (name === null) return;
    this.guard(() => this.copies.get(name)!.arrangement.clear());
    this.copies.delete(name);
  }

  /**
   * The copy of `table` is complete and replaces the input's rows, in the open epoch (after
   * every change before this point was stepped): yields the views' changes page by page (apply
   * them in order; each is relative to the state the one before left). Only rows that differ
   * change the views. The copy's state is emptied.
   */
  *copySwapped(table: TableSchema, pageRows = SNAPSHOT_CHUNK_ROWS): Generator<TableChanges[]> {
    yield* this.copyPhases(table, ['own', 'copy'], pageRows);
    const name = this.copyOf(table);
    if (name !== null) this.copies.delete(name);
  }

  private *copyPhases(
    table: TableSchema,
    phases: readonly ('own' | 'all' | 'copy')[],
    pageRows: number,
  ): Generator<TableChanges[]> {
    const name = this.copyOf(table);
    if (name === null) return;
    const { input, arrangement: copy } = this.copies.get(name)!;
    for (const phase of phases) {
      // Looked up per phase: a barrier between phases may have rebuilt the arrangements.
      const target = this.arrangements.get(input)!;
      let after: string | undefined;
      for (;;) {
        const changes: Change[] = [];
        const out: TableChanges[] = [];
        this.guard(() => {
          after = target.replacePage(copy, phase, after, pageRows, changes);
          if (changes.length === 0) return;
          const deltas = this.graph.stepInOpenEpoch(new Map([[input, changes]]));
          for (const o of this.outputs) {
            const tc = this.toTableChanges(o, deltas.get(o.name) ?? []);
            if (tc !== null) out.push(tc);
          }
        });
        if (out.length > 0) yield out;
        if (after === undefined) break;
      }
    }
  }

  private copyOf(table: TableSchema): string | null {
    for (const [name, c] of this.copies)
      if (this.inputTables.find((t) => qualifiedName(t) === c.input)?.relationId === table.relationId)
        return name;
    return null;
  }

  /** Makes the pending epoch's state durable, keeping its undo record. */
  async commit(epoch: number): Promise<void> {
    await this.store.commitEpoch(epoch);
  }

  /** Restores the state of the epoch before the last committed one (see StateStore). */
  async rollbackLastEpoch(): Promise<void> {
    this.abort();
    await this.store.rollbackLastEpoch();
  }

  /** Drops the pending epoch's writes (a failed sink commit will step the epoch again). */
  abort(): void {
    this.snapshot = null;
    this.store.abortEpoch();
  }

  /** Discards pending writes and closes the store. */
  async close(): Promise<void> {
    this.snapshot = null;
    await this.store.close();
  }

  /** Opens the store's epoch; the first epoch of a fresh store also stores the schema record. */
  private beginEpoch(epoch: number): void {
    const fresh = this.store.lastCommittedEpoch() === null;
    this.store.beginEpoch(epoch);
    if (fresh) writeSchemaRecord(this.store, this.record);
  }

  private guard(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  private accumulate(deltas: Map<string, Change[]>): void {
    for (const [name, changes] of deltas) {
      const acc = this.snapshot?.get(name);
      if (acc === undefined) continue;
      for (const c of changes) acc.addRow('c', rowKey(c.row), c.row, c.weight);
    }
  }

  private toTableChanges(o: ViewOutput, deltas: readonly Change[]): TableChanges | null {
    if (deltas.length === 0) return null;
    const base = { table: o.table, truncate: false, partialUpdates: [] };
    if (o.key.length === 0) {
      return {
        ...base,
        deletes: [],
        upserts: [],
        rowDeltas: deltas.map((c) => ({ row: this.encode(o, c.row), count: c.weight })),
      };
    }
    // A keyed view's deltas (consolidated) change each key by at most −old +new: every +row is an
    // upsert, a −row a delete unless its key also has a +row. Producers put a key's −old +new side
    // by side (the aggregate, an arrangement's update), so only −rows outside such a pair need the
    // keys of the +rows (a map per delta was 3% of a GROUP BY's upkeep). This needs the plan's key
    // to be unique in the view: two +rows under one key would be two upserts of one row, which a
    // sink applying upserts in one statement refuses.
    const upserts: TextRow[] = [];
    let alone: (readonly Value[])[] | null = null;
    for (let i = 0; i < deltas.length; i++) {
      const c = deltas[i] as Change;
      if (c.weight > 0) {
        upserts.push(this.encode(o, c.row));
        continue;
      }
      const next = deltas[i + 1];
      const prev = deltas[i - 1];
      if (next !== undefined && next.weight > 0 && sameKey(o.key, c.row, next.row)) continue;
      if (prev !== undefined && prev.weight > 0 && sameKey(o.key, c.row, prev.row)) continue;
      (alone ??= []).push(c.row);
    }
    const deletes: TextRow[] = [];
    if (alone !== null) {
      const upserted = new Set<string>();
      for (const c of deltas) if (c.weight > 0) upserted.add(keyToken(o.key, c.row));
      for (const row of alone) {
        if (upserted.has(keyToken(o.key, row))) continue;
        const encoded = this.encode(o, row);
        deletes.push(encoded.map((cell, i) => (o.key.includes(i) ? cell : null)));
      }
    }
    return { ...base, deletes, upserts, rowDeltas: [] };
  }

  private encode(o: ViewOutput, row: readonly Value[]): TextRow {
    const out = new Array<string | null>(row.length);
    for (let i = 0; i < row.length; i++) {
      const v = row[i] ?? null;
      const oid = o.oids[i];
      // Integral numbers print as themselves below float8_out's exponent form (and not as float4).
      out[i] =
        typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 1e15 && !Object.is(v, -0) && oid !== 700
          ? String(v)
          : encodeText(v, oid);
    }
    return out;
  }
}

/** The identity of `row`'s key columns (row-key.ts). */
function keyToken(key: readonly number[], row: readonly Value[]): string {
  return key.length === 1
    ? valueToken(row[key[0] as number] ?? null)
    : rowKey(key.map((i) => row[i] ?? null));
}

/** Whether rows `a` and `b` have the same key (as `keyToken` compares). */
function sameKey(key: readonly number[], a: readonly Value[], b: readonly Value[]): boolean {
  for (const i of key) {
    const x = a[i] ?? null;
    const y = b[i] ?? null;
    if (x !== y && (typeof x !== 'object' || valueToken(x) !== valueToken(y))) return false;
  }
  return true;
}

/** The graph, input arrangements and outputs for `plans` over `inputTables`, state under `prefix`. */
async function buildGraph(
  store: StateStore,
  views: readonly ViewDefinition[],
  plans: readonly ViewPlan[],
  inputTables: readonly TableSchema[],
  prefix: string,
): Promise<{ graph: Graph; arrangements: Map<string, InputArrangement>; outputs: ViewOutput[] }> {
  // The graphs run over tables pruned to the columns the views read (and their keys).
  const graphPlans = await prunedPlans(views, plans);
  const columns = new Map(inputTables.map((t) => [t.relationId, carriedColumns(t, graphPlans)] as const));
  const arrangements = new Map(
    inputTables.map(
      (t, i) =>
        [
          qualifiedName(t),
          new InputArrangement(store, `t${i}`, t, new Set(columns.get(t.relationId))),
        ] as const,
    ),
  );
  const builder = new GraphBuilder();
  const declared = new Map<string, NodeRef>();
  const inputColumns = (t: TableSchema) => columns.get(t.relationId);
  for (const p of graphPlans) buildViewGraph(p, builder, declared, inputColumns);
  const outputs = plans.map((p) => viewOutput(p, inputTables));
  return { graph: builder.build(store, prefix), arrangements, outputs };
}

/** A catalog over the inputs' current layouts first, then the other tables (not their old shapes). */
function catalogOver(current: readonly (TableSchema | undefined)[], catalog: readonly TableSchema[]) {
  const now = defined(current);
  const ids = new Set(now.map((t) => t.relationId));
  return lookupIn([...now, ...catalog.filter((t) => !ids.has(t.relationId))]);
}

function viewOutput(plan: ViewPlan, inputs: readonly TableSchema[]): ViewOutput {
  const dot = plan.name.indexOf('.');
  const schema = dot < 0 ? 'public' : plan.name.slice(0, dot);
  const name = dot < 0 ? plan.name : plan.name.slice(dot + 1);
  const enums = inputs
    .flatMap((t) => t.enums)
    .filter((e) =>
      plan.outputColumns.some((c) => c.typeName === e.name || c.typeName === `${e.schema}.${e.name}`),
    );
  const table: TableSchema = {
    schema,
    name,
    relationId: viewRelationId(`${schema}.${name}`),
    columns: plan.outputColumns,
    keyColumns: plan.key,
    keyless: plan.key.length === 0,
    enums,
  };
  return { name: plan.name, table, oids: plan.outputColumns.map((c) => c.typeOid), key: plan.key };
}

/** A stable negative id per view (FNV-1a of the qualified name), apart from pg_class OIDs. */
export function viewRelationId(qualified: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < qualified.length; i++) {
    h ^= qualified.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return -(h & 0x7fffffff || 1);
}

async function planAll(
  views: readonly ViewDefinition[],
  catalog: (schema: string | null, name: string) => TableSchema | undefined,
): Promise<ViewPlan[]> {
  const plans: ViewPlan[] = [];
  for (const v of views) plans.push(await planView({ name: v.name, sql: v.sql, catalog }));
  const names = new Set<string>();
  for (const p of plans) {
    if (names.has(p.name)) throw invalidView(`view "${p.name}" is defined twice`);
    names.add(p.name);
  }
  return plans;
}

/** A catalog lookup over `tables`; the first match wins (stored layouts come first). */
function lookupIn(tables: readonly TableSchema[]) {
  return (schema: string | null, name: string): TableSchema | undefined => {
    const hits = tables.filter((t) => t.name === name && (schema === null || t.schema === schema));
    if (schema !== null || hits.length <= 1) return hits[0];
    return hits.find((t) => t.schema === 'public') ?? hits[0];
  };
}

/**
 * Each view planned again over its tables pruned to the columns it reads (keys kept, so keys
 * derive as before): narrower rows in every operator's state. The first plan is kept when the
 * pruned one would differ in its output.
 */
async function prunedPlans(
  views: readonly ViewDefinition[],
  plans: readonly ViewPlan[],
): Promise<ViewPlan[]> {
  const out: ViewPlan[] = [];
  for (const [i, full] of plans.entries()) {
    const pruned = new Map(
      full.inputs.map((t) => [qualifiedName(t), prune(t, full.reads.get(t.relationId))]),
    );
    const lookup = lookupIn(full.inputs.map((t) => pruned.get(qualifiedName(t))!));
    let plan: ViewPlan;
    try {
      plan = await planView({ name: views[i]!.name, sql: views[i]!.sql, catalog: lookup });
    } catch {
      plan = full;
    }
    const same = (p: ViewPlan) => JSON.stringify([p.outputColumns, p.key]);
    out.push(same(plan) === same(full) ? plan : full);
  }
  return out;
}

function prune(t: TableSchema, read: ReadonlySet<string> | undefined): TableSchema {
  const keep = t.columns.filter((c, i) => read?.has(c.name) === true || t.keyColumns.includes(i));
  if (keep.length === t.columns.length) return t;
  return { ...t, columns: keep, keyColumns: t.keyColumns.map((i) => keep.indexOf(t.columns[i]!)) };
}

/** The columns of `table` (in table order) the graphs' scans of it carry. */
function carriedColumns(table: TableSchema, plans: readonly ViewPlan[]): string[] {
  const names = new Set<string>();
  for (const p of plans)
    for (const t of p.inputs)
      if (t.relationId === table.relationId) for (const c of t.columns) names.add(c.name);
  return table.columns.filter((c) => names.has(c.name)).map((c) => c.name);
}

function inputsOf(plans: readonly ViewPlan[]): TableSchema[] {
  const out: TableSchema[] = [];
  for (const p of plans)
    for (const t of p.inputs) if (!out.some((x) => qualifiedName(x) === qualifiedName(t))) out.push(t);
  return out;
}

/** The catalog's layout of a stored input: the same relation, or a table under its name. */
function currentLayout(stored: TableSchema, catalog: readonly TableSchema[]): TableSchema | undefined {
  return (
    catalog.find((t) => t.relationId === stored.relationId) ??
    catalog.find((t) => qualifiedName(t) === qualifiedName(stored))
  );
}

function defined<T>(xs: readonly (T | undefined)[]): T[] {
  return xs.filter((x): x is T => x !== undefined);
}

/** What differs between the stored view definitions and the configured ones, or null. */
function viewChanges(stored: readonly ViewDefinition[], now: readonly ViewDefinition[]): string | null {
  const out: string[] = [];
  for (const v of now) {
    const old = stored.find((x) => x.name === v.name);
    if (old === undefined) out.push(`view "${v.name}" added`);
    else if (old.sql !== v.sql) out.push(`view "${v.name}": SQL changed`);
  }
  for (const v of stored) if (!now.some((x) => x.name === v.name)) out.push(`view "${v.name}" removed`);
  if (out.length === 0 && stored.map((v) => v.name).join('\u0000') !== now.map((v) => v.name).join('\u0000'))
    out.push('views reordered');
  return out.length === 0 ? null : `the view definitions changed: ${out.join('; ')}`;
}

function stale(reason: string): TidemarkError {
  return new TidemarkError('VIEW_STATE_STALE', { detail: reason });
}

function invalidView(detail: string): TidemarkError {
  return new TidemarkError('VIEW_INVALID', { detail });
}
