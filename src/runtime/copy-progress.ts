/**
 * Where online copies stand, kept beside the changefeed's local state and made valid by the
 * sink's checkpoint: every entry names the epoch that carries it, and is written (fsynced)
 * *before* that epoch commits. On start only entries at or before the sink's checkpoint epoch
 * count — so a copy's progress is exactly what committed downstream, and a crash between the
 * write and the commit costs at most the chunks of the epoch that did not commit.
 *
 * File: `<dataDir>/copies/<changefeed id>.json`, replaced atomically.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileDurably } from '../log/durable-file.ts';
import { dirname, join } from 'node:path';
import type { CopyProgress } from './table-copy.ts';

interface Entry {
  readonly epoch: number;
  readonly progress: CopyProgress;
}

export class CopyProgressStore {
  private entries = new Map<number, Entry[]>();

  private constructor(private readonly path: string) {}

  static pathFor(dataDir: string, changefeedId: string): string {
    return join(dataDir, 'copies', `${encodeURIComponent(changefeedId)}.json`);
  }

  /** Reads the file; keeps, per table, the entries up to `sinkEpoch` (null: nothing committed). */
  static open(path: string, sinkEpoch: number | null): CopyProgressStore {
    const s = new CopyProgressStore(path);
    let raw: { tables?: Record<string, Entry[]> } = {};
    try {
      raw = JSON.parse(readFileSync(path, 'utf8')) as typeof raw;
    } catch {
      raw = {};
    }
    for (const [id, list] of Object.entries(raw.tables ?? {})) {
      const kept = sinkEpoch === null ? [] : list.filter((e) => e.epoch <= sinkEpoch);
      if (kept.length > 0) s.entries.set(Number(id), [kept.at(-1)!]);
    }
    return s;
  }

  /** The last committed progress of every table. */
  committed(): Map<number, CopyProgress> {
    const out = new Map<number, CopyProgress>();
    for (const [id, list] of this.entries) out.set(id, list.at(-1)!.progress);
    return out;
  }

  /** Progress carried by epoch `epoch` (not committed yet): durable before it returns. */
  save(epoch: number, progress: readonly CopyProgress[]): void {
    for (const p of progress) {
      const list = (this.entries.get(p.table.relationId) ?? []).filter((e) => e.epoch < epoch);
      list.push({ epoch, progress: p });
      this.entries.set(p.table.relationId, list);
    }
    this.write();
  }

  /** Epoch `epoch` committed: older entries are no longer needed. */
  committedUpTo(epoch: number): void {
    for (const [id, list] of this.entries) {
      const upTo = list.filter((e) => e.epoch <= epoch);
      if (upTo.length > 1) this.entries.set(id, [upTo.at(-1)!, ...list.filter((e) => e.epoch > epoch)]);
    }
  }

  /** Forgets a table (dropped, or swapped in and recorded by the hub). */
  forget(tableId: number): void {
    if (this.entries.delete(tableId)) this.write();
  }

  private write(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tables: Record<string, Entry[]> = {};
    for (const [id, list] of this.entries) tables[String(id)] = list;
    writeFileDurably(this.path, JSON.stringify({ version: 1, tables }));
  }
}
