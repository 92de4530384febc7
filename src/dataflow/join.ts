/**
 * Equi-join of two inputs: inner, left, right and full outer.
 *
 * Per join key k, with L/R the accumulated inputs and dL/dR this epoch's batches:
 *   inner part   Δ(L⋈R) = dL⋈R_old + L_new⋈dR
 *   left padding (left/full) the rows of L(k), padded with NULLs, exist while R(k) is empty:
 *     R(k) stays empty → emit dL(k) padded; R(k) becomes non-empty → retract L_old(k) padded;
 *     R(k) becomes empty → emit L_new(k) padded.   Right padding is symmetric.
 * Rows whose key has a NULL never match (SQL `=`); in outer joins they pass through padded.
 *
 * State (per side s ∈ {l, r}): `s|rowKey(key)rowKey(row)` → count and row; outer joins also keep
 * `lc|` / `rc|rowKey(key)` → total multiplicity of the side under key (inner joins neither read nor write it). Work per epoch is proportional to the changes plus the
 * rows they join with.
 *
 * A side the planner knows holds at most one row per join key (`leftUnique`/`rightUnique`: its key
 * is among its equi-key columns) is stored by join key alone, `su|rowKey(key)` → its rows as
 * `count row` lines: the other side's changes look it up with a point read (served by the store's
 * caches) instead of a range scan (LMDB's cursor every time); an outer join reads that side's
 * total under the key from the same value (no `lc|` / `rc|`). Should a second row ever arrive under a
 * key, it is one more line: the lookup stays exact, only slower.
 */
import type { Value } from '../decode/value.ts';
import { groupBy, isMarkedConsolidated, markConsolidated, type Change, type Row } from './change.ts';
import { decodeCountedRow, type Operator, type OperatorState } from './operator.ts';
import { rowKey } from './row-key.ts';
import { encodeRow } from './value-codec.ts';

export type JoinKind = 'inner' | 'left' | 'right' | 'full';

export interface JoinOptions {
  readonly kind: JoinKind;
  /** The join key of a left row (the left sides of the `=` conditions, in order). */
  readonly leftKey: (row: Row) => readonly Value[];
  readonly rightKey: (row: Row) => readonly Value[];
  /** Column counts, for NULL padding in outer joins. */
  readonly leftWidth: number;
  readonly rightWidth: number;
  /** Match NULL keys with each other (IS NOT DISTINCT FROM); false for SQL `=`. */
  readonly nullsEqual?: boolean;
  /**
   * The left (right) input holds every row at most once and hands on consolidated batches (a
   * keyed table, an aggregate, …; GraphBuilder knows): its rows are then stored and removed
   * without reading their counts.
   */
  readonly leftDistinct?: boolean;
  readonly rightDistinct?: boolean;
  /** The left (right) input holds at most one row per join key: stored by key (see the header). */
  readonly leftUnique?: boolean;
  readonly rightUnique?: boolean;
}

type Side = 'l' | 'r';

export class JoinOperator implements Operator {
  private readonly leftOuter: boolean;
  private readonly rightOuter: boolean;
  private readonly leftNulls: Row;
  private readonly rightNulls: Row;

  constructor(
    private readonly state: OperatorState,
    private readonly options: JoinOptions,
  ) {
    this.leftOuter = options.kind === 'left' || options.kind === 'full';
    this.rightOuter = options.kind === 'right' || options.kind === 'full';
    this.leftNulls = new Array<Value>(options.leftWidth).fill(null);
    this.rightNulls = new Array<Value>(options.rightWidth).fill(null);
  }

  step([dl = [], dr = []]: readonly (readonly Change[])[]): Change[] {
    const out: Change[] = [];
    const lk = (row: Row): string | null => this.key(this.options.leftKey(row));
    const rk = (row: Row): string | null => this.key(this.options.rightKey(row));
    if (this.leftOuter) for (const c of dl) if (lk(c.row) === null) out.push(this.padLeft(c));
    if (this.rightOuter) for (const c of dr) if (rk(c.row) === null) out.push(this.padRight(c));
    const gl = groupBy(dl, lk);
    const gr = groupBy(dr, rk);
    let bothSides = false;
    for (const k of gl.keys()) if (gr.has(k)) bothSides = true;
    for (const k of new Set([...gl.keys(), ...gr.keys()]))
      this.stepKey(k, gl.get(k) ?? [], gr.get(k) ?? [], out);
    // Inner join of consolidated inputs where no key changed on both sides: every output pair is
    // distinct (a pair can only repeat, and cancel, across dL⋈R_old and L_new⋈dR).
    const inner = !this.leftOuter && !this.rightOuter;
    if (inner && !bothSides && isMarkedConsolidated(dl) && isMarkedConsolidated(dr)) markConsolidated(out);
    return out;
  }

