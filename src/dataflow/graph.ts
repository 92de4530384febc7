/**
 * A dataflow graph: named inputs (tables), operator nodes, named outputs (views). Built once by
 * the planner with `GraphBuilder`, then stepped one epoch at a time:
 *
 *   changefeed epoch e ──► graph.step(batches of e) ──► output deltas ──► sink commits e
 *                                                                            │
 *                          store.commitEpoch(e) ◄──── graph.commit() ◄───────┘
 *
 * Committing the state after the sink keeps replays exact: if the process dies in between, the
 * state is still that of e−1, epoch e is stepped again and the sink skips it by its checkpoint.
 *
 * Node state lives under namespaces `n<id>` where ids follow build order: a graph rebuilt by the
 * same planner code over the same store continues where the committed state left off.
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { AggregateOperator, type AggregateOptions } from './aggregate.ts';
import { consolidate, type Change } from './change.ts';
import { DistinctOperator } from './distinct.ts';
import { FilterOperator, type FilterOptions } from './filter.ts';
import { JoinOperator, type JoinOptions } from './join.ts';
import { MapOperator, type MapOptions } from './map.ts';
import { OperatorState, type Operator } from './operator.ts';
import type { StateStore } from './state-store.ts';
import { SemiJoinOperator, type SemiJoinOptions } from './semi-join.ts';
import { TopNOperator, type TopNOptions } from './top-n.ts';
import { WindowOperator, type WindowOptions } from './window.ts';
import { UnionAllOperator } from './union-all.ts';

/** A handle on a node of the graph being built. */
export interface NodeRef {
  readonly id: number;
}

interface NodeSpec {
  readonly inputs: readonly number[];
  /**
   * Whether the node's output is consolidated before its consumers see it. Stateless nodes
   * (filter, map, union all) hand theirs on as they are, since every operator is linear in its
   * input; stateful nodes, graph inputs and outputs are consolidated.
   */
  readonly consolidate: boolean;
  /**
   * Whether the node's collection holds every row at most once and each batch it hands on has
   * every row at most once (weights ±1): a keyed table, a filter of such, an injective map of
   * such, an inner join of two such, an aggregate, DISTINCT. Joins store such inputs' rows
   * without reading their counts.
   */
  readonly distinctRows: boolean;
  /** Null for a graph input. */
  readonly make: ((state: OperatorState) => Operator) | null;
  readonly inputName?: string;
}

export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly outputs = new Map<string, number>();
  private readonly inputs = new Map<string, number>();

  /**
   * A source of changes named `name` (e.g. a qualified table name). `distinctRows`: it never
   * holds a row twice (a table with a key, whose rows carry the key columns).
   */
  input(name: string, options: { distinctRows?: boolean } = {}): NodeRef {
    if (this.inputs.has(name)) throw invalid(`input '${name}' is declared twice`);
    const ref = this.add([], null, { inputName: name, distinctRows: options.distinctRows === true });
    this.inputs.set(name, ref.id);
    return ref;
  }

  filter(input: NodeRef, options: FilterOptions): NodeRef {
    return this.add([input], () => new FilterOperator(options), {
      consolidate: false,
      distinctRows: this.distinctRows(input),
    });
  }

  map(input: NodeRef, options: MapOptions): NodeRef {
    return this.add([input], () => new MapOperator(options), {
      consolidate: false,
      distinctRows: options.injective === true && this.distinctRows(input),
    });
  }

  unionAll(inputs: readonly NodeRef[]): NodeRef {
    return this.add(inputs, () => new UnionAllOperator(), { consolidate: false });
  }

  distinct(input: NodeRef): NodeRef {
    return this.add([input], (state) => new DistinctOperator(state), { distinctRows: true });
  }

  join(left: NodeRef, right: NodeRef, options: JoinOptions): NodeRef {
    const leftDistinct = this.distinctRows(left);
    const rightDistinct = this.distinctRows(right);
    return this.add(
      [left, right],
      (state) => new JoinOperator(state, { ...options, leftDistinct, rightDistinct }),
      // Pairs of distinct rows are distinct; outer joins' padded rows are left out of the claim.
      { distinctRows: options.kind === 'inner' && leftDistinct && rightDistinct },
    );
  }

  semiJoin(left: NodeRef, right: NodeRef, options: SemiJoinOptions): NodeRef {
    return this.add([left, right], (state) => new SemiJoinOperator(state, options));
  }

  window(input: NodeRef, options: WindowOptions): NodeRef {
    return this.add([input], (state) => new WindowOperator(state, options));
  }

  aggregate(input: NodeRef, options: AggregateOptions): NodeRef {
    return this.add([input], (state) => new AggregateOperator(state, options), { distinctRows: true });
  }

  topN(input: NodeRef, options: TopNOptions): NodeRef {
    return this.add([input], (state) => new TopNOperator(state, options));
  }

  /** Exposes `node`'s changes as the output `name` of every step. */
  output(name: string, node: NodeRef): void {
    if (this.outputs.has(name)) throw invalid(`output '${name}' is declared twice`);
    this.check(node);
    this.outputs.set(name, node.id);
  }

  /**
   * The runnable graph over `store`; the builder may not be used afterwards. Node state lives
   * under `<prefix><id>`.
   */
  build(store: StateStore, prefix = 'n'): Graph {
    const operators = this.nodes.map((n, id) =>
      n.make === null ? null : n.make(new OperatorState(store, `${prefix}${id}`)),
    );
    const outputIds = new Set(this.outputs.values());
    const nodes = this.nodes.map((n, id) => (outputIds.has(id) ? { ...n, consolidate: true } : n));
    return new Graph(store, nodes, operators, new Map(this.inputs), new Map(this.outputs));
  }

  private add(
    inputs: readonly NodeRef[],
    make: NodeSpec['make'],
    spec: { inputName?: string; consolidate?: boolean; distinctRows?: boolean } = {},
  ): NodeRef {
    for (const i of inputs) this.check(i);
    const id = this.nodes.length;
    this.nodes.push({
      inputs: inputs.map((i) => i.id),
      make,
      consolidate: spec.consolidate ?? true,
      distinctRows: spec.distinctRows ?? false,
      ...(spec.inputName === undefined ? {} : { inputName: spec.inputName }),
    });
    return { id };
  }

  private distinctRows(ref: NodeRef): boolean {
    this.check(ref);
    return this.nodes[ref.id]?.distinctRows === true;
  }

  private check(ref: NodeRef): void {
    if (!Number.isInteger(ref.id) || ref.id < 0 || ref.id >= this.nodes.length)
      throw invalid(`unknown node ${ref.id}`);
  }
}

