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
 * State namespaces: `t<i>` for the i-th input table (inputTables order), `n<id>` for graph nodes.
 * Both follow the order of `views` and of the tables they read, so reopening a store with the
 * same views continues where it left off.
 */
import { describePlan } from '../sql/describe-plan.ts';
import type { Row as TextRow } from '../core/row.ts';
import { encodeText } from '../decode/pg-values.ts';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import type { Value } from '../decode/value.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { SnapshotRows, TableChanges } from '../core/epoch.ts';
import { buildViewGraph } from '../sql/build-graph.ts';
import { planView } from '../sql/planner.ts';
import type { ViewPlan } from '../sql/plan.ts';
import { markConsolidated, type Change } from './change.ts';
import { GraphBuilder, type Graph, type NodeRef } from './graph.ts';
import { InputArrangement } from './input-arrangement.ts';
import { rowKey, valueToken } from './row-key.ts';
import type { StateStore } from './state-store.ts';

export interface ViewDefinition {
  /** `name` or `schema.name`: the table the sink maintains. */
  readonly name: string;
  readonly sql: string;
}

export interface ViewMaintainerOptions {
  readonly views: readonly ViewDefinition[];
  /** The base tables the views may read. */
  readonly catalog: readonly TableSchema[];
  /** Owned by the maintainer from now on: `close()` closes it. */
  readonly store: StateStore;
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
  /** Consolidated view contents while a snapshot loads (view name → rowKey → change). */
  private snapshot: Map<string, Map<string, { row: readonly Value[]; weight: number }>> | null = null;

  private constructor(
    private readonly store: StateStore,
    private readonly graph: Graph,
    private readonly arrangements: ReadonlyMap<string, InputArrangement>,
    private readonly outputs: readonly ViewOutput[],
    /** Base tables the views read (a subset of the catalog), in state-namespace order. */
    readonly inputTables: readonly TableSchema[],
    /** Each view's plan in words (sql/describe-plan.ts), for the operator. */
    readonly planDescriptions: readonly { name: string; plan: string[] }[],
  ) {}

  /** One table per view as the sink creates it. */
  get viewTables(): readonly TableSchema[] {
    return this.outputs.map((o) => o.table);
  }

  /**
   * Plans every view (failing with VIEW_INVALID / VIEW_UNSUPPORTED), builds one dataflow graph
   * over `store` and returns the maintainer at the store's last committed epoch.
   */
  static async open(options: ViewMaintainerOptions): Promise<ViewMaintainer> {
    const lookup = (schema: string | null, name: string): TableSchema | undefined => {
      const hits = options.catalog.filter((t) => t.name === name && (schema === null || t.schema === schema));
      return hits.length <= 1 ? hits[0] : (hits.find((t) => t.schema === 'public') ?? hits[0]);
    };
    const plans: ViewPlan[] = [];
    for (const v of options.views) plans.push(await planView({ name: v.name, sql: v.sql, catalog: lookup }));
    const names = new Set<string>();
    const inputTables: TableSchema[] = [];
    for (const p of plans) {
      if (names.has(p.name)) throw invalidView(`view "${p.name}" is defined twice`);
      names.add(p.name);
      for (const t of p.inputs)
        if (!inputTables.some((x) => qualifiedName(x) === qualifiedName(t))) inputTables.push(t);
    }
    const arrangements = new Map(
      inputTables.map((t, i) => [qualifiedName(t), new InputArrangement(options.store, `t${i}`, t)] as const),
    );
    const builder = new GraphBuilder();
    const declared = new Map<string, NodeRef>();
    for (const p of plans) buildViewGraph(p, builder, declared);
    const outputs = plans.map((p) => viewOutput(p, inputTables));
    return new ViewMaintainer(
      options.store,
      builder.build(options.store),
      arrangements,
      outputs,
      inputTables,
      plans.map((p) => ({ name: p.name, plan: describePlan(p) })),
    );
  }

  /** The epoch of the committed state (0 = the snapshot), or null before the first commit. */
  lastCommittedEpoch(): number | null {
    return this.store.lastCommittedEpoch();
  }

  /**
   * Adds a chunk of base-table snapshot rows (any table, any order, any number of calls; tables
   * no view reads are ignored). Opens epoch 0 on the first call. Nothing is durable until
   * `commit(0)`. Precondition: the store is fresh (nothing committed).
   */
  loadSnapshot(rows: SnapshotRows): Promise<void> {
    if (this.snapshot === null) {
      this.store.beginEpoch(0);
      this.snapshot = new Map(this.outputs.map((o) => [o.name, new Map()]));
    }
    const arrangement = this.arrangements.get(qualifiedName(rows.table));
    if (arrangement === undefined) return Promise.resolve();
    const changes: Change[] = [];
    this.guard(() => {
      arrangement.load(rows.rows, changes);
      this.accumulate(this.graph.stepInOpenEpoch(new Map([[qualifiedName(rows.table), changes]])));
    });
    return Promise.resolve();
  }

  /**
   * Ends the snapshot: the views' initial rows, in chunks. Call after the last `loadSnapshot`
   * (or alone, for empty tables); epoch 0 stays pending until `commit(0)`.
   */
  finishSnapshot(): Promise<SnapshotRows[]> {
    if (this.snapshot === null) this.store.beginEpoch(0);
    const out: SnapshotRows[] = [];
    for (const o of this.outputs) {
      let rows: TextRow[] = [];
      for (const c of this.snapshot?.get(o.name)?.values() ?? []) {
        const text = this.encode(o, c.row);
        for (let n = 0; n < c.weight; n++) rows.push(text);
        if (rows.length >= SNAPSHOT_CHUNK_ROWS) {
          out.push({ table: o.table, rows });
          rows = [];
        }
      }
      if (rows.length > 0 || !out.some((s) => s.table === o.table)) out.push({ table: o.table, rows });
    }
    this.snapshot = null;
    return Promise.resolve(out);
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
    if (options.continuing !== true) this.store.beginEpoch(epoch);
    const inputs = new Map<string, Change[]>();
    const consolidated = new Map<string, boolean>();
    const out: TableChanges[] = [];
    this.guard(() => {
      for (const tc of changes) {
        const name = qualifiedName(tc.table);
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
      for (const c of changes) {
        const k = rowKey(c.row);
        const e = acc.get(k);
        if (e === undefined) acc.set(k, { row: c.row, weight: c.weight });
        else if ((e.weight += c.weight) === 0) acc.delete(k);
      }
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
    // A keyed view changes each key by at most −old +new: one upsert, or one delete.
    const byKey = new Map<string, { up: readonly Value[] | null; old: readonly Value[] | null }>();
    const key0 = o.key.length === 1 ? o.key[0] : undefined;
    for (const c of deltas) {
      const k =
        key0 !== undefined ? valueToken(c.row[key0] ?? null) : rowKey(o.key.map((i) => c.row[i] ?? null));
      let e = byKey.get(k);
      if (e === undefined) byKey.set(k, (e = { up: null, old: null }));
      if (c.weight > 0) e.up = c.row;
      else e.old = c.row;
    }
    const upserts: TextRow[] = [];
    const deletes: TextRow[] = [];
    for (const e of byKey.values()) {
      if (e.up !== null) upserts.push(this.encode(o, e.up));
      else if (e.old !== null) {
        const row = this.encode(o, e.old);
        deletes.push(row.map((cell, i) => (o.key.includes(i) ? cell : null)));
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

function invalidView(detail: string): TidemarkError {
  return new TidemarkError('VIEW_INVALID', { detail });
}