  private stepKey(k: string, dL: Change[], dR: Change[], out: Change[]): void {
    if (!this.leftOuter && !this.rightOuter) {
      this.stepInnerKey(k, dL, dR, out);
      return;
    }
    const s = this.state;
    // A side stored by key has its total in its one value: read it, keep no count beside it.
    const lUnique = this.unique('l') ? this.rows('l', k) : null;
    const rUnique = this.unique('r') ? this.rows('r', k) : null;
    const lcOld = lUnique === null ? s.getCount('lc', k) : sum(lUnique);
    const rcOld = rUnique === null ? s.getCount('rc', k) : sum(rUnique);
    const lcNew = lcOld + sum(dL);
    const rcNew = rcOld + sum(dR);
    const rOld =
      dL.length > 0 || (this.rightOuter && lcOld === 0 && lcNew !== 0) ? (rUnique ?? this.rows('r', k)) : [];
    const lOld = this.leftOuter && rcOld === 0 && rcNew !== 0 ? (lUnique ?? this.rows('l', k)) : [];

    for (const l of dL)
      for (const r of rOld) out.push({ row: [...l.row, ...r.row], weight: l.weight * r.weight });
    this.store('l', k, dL);
    if (lUnique === null) setCount(s, 'lc', k, lcOld, lcNew);
    const lNew = dR.length > 0 || (this.leftOuter && rcOld !== 0 && rcNew === 0) ? this.rows('l', k) : [];
    for (const r of dR)
      for (const l of lNew) out.push({ row: [...l.row, ...r.row], weight: l.weight * r.weight });
    this.store('r', k, dR);
    if (rUnique === null) setCount(s, 'rc', k, rcOld, rcNew);

    if (this.leftOuter) {
      if (rcOld === 0 && rcNew === 0) for (const l of dL) out.push(this.padLeft(l));
      else if (rcOld === 0) for (const l of lOld) out.push(this.padLeft(l, -1));
      else if (rcNew === 0) for (const l of lNew) out.push(this.padLeft(l));
    }
    if (this.rightOuter) {
      if (lcOld === 0 && lcNew === 0) for (const r of dR) out.push(this.padRight(r));
      else if (lcOld === 0) for (const r of rOld) out.push(this.padRight(r, -1));
      else if (lcNew === 0) for (const r of this.rows('r', k)) out.push(this.padRight(r));
    }
  }

  /** Inner joins need no per-key totals (they only decide NULL padding): two fewer reads and writes per change. */
  private stepInnerKey(k: string, dL: Change[], dR: Change[], out: Change[]): void {
    if (dL.length > 0) {
      for (const r of this.rows('r', k))
        for (const l of dL) out.push({ row: l.row.concat(r.row), weight: l.weight * r.weight });
      this.store('l', k, dL);
    }
    if (dR.length > 0) {
      for (const l of this.rows('l', k))
        for (const r of dR) out.push({ row: l.row.concat(r.row), weight: l.weight * r.weight });
      this.store('r', k, dR);
    }
  }

  /** The rows of one side under join key `k`, with their counts as weights. */
  private rows(side: Side, k: string): Change[] {
    if (!this.unique(side)) return this.state.scanRows(side, k);
    const stored = this.state.get(UNIQUE_PART[side], k);
    return stored === undefined ? [] : decodeLines(stored);
  }

  /** Adds one side's changes under join key `k` to its state. */
  private store(side: Side, k: string, changes: readonly Change[]): void {
    const s = this.state;
    if (this.unique(side)) {
      storeByKey(s, UNIQUE_PART[side], k, changes);
      return;
    }
    const distinct = side === 'l' ? this.options.leftDistinct : this.options.rightDistinct;
    if (distinct === true)
      for (const c of changes) s.addDistinctRow(side, k + rowKey(c.row), c.row, c.weight);
    else for (const c of changes) s.addRow(side, k + rowKey(c.row), c.row, c.weight);
  }

  private unique(side: Side): boolean {
    return (side === 'l' ? this.options.leftUnique : this.options.rightUnique) === true;
  }

  private key(values: readonly Value[]): string | null {
    if (this.options.nullsEqual !== true && values.includes(null)) return null;
    return rowKey(values);
  }

  private padLeft(c: Change, sign = 1): Change {
    return { row: [...c.row, ...this.rightNulls], weight: sign * c.weight };
  }

  private padRight(c: Change, sign = 1): Change {
    return { row: [...this.leftNulls, ...c.row], weight: sign * c.weight };
  }
}

const UNIQUE_PART: Readonly<Record<Side, string>> = { l: 'lu', r: 'ru' };

/**
 * Adds `changes` to the rows stored under `k` as `count row` lines (one line when the side is
 * unique, as planned): read, summed by row identity, written back whole or deleted when empty.
 */
function storeByKey(s: OperatorState, part: string, k: string, changes: readonly Change[]): void {
  const stored = s.get(part, k);
  const first = changes[0];
  if (stored === undefined && changes.length === 1 && first !== undefined && first.weight !== 0) {
    s.put(part, k, `${first.weight} ${encodeRow(first.row)}`);
    return;
  }
  const rows = new Map<string, Change>();
  for (const c of stored === undefined ? [] : decodeLines(stored)) rows.set(rowKey(c.row), c);
  for (const c of changes) {
    const id = rowKey(c.row);
    const weight = (rows.get(id)?.weight ?? 0) + c.weight;
    if (weight === 0) rows.delete(id);
    else rows.set(id, { row: c.row, weight });
  }
  if (rows.size === 0) s.delete(part, k);
  else s.put(part, k, Array.from(rows.values(), (c) => `${c.weight} ${encodeRow(c.row)}`).join('\n'));
}

/** `count row` lines (JSON rows never hold a raw line feed). */
function decodeLines(stored: string): Change[] {
  return stored.includes('\n') ? stored.split('\n').map(decodeCountedRow) : [decodeCountedRow(stored)];
}

/**
 * Writes a per-key total read earlier in the step: nothing when it did not move (a change on one
 * side leaves the other's total as it was; `addCount` would read it again and rewrite it).
 */
function setCount(s: OperatorState, part: string, k: string, before: number, after: number): void {
  if (after === before) return;
  if (after === 0) s.delete(part, k);
  else s.put(part, k, String(after));
}

function sum(changes: readonly Change[]): number {
  let total = 0;
  for (const c of changes) total += c.weight;
  return total;
}
