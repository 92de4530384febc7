/**
 * Semi-join and anti-join: the left rows that have (semi: EXISTS, IN) or have not (anti: NOT
 * EXISTS, NOT IN) a matching right row — equal keys (NULL never matches) and, when given, a
 * residual condition over the pair that is true. Left rows come out as they are, with their
 * multiplicity; right rows only decide.
 *
 * With L/R the accumulated inputs and dL/dR this epoch's batches, per key:
 *   Δ = [f(L, R + dR) − f(L, R)] + [f(L + dL, R + dR) − f(L, R + dR)]
 * i.e. first the old left rows whose match flips with dR, then dL against the new right side.
 *
 * State, without residual: `l|rowKey(key)rowKey(row)` → count and row; `rc|rowKey(key)` → the
 * right side's multiplicity under the key (a match is rc > 0; right rows are not kept).
 * With a residual: `l|…` → count, m and row, m = how many right rows match that left row;
 * `r|rowKey(key)rowKey(row)` → count and row. Work per epoch is proportional to the changes and
 * the rows under their keys.
 */
import type { Value } from '../decode/value.ts';
import { groupBy, type Change, type Row } from './change.ts';
import type { Operator, OperatorState } from './operator.ts';
import { rowKey } from './row-key.ts';
import { decodeRow, encodeRow } from './value-codec.ts';

export interface SemiJoinOptions {
  readonly mode: 'semi' | 'anti';
  readonly leftKey: (row: Row) => readonly Value[];
  readonly rightKey: (row: Row) => readonly Value[];
  /** Over `[...left, ...right]`; a pair matches only when it is true. */
  readonly residual?: (row: Row) => Value;
}

export class SemiJoinOperator implements Operator {
  private readonly semi: boolean;

  constructor(
    private readonly state: OperatorState,
    private readonly options: SemiJoinOptions,
  ) {
    this.semi = options.mode === 'semi';
  }

  step([dl = [], dr = []]: readonly (readonly Change[])[]): Change[] {
    const out: Change[] = [];
    const gl = new Map<string, Change[]>();
    for (const c of dl) {
      const k = key(this.options.leftKey(c.row));
      // A left row whose key has a NULL never matches: dropped (semi) or passed on (anti).
      if (k === null) {
        if (!this.semi) out.push(c);
        continue;
      }
      let list = gl.get(k);
      if (list === undefined) gl.set(k, (list = []));
      list.push(c);
    }
    const gr = groupBy(dr, (row) => key(this.options.rightKey(row)));
    for (const k of new Set([...gr.keys(), ...gl.keys()])) {
      if (this.options.residual === undefined) this.stepCounted(k, gl.get(k) ?? [], gr.get(k) ?? [], out);
      else this.stepResidual(k, gl.get(k) ?? [], gr.get(k) ?? [], out);
    }
    return out;
  }

  private stepCounted(k: string, dL: readonly Change[], dR: readonly Change[], out: Change[]): void {
    const s = this.state;
    let before = s.getCount('rc', k);
    if (dR.length > 0) {
      let total = 0;
      for (const c of dR) total += c.weight;
      const [, after] = s.addCount('rc', k, total);
      if (before > 0 !== after > 0) {
        // The match flipped for every stored left row under the key.
        const sign = after > 0 === this.semi ? 1 : -1;
        for (const l of s.scanRows('l', k)) out.push({ row: l.row, weight: sign * l.weight });
      }
      before = after;
    }
    const emit = before > 0 === this.semi;
    for (const c of dL) {
      s.addRow('l', k + rowKey(c.row), c.row, c.weight);
      if (emit) out.push(c);
    }
  }

  private stepResidual(k: string, dL: readonly Change[], dR: readonly Change[], out: Change[]): void {
    const s = this.state;
    const p = this.options.residual as (row: Row) => Value;
    if (dR.length > 0) {
      for (const [lk, stored] of s.scanPrefix('l', k)) {
        const e = decodeLeft(stored);
        let delta = 0;
        for (const r of dR) if (p(e.row.concat(r.row)) === true) delta += r.weight;
        if (delta === 0) continue;
        const m = e.matches + delta;
        s.put('l', lk, encodeLeft(e.count, m, e.row));
        if (e.matches > 0 !== m > 0)
          out.push({ row: e.row, weight: m > 0 === this.semi ? e.count : -e.count });
      }
      for (const r of dR) s.addRow('r', k + rowKey(r.row), r.row, r.weight);
    }
    if (dL.length === 0) return;
    let right: Change[] | null = null;
    for (const c of dL) {
      const lk = k + rowKey(c.row);
      const stored = s.get('l', lk);
      let matches: number;
      let count = c.weight;
      if (stored !== undefined) {
        const e = decodeLeft(stored);
        matches = e.matches;
        count += e.count;
      } else {
        right ??= s.scanRows('r', k);
        matches = 0;
        for (const r of right) if (p(c.row.concat(r.row)) === true) matches += r.weight;
      }
      if (count === 0) s.delete('l', lk);
      else s.put('l', lk, encodeLeft(count, matches, c.row));
      if (matches > 0 === this.semi) out.push(c);
    }
  }
}

function key(values: readonly Value[]): string | null {
  return values.includes(null) ? null : rowKey(values);
}

function encodeLeft(count: number, matches: number, row: Row): string {
  return `${count} ${matches} ${encodeRow(row)}`;
}

function decodeLeft(stored: string): { count: number; matches: number; row: Row } {
  const a = stored.indexOf(' ');
  const b = stored.indexOf(' ', a + 1);
  return {
    count: Number(stored.slice(0, a)),
    matches: Number(stored.slice(a + 1, b)),
    row: decodeRow(stored.slice(b + 1)),
  };
}
