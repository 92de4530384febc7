/**
 * Compares a downstream with its source at one consistent position (`tidemark verify`).
 *
 *   round:  source read S1 (position P1) ─► wait: downstream checkpoint C ≥ P1 ─► downstream read D at C
 *           ─► source read S2 (begun after D) ─► per key range R still to settle:
 *                 version(S1, R) ≠ version(S2, R) ─► R changed meanwhile: next round
 *                 digest(S1, R) = digest(D, R)    ─► equal
 *                 else                            ─► rows of R from S1 and D, differences by key
 *
 * Why a settled range is compared at one position: S1 sees only commits ≤ P1 ≤ C, and D holds the
 * source as of C. S2 begins after D was read, so after the downstream committed C, so after the
 * source committed every transaction ≤ C. If R's row versions are the same in S1 and S2, no
 * commit touched R between them — in particular none in (P1, C] — so R in S1 is R at C: exactly
 * what D must hold. A range whose versions moved is read again next round (only those ranges),
 * and after `rounds` rounds verify gives up with VERIFY_NO_STABLE_READ rather than guess.
 *
 * Ranges are cut on the source (`chunkBounds`) and evaluated by each database in its own key
 * order; rows of differing ranges are matched by key across the whole table at the end, so a row
 * that one database orders into a neighbouring range is not reported twice.
 */
import type { Position } from '../core/position.ts';
import type { Row } from '../core/row.ts';
import {
  WHOLE_TABLE,
  type KeyRange,
  type SinkReadSession,
  type SourceReadSession,
} from '../core/table-read.ts';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { allRows, diffRows, TableCanon, type RowDifferences } from './table-digest.ts';

export interface VerifySides {
  /** A new read of the source (a snapshot per call). */
  openSource(): Promise<SourceReadSession>;
  /** A new read of the downstream (a snapshot per call). */
  openTarget(): Promise<SinkReadSession>;
  /** The source's position of a checkpoint's text. */
  parsePosition(text: string): Position;
}

export interface VerifyOptions {
  readonly tables: readonly TableSchema[];
  /** Rows per key range (about). */
  readonly chunkRows: number;
  /** Rounds before ranges the source keeps changing are given up on. */
  readonly rounds: number;
  /** How long to wait for the downstream to pass the source read's position, per round. */
  readonly waitMs: number;
  readonly signal?: AbortSignal;
  /** Called between steps, for a progress line. */
  readonly onProgress?: (message: string) => void;
}

export interface TableVerdict {
  readonly table: TableSchema;
  readonly ranges: number;
  /** Rows in the source (as of the rounds that settled them). */
  readonly sourceRows: number;
  readonly differingRanges: {
    readonly range: KeyRange;
    readonly sourceRows: number;
    readonly targetRows: number;
  }[];
  readonly differences: RowDifferences;
}

export interface VerifyResult {
  readonly equal: boolean;
  readonly tables: TableVerdict[];
  readonly rounds: number;
  /** The positions compared: the last round's source read and downstream checkpoint. */
  readonly sourcePosition: string;
  readonly checkpoint: { readonly position: string; readonly epoch: number };
}

interface Pending {
  readonly table: TableSchema;
  readonly canon: TableCanon;
  readonly range: KeyRange;
}

interface Acc {
  ranges: number;
  sourceRows: number;
  differingRanges: TableVerdict['differingRanges'];
  missing: Row[];
  extra: Row[];
  changed: RowDifferences['changed'];
}

