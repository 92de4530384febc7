/**
 * Test support: random epochs of inserts, deletes and updates (−old +new) over small value
 * domains, and the harness that checks a graph against a reference implementation after every
 * epoch, optionally rebuilding the graph over the same store part-way.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import type { Value } from '../../decode/value.ts';
import type { Change, Row } from '../change.ts';
import type { Graph } from '../graph.ts';
import type { StateStore } from '../state-store.ts';
import { MemoryStateStore } from '../memory-state-store.ts';
import { rowKey } from '../row-key.ts';
import { Multiset } from './multiset.ts';

export type Op =
  | { readonly tag: 'insert'; readonly row: Row }
  | { readonly tag: 'delete'; readonly index: number }
  | { readonly tag: 'update'; readonly index: number; readonly row: Row };

/** Rows [k, v, s]: k ∈ {0,1,2,null}, v ∈ {0..3,null}, s ∈ {'a','b','',null}. */
export const smallRow: fc.Arbitrary<Row> = fc.tuple(
  fc.constantFrom<Value>(0, 1, 2, null),
  fc.constantFrom<Value>(0, 1, 2, 3, null),
  fc.constantFrom<Value>('a', 'b', '', null),
);

export function opArb(row: fc.Arbitrary<Row> = smallRow): fc.Arbitrary<Op> {
  return fc.oneof(
    { weight: 3, arbitrary: row.map((r): Op => ({ tag: 'insert', row: r })) },
    { weight: 1, arbitrary: fc.nat(50).map((index): Op => ({ tag: 'delete', index })) },
    {
      weight: 2,
      arbitrary: fc.tuple(fc.nat(50), row).map(([index, r]): Op => ({ tag: 'update', index, row: r })),
    },
  );
}

/** Epochs: each a list of ops per input name. */
export function epochsArb(
  inputs: readonly string[],
  row: fc.Arbitrary<Row> = smallRow,
): fc.Arbitrary<Record<string, Op[]>[]> {
  const epoch = fc.record(
    Object.fromEntries(inputs.map((name) => [name, fc.array(opArb(row), { maxLength: 8 })])),
  );
  return fc.array(epoch, { minLength: 1, maxLength: 8 });
}

/** Applies ops to a table (a list of rows), returning the changes they make. */
export function applyOps(table: Row[], ops: readonly Op[]): Change[] {
  const changes: Change[] = [];
  for (const op of ops) {
    if (op.tag === 'insert') {
      table.push(op.row);
      changes.push({ row: op.row, weight: 1 });
      continue;
    }
    if (table.length === 0) continue;
    const i = op.index % table.length;
    const old = table[i] as Row;
    changes.push({ row: old, weight: -1 });
    if (op.tag === 'delete') table.splice(i, 1);
    else {
      table[i] = op.row;
      changes.push({ row: op.row, weight: 1 });
    }
  }
  return changes;
}

export interface OracleCase {
  readonly inputs: readonly string[];
  readonly build: (store: StateStore) => Graph;
  /** From-scratch evaluation of the single output `out` over the accumulated inputs. */
  readonly reference: (tables: Record<string, Row[]>) => Row[];
}

/**
 * Runs the epochs through the graph; after every epoch the sum of all output deltas must equal
 * the reference over the accumulated inputs. With `rebuildAfter`, the graph is rebuilt over the
 * same store after that many epochs (state must survive).
 */
export async function checkAgainstOracle(
  c: OracleCase,
  epochs: readonly Record<string, Op[]>[],
  options: {
    rebuildAfter?: number;
    store?: StateStore;
    /** At the rebuild, replaces the store (e.g. closes and reopens it from disk). */
    reopen?: (store: StateStore) => Promise<StateStore>;
  } = {},
): Promise<void> {
  let store = options.store ?? new MemoryStateStore();
  let graph = c.build(store);
  const tables: Record<string, Row[]> = Object.fromEntries(c.inputs.map((n) => [n, []]));
  const accumulated = new Multiset();
  for (const [i, epoch] of epochs.entries()) {
    if (i === options.rebuildAfter) {
      if (options.reopen !== undefined) store = await options.reopen(store);
      graph = c.build(store);
    }
    const batches = new Map<string, Change[]>();
    for (const name of c.inputs) batches.set(name, applyOps(tables[name] as Row[], epoch[name] ?? []));
    const out = graph.step(batches).get('out') ?? [];
    await graph.commit();
    const keys = out.map((ch) => rowKey(ch.row));
    expect(new Set(keys).size, 'output delta is consolidated').toBe(keys.length);
    accumulated.addAll(out);
    expect(accumulated.canonical(), `after epoch ${i}`).toEqual(Multiset.of(c.reference(tables)).canonical());
  }
  if (options.reopen !== undefined) await store.close();
}
