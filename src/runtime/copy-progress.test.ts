/**
 * Copy progress made valid by the sink's checkpoint: entries past it are from an attempt whose
 * epoch did not commit, and epoch numbers are reused — a stale entry must never be taken for
 * the progress of the attempt that commits under the same number.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TableSchema } from '../core/table-schema.ts';
import { CopyProgressStore } from './copy-progress.ts';
import type { CopyProgress } from './table-copy.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function path(): string {
  const d = mkdtempSync(join(tmpdir(), 'copy-progress-'));
  dirs.push(d);
  return CopyProgressStore.pathFor(d, 'cf');
}

const table = (relationId: number): TableSchema => ({
  schema: 'public',
  name: `t${relationId}`,
  relationId,
  columns: [],
  keyColumns: [],
  keyless: false,
  enums: [],
});
const at = (relationId: number, rows: number, phase: CopyProgress['phase'] = 'copying'): CopyProgress => ({
  table: table(relationId),
  lastKey: [String(rows)],
  rows,
  chunks: rows / 10,
  phase,
});

describe('CopyProgressStore', () => {
  it('keeps only entries at or before the sink checkpoint', () => {
    const p = path();
    const s = CopyProgressStore.open(p, null);
    s.save(1, [at(7, 10)]);
    s.save(2, [at(7, 20)]);
    expect(CopyProgressStore.open(p, 1).committed().get(7)?.rows).toBe(10);
    expect(CopyProgressStore.open(p, null).committed().size).toBe(0);
  });

  it('a table saved by an uncommitted epoch is not revived when that epoch number is reused', () => {
    const p = path();
    const s = CopyProgressStore.open(p, null);
    s.save(1, [at(7, 10)]);
    s.save(2, [at(7, 20), at(8, 50)]); // epoch 2 never commits
    // Restart at checkpoint 1: epoch 2 is built again, this time without table 8.
    const again = CopyProgressStore.open(p, 1);
    again.save(2, [at(7, 30)]);
    // Crash after epoch 2 committed: table 8's stale entry must not count.
    const after = CopyProgressStore.open(p, 2).committed();
    expect(after.get(7)?.rows).toBe(30);
    expect(after.has(8)).toBe(false);
  });

  it('opening drops stale entries from the file at once, before any new epoch is saved', () => {
    const p = path();
    const s = CopyProgressStore.open(p, null);
    s.save(1, [at(7, 10)]);
    s.save(2, [at(8, 50)]); // not committed
    CopyProgressStore.open(p, 1); // restart; crashes again before saving anything
    // Epoch 2 is then committed by an attempt that carried no copy progress.
    expect(CopyProgressStore.open(p, 2).committed().has(8)).toBe(false);
  });

  it('retain forgets unselected tables and swapped tables the hub has recorded', () => {
    const p = path();
    const s = CopyProgressStore.open(p, null);
    s.save(1, [at(7, 10), at(8, 10, 'swapped'), at(9, 10, 'swapped'), at(10, 10)]);
    s.retain(new Set([7, 8, 9]), new Set([8]));
    const left = CopyProgressStore.open(p, 1).committed();
    expect([...left.keys()].sort()).toEqual([7, 9]);
  });

  it('retain names the unfinished copies it gives up (the hub forgets them: selected again, they are copied)', () => {
    const p = path();
    const s = CopyProgressStore.open(p, null);
    s.save(1, [at(7, 10), at(8, 10, 'swapped')]);
    expect([...s.retain(new Set(), new Set())]).toEqual([7]);
  });

  it('every configured request taken stays taken across restarts, however many a table has', () => {
    const p = path();
    const requests = ['2026-01', '2026-02', '2026-03', '2026-04', '2026-05'];
    let s = CopyProgressStore.open(p, null);
    for (const r of requests) s.take(7, r);
    s.save(1, []);
    // Restarts: nothing is due again (a reviewer saw one re-copy per restart, cycling, before).
    for (let epoch = 2; epoch < 8; epoch++) {
      s = CopyProgressStore.open(p, epoch - 1);
      s.keepRequests(requests);
      expect(requests.filter((r) => !s.hasTaken(7, r))).toEqual([]);
      s.save(epoch, []);
    }
    // A request the configuration no longer lists is forgotten.
    s = CopyProgressStore.open(p, 7);
    s.keepRequests(['2026-05']);
    s.save(8, []);
    s = CopyProgressStore.open(p, 8);
    expect(s.hasTaken(7, '2026-05')).toBe(true);
    expect(s.hasTaken(7, '2026-01')).toBe(false);
  });

  it('a request taken by an epoch that did not commit is not taken', () => {
    const p = path();
    const s = CopyProgressStore.open(p, null);
    s.take(7, 'r1');
    s.save(1, []);
    expect(CopyProgressStore.open(p, 1).hasTaken(7, 'r1')).toBe(true);
    expect(CopyProgressStore.open(p, 0).hasTaken(7, 'r1')).toBe(false);
  });
});