export async function verifyTables(sides: VerifySides, opts: VerifyOptions): Promise<VerifyResult> {
  const acc = new Map<number, Acc>(
    opts.tables.map((t) => [
      t.relationId,
      { ranges: 0, sourceRows: 0, differingRanges: [], missing: [], extra: [], changed: [] },
    ]),
  );
  let pending: Pending[] | null = null;
  let last: { source: string; checkpoint: { position: string; epoch: number } } | null = null;
  let round = 0;
  while (pending === null || pending.length > 0) {
    if (pending !== null && round >= opts.rounds) {
      throw new TidemarkError('VERIFY_NO_STABLE_READ', {
        detail: `after ${round} rounds, ${pending.length} key range(s) changed in the source during every comparison: ${describePending(pending)}`,
      });
    }
    round++;
    opts.signal?.throwIfAborted();
    const s1 = await sides.openSource();
    let d: SinkReadSession | null = null;
    let s2: SourceReadSession | null = null;
    try {
      if (pending === null) {
        pending = [];
        for (const t of opts.tables) {
          const canon = new TableCanon(t);
          const bounds = await s1.chunkBounds(t, opts.chunkRows);
          let lower: Row | null = null;
          for (const b of bounds) {
            pending.push({ table: t, canon, range: { lower, upper: b } });
            lower = b;
          }
          pending.push({
            table: t,
            canon,
            range: bounds.length === 0 ? WHOLE_TABLE : { lower, upper: null },
          });
          acc.get(t.relationId)!.ranges = bounds.length + 1;
        }
      }
      opts.onProgress?.(
        `round ${round}: source read at ${s1.position.toString()}, waiting for the downstream to pass it`,
      );
      d = await waitForTarget(sides, s1.position, opts);
      s2 = await sides.openSource();
      last = { source: s1.position.toString(), checkpoint: d.checkpoint! };
      opts.onProgress?.(
        `round ${round}: comparing ${pending.length} range(s) at checkpoint ${d.checkpoint!.position}`,
      );
      const next: Pending[] = [];
      for (const p of pending) {
        opts.signal?.throwIfAborted();
        const [v1, v2] = [await s1.rangeVersion(p.table, p.range), await s2.rangeVersion(p.table, p.range)];
        const src = await p.canon.digest(s1.readRows(p.table, p.range));
        if (v1 === null || v2 === null) {
          // No row versions: compare the values read in both source snapshots instead.
          const again = await p.canon.digest(s2.readRows(p.table, p.range));
          if (again.rows !== src.rows || again.sum !== src.sum) {
            next.push(p);
            continue;
          }
        } else if (v1 !== v2) {
          next.push(p);
          continue;
        }
        const a = acc.get(p.table.relationId)!;
        a.sourceRows += src.rows;
        const tgt = await p.canon.digest(d.readRows(p.table, p.range));
        if (tgt.rows === src.rows && tgt.sum === src.sum) continue;
        a.differingRanges.push({ range: p.range, sourceRows: src.rows, targetRows: tgt.rows });
        const diff = diffRows(
          p.canon,
          await allRows(s1.readRows(p.table, p.range)),
          await allRows(d.readRows(p.table, p.range)),
        );
        a.missing.push(...diff.missing);
        a.extra.push(...diff.extra);
        a.changed.push(...diff.changed);
      }
      pending = next;
    } finally {
      await Promise.all([s1.close(), d?.close(), s2?.close()]);
    }
  }
  const tables: TableVerdict[] = opts.tables.map((t) => {
    const a = acc.get(t.relationId)!;
    // Rows one database ordered into another range than the other: matched by key here.
    const merged = diffRows(new TableCanon(t), a.missing, a.extra);
    return {
      table: t,
      ranges: a.ranges,
      sourceRows: a.sourceRows,
      differingRanges: a.differingRanges,
      differences: {
        missing: merged.missing,
        extra: merged.extra,
        changed: [...a.changed, ...merged.changed],
      },
    };
  });
  return {
    equal: tables.every((v) => countDifferences(v) === 0),
    tables,
    rounds: round,
    sourcePosition: last!.source,
    checkpoint: last!.checkpoint,
  };
}

export function countDifferences(v: TableVerdict): number {
  return v.differences.missing.length + v.differences.extra.length + v.differences.changed.length;
}

/** Opens downstream reads until one sees a checkpoint at or after `position`. */
async function waitForTarget(
  sides: VerifySides,
  position: Position,
  opts: VerifyOptions,
): Promise<SinkReadSession> {
  const deadline = Date.now() + opts.waitMs;
  let delayMs = 50;
  for (;;) {
    const d = await sides.openTarget();
    const cp = d.checkpoint;
    if (cp && sides.parsePosition(cp.position).compare(position) >= 0) return d;
    await d.close();
    if (Date.now() >= deadline) {
      throw new TidemarkError('VERIFY_NOT_CAUGHT_UP', {
        detail: cp
          ? `the downstream's checkpoint is ${cp.position} (epoch ${cp.epoch}), before the source position ${position.toString()} verify read at; waited ${opts.waitMs} ms`
          : `the downstream holds no checkpoint of this changefeed (it never committed its snapshot); waited ${opts.waitMs} ms`,
      });
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, delayMs);
      opts.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(opts.signal?.reason as Error);
        },
        { once: true },
      );
    });
    delayMs = Math.min(1000, delayMs * 2);
  }
}

function describePending(pending: readonly Pending[]): string {
  const shown = pending.slice(0, 5).map((p) => `${qualifiedName(p.table)} ${formatRange(p.range)}`);
  return shown.join('; ') + (pending.length > 5 ? `; and ${pending.length - 5} more` : '');
}

/** `(lower, upper]` with key cells as text; ∞ for an open end. */
export function formatRange(r: KeyRange): string {
  const cells = (k: Row) => k.map((c) => (c === null ? 'NULL' : JSON.stringify(c))).join(', ');
  return `(${r.lower === null ? '-∞' : cells(r.lower)} .. ${r.upper === null ? '+∞' : cells(r.upper)}]`;
}