export class Graph {
  private openEpoch: number | null = null;

  /** Use GraphBuilder.build. */
  constructor(
    private readonly store: StateStore,
    private readonly nodes: readonly NodeSpec[],
    private readonly operators: readonly (Operator | null)[],
    private readonly inputIds: ReadonlyMap<string, number>,
    private readonly outputIds: ReadonlyMap<string, number>,
  ) {}

  /**
   * Runs one epoch: `inputs` maps input names to their changes in the epoch (missing names: no
   * changes). Returns every output's consolidated delta (empty arrays included). The state writes
   * stay pending until `commit()`; `abort()` discards them. Precondition: no epoch is open;
   * `epoch` (default: last committed + 1) is greater than the last committed epoch.
   */
  step(
    inputs: ReadonlyMap<string, readonly Change[]>,
    options: { epoch?: number } = {},
  ): Map<string, Change[]> {
    for (const name of inputs.keys()) if (!this.inputIds.has(name)) throw invalid(`unknown input '${name}'`);
    const epoch = options.epoch ?? (this.store.lastCommittedEpoch() ?? 0) + 1;
    this.store.beginEpoch(epoch);
    this.openEpoch = epoch;
    try {
      return this.stepInOpenEpoch(inputs);
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /**
   * Runs the nodes over `inputs` inside the store's epoch that the caller has already begun
   * (`store.beginEpoch`), any number of times per epoch (e.g. once per snapshot chunk); the
   * caller commits or aborts the store's epoch. Returns every output's consolidated delta. On an
   * error the store's epoch holds partial writes: the caller must abort it.
   */
  stepInOpenEpoch(inputs: ReadonlyMap<string, readonly Change[]>): Map<string, Change[]> {
    const results: (readonly Change[])[] = [];
    this.nodes.forEach((node, id) => {
      const op = this.operators[id];
      const batch =
        op === null || op === undefined
          ? (inputs.get(node.inputName ?? '') ?? [])
          : op.step(node.inputs.map((i) => results[i] ?? []));
      results.push(node.consolidate ? consolidate(batch) : batch);
    });
    const out = new Map<string, Change[]>();
    for (const [name, id] of this.outputIds) out.set(name, (results[id] as Change[] | undefined) ?? []);
    return out;
  }

  /** Makes the open epoch's state durable. Call after the epoch's output is committed downstream. */
  async commit(): Promise<void> {
    if (this.openEpoch === null)
      throw new TidemarkError('DATAFLOW_EPOCH_ORDER', { detail: 'commit without a stepped epoch' });
    await this.store.commitEpoch(this.openEpoch);
    this.openEpoch = null;
  }

  /** Discards the open epoch's state changes (no-op when none is open). */
  abort(): void {
    this.store.abortEpoch();
    this.openEpoch = null;
  }

  /** The epoch of the committed state, or null before the first commit. */
  lastCommittedEpoch(): number | null {
    return this.store.lastCommittedEpoch();
  }
}

function invalid(detail: string): TidemarkError {
  return new TidemarkError('DATAFLOW_GRAPH_INVALID', { detail });
}
