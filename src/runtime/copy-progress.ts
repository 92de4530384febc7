/**
 * Where online copies stand, kept beside the changefeed's local state and made valid by the
 * sink's checkpoint: every entry names the epoch that carries it, and is written (fsynced)
 * *before* that epoch commits. On start only entries at or before the sink's checkpoint epoch
 * count — so a copy's progress is exactly what committed downstream, and a crash between the
 * write and the commit costs at most the chunks of the epoch that did not commit.
 *
 * Epoch numbers are reused: an epoch that did not commit is built again under the same number,
 * possibly with other progress. So the entries past the checkpoint are removed from the file as
 * soon as it is opened (before this attempt can commit anything), and saving epoch N removes
 * every entry at N or later first: an entry at or before the checkpoint was always written by
 * the attempt whose epoch committed.
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

/** A re-copy asked for in the configuration (`resnapshot`), taken by the copy that epoch carried. */
interface Taken {
  readonly epoch: number;
  readonly request: string;
}

export class CopyProgressStore {
  private entries = new Map<number, Entry[]>();
  /** Per table, the configured re-copy requests taken (valid, like entries, up to the checkpoint). */
  private taken = new Map<number, Taken[]>();
  /** Taken by a copy started since the last save: made durable with the next epoch's progress. */
  private takenPending = new Map<number, Set<string>>();

  private constructor(private readonly path: string) {}

  static pathFor(dataDir: string, changefeedId: string): string {
    return join(dataDir, 'copies', `${encodeURIComponent(changefeedId)}.json`);
  }

  /** The directory of a changefeed's spilled keyless reads (row-spill.ts). */
  static spillDirFor(dataDir: string, changefeedId: string): string {
    return join(dataDir, 'copies', 'spill', encodeURIComponent(changefeedId));
  }

  /** Where the online copy of table `relationId` spills a keyless table's read. */
  static spillPathFor(dataDir: string, changefeedId: string, relationId: number): string {
    return join(CopyProgressStore.spillDirFor(dataDir, changefeedId), `${relationId}.rows`);
  }

  /** Where the online copy of table `relationId` spills the changes held while it is read. */
  static heldSpillPathFor(dataDir: string, changefeedId: string, relationId: number): string {
    return join(CopyProgressStore.spillDirFor(dataDir, changefeedId), `${relationId}.held.rows`);
  }

  /** Reads the file; keeps, per table, the entries up to `sinkEpoch` (null: nothing committed). */
  static open(path: string, sinkEpoch: number | null): CopyProgressStore {
    const s = new CopyProgressStore(path);
    let raw: { tables?: Record<string, Entry[]>; taken?: Record<string, Taken[]> } = {};
    try {
      raw = JSON.parse(readFileSync(path, 'utf8')) as typeof raw;
    } catch {
      raw = {};
    }
    let dropped = false;
    for (const [id, list] of Object.entries(raw.tables ?? {})) {
      const kept = sinkEpoch === null ? [] : list.filter((e) => e.epoch <= sinkEpoch);
      if (kept.length < list.length) dropped = true;
      if (kept.length > 0) s.entries.set(Number(id), [kept.at(-1)!]);
    }
    for (const [id, list] of Object.entries(raw.taken ?? {})) {
      const kept = sinkEpoch === null ? [] : list.filter((e) => e.epoch <= sinkEpoch);
      if (kept.length < list.length) dropped = true;
      if (kept.length > 0) s.taken.set(Number(id), kept);
    }
    if (dropped) s.write();
    return s;
  }

  /** The last committed progress of every table. */
  committed(): Map<number, CopyProgress> {
    const out = new Map<number, CopyProgress>();
    for (const [id, list] of this.entries) out.set(id, list.at(-1)!.progress);
    return out;
  }

  /** True when the configured re-copy `request` of table `tableId` was taken by a committed epoch. */
  hasTaken(tableId: number, request: string): boolean {
    return (
      this.takenPending.get(tableId)?.has(request) === true ||
      (this.taken.get(tableId) ?? []).some((t) => t.request === request)
    );
  }

  /** A copy of `tableId` started for `request`: taken once the next saved epoch commits. */
  take(tableId: number, request: string): void {
    const pending = this.takenPending.get(tableId) ?? new Set();
    pending.add(request);
    this.takenPending.set(tableId, pending);
  }

  /**
   * Forgets the taken requests the configuration no longer lists (every listed one is kept,
   * however many: a request dropped from the record would be taken again). In memory; written
   * with the next save.
   */
  keepRequests(listed: readonly string[]): void {
    const keep = new Set(listed);
    for (const [id, list] of this.taken) {
      const kept = list.filter((t) => keep.has(t.request));
      if (kept.length > 0) this.taken.set(id, kept);
      else this.taken.delete(id);
    }
  }

  /** True when `save` has something to write even without copy progress. */
  get hasPending(): boolean {
    return this.takenPending.size > 0;
  }

  /** Progress carried by epoch `epoch` (not committed yet): durable before it returns. */
  save(epoch: number, progress: readonly CopyProgress[]): void {
    // Entries at `epoch` or later are from an attempt whose epoch did not commit.
    for (const map of [this.entries, this.taken] as Map<number, { epoch: number }[]>[]) {
      for (const [id, list] of map) {
        const older = list.filter((e) => e.epoch < epoch);
        if (older.length > 0) map.set(id, older);
        else map.delete(id);
      }
    }
    for (const p of progress) {
      const list = this.entries.get(p.table.relationId) ?? [];
      list.push({ epoch, progress: p });
      this.entries.set(p.table.relationId, list);
    }
    for (const [id, requests] of this.takenPending) {
      const list = this.taken.get(id) ?? [];
      for (const request of requests) list.push({ epoch, request });
      this.taken.set(id, list);
    }
    this.takenPending.clear();
    this.write();
  }

  /**
   * Forgets the tables not in `selected` (a table selected again later is copied again) and the
   * swapped tables in `recorded` (the hub's durable record of replicated tables has them now).
   * Returns the tables whose unfinished copy was given up: the caller removes them from the
   * hub's record, which may list them (an initial snapshot records its tables before copying).
   */
  retain(selected: ReadonlySet<number>, recorded: ReadonlySet<number>): Set<number> {
    const abandoned = new Set<number>();
    let changed = false;
    for (const [id, list] of this.entries) {
      const phase = list.at(-1)!.progress.phase;
      if (selected.has(id) && !(recorded.has(id) && phase === 'swapped')) continue;
      this.entries.delete(id);
      changed = true;
      if (phase === 'copying') abandoned.add(id);
    }
    if (changed) this.write();
    return abandoned;
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
    const taken: Record<string, Taken[]> = {};
    for (const [id, list] of this.taken) taken[String(id)] = list;
    writeFileDurably(this.path, JSON.stringify({ version: 1, tables, taken }));
  }
}
