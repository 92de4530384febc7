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
 * `sc|rowKey(key)` → total multiplicity of side s under key (inner joins neither read nor write it). Work per epoch is proportional to the changes plus the
 * rows they join with.
 */
import type { Value } from '../decode/value.ts';
import { groupBy, isMarkedConsolidated, markConsolidated, type Change, type Row } from './change.ts';
import type { Operator, OperatorState } from './operator.ts';
import { rowKey } from './row-key.ts';

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
}

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
    const lcOld = s.getCount('lc', k);
    const rcOld = s.getCount('rc', k);
    const lcNew = lcOld + sum(dL);
    const rcNew = rcOld + sum(dR);
    const rOld = dL.length > 0 || (this.rightOuter && lcOld === 0 && lcNew !== 0) ? s.scanRows('r', k) : [];
    const lOld = this.leftOuter && rcOld === 0 && rcNew !== 0 ? s.scanRows('l', k) : [];

    for (const l of dL)
      for (const r of rOld) out.push({ row: [...l.row, ...r.row], weight: l.weight * r.weight });
    this.store('l', k, dL);
    s.addCount('lc', k, lcNew - lcOld);
    const lNew = dR.length > 0 || (this.leftOuter && rcOld !== 0 && rcNew === 0) ? s.scanRows('l', k) : [];
    for (const r of dR)
      for (const l of lNew) out.push({ row: [...l.row, ...r.row], weight: l.weight * r.weight });
    this.store('r', k, dR);
    s.addCount('rc', k, rcNew - rcOld);

    if (this.leftOuter) {
      if (rcOld === 0 && rcNew === 0) for (const l of dL) out.push(this.padLeft(l));
      else if (rcOld === 0) for (const l of lOld) out.push(this.padLeft(l, -1));
      else if (rcNew === 0) for (const l of lNew) out.push(this.padLeft(l));
    }
    if (this.rightOuter) {
      if (lcOld === 0 && lcNew === 0) for (const r of dR) out.push(this.padRight(r));
      else if (lcOld === 0) for (const r of rOld) out.push(this.padRight(r, -1));
      else if (lcNew === 0) for (const r of s.scanRows('r', k)) out.push(this.padRight(r));
    }
  }

  /** Inner joins need no per-key totals (they only decide NULL padding): two fewer reads and writes per change. */
  private stepInnerKey(k: string, dL: Change[], dR: Change[], out: Change[]): void {
    const s = this.state;
    if (dL.length > 0) {
      for (const r of s.scanRows('r', k))
        for (const l of dL) out.push({ row: l.row.concat(r.row), weight: l.weight * r.weight });
      this.store('l', k, dL);
    }
    if (dR.length > 0) {
      for (const l of s.scanRows('l', k))
        for (const r of dR) out.push({ row: l.row.concat(r.row), weight: l.weight * r.weight });
      this.store('r', k, dR);
    }
  }

  /** Adds one side's changes under join key `k` to its state. */
  private store(side: 'l' | 'r', k: string, changes: readonly Change[]): void {
    const s = this.state;
    const distinct = side === 'l' ? this.options.leftDistinct : this.options.rightDistinct;
    if (distinct === true)
      for (const c of changes) s.addDistinctRow(side, k + rowKey(c.row), c.row, c.weight);
    else for (const c of changes) s.addRow(side, k + rowKey(c.row), c.row, c.weight);
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

function sum(changes: readonly Change[]): number {
  let total = 0;
  for (const c of changes) total += c.weight;
  return total;
}
