/**
 * The durable record of who reads a change log and how far each has acknowledged: what the log
 * and the source must keep. A JSON file beside the log (`subscriptions.json`), replaced
 * atomically and fsynced (file, then directory) before the hub lets the source discard anything:
 * the log itself is not fsynced (a machine crash may cost its tail, refilled from the source), so
 * this file alone decides how far the source may be acknowledged.
 *
 *   subscribe(id, P) ─► pending ─flush()─► durable ─► min over durable positions ─► source ack, log clean
 *   acknowledge(id, P′)   (in memory until the next flush)
 */
import { readFileSync } from 'node:fs';
import { writeFileDurably } from './durable-file.ts';
import { join } from 'node:path';
import type { Position, PositionCodec } from '../core/position.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

const FILE = 'subscriptions.json';
const VERSION = 1;

/** One subscriber's record. */
export interface SubscriptionRecord<P extends Position = Position> {
  readonly id: string;
  /** Everything at or before this position is durable in the subscriber's sink. */
  readonly position: P;
  /** When it registered (ms since the Unix epoch). */
  readonly registeredAtMs: number;
  /** When it last acknowledged a new position (ms); stale subscriptions are found by it. */
  readonly acknowledgedAtMs: number;
  /**
   * The tables it replicates, by stable id (with the name they had when recorded): what it took
   * a snapshot of, so a table that joins the selection later — or another table under a known
   * name — is never streamed as if it had been copied. Null: never recorded (a file written
   * before records existed) — not the same as an empty set, which is a record.
   */
  readonly tables: readonly RecordedTable[] | null;
}

export interface RecordedTable {
  readonly id: number;
  readonly schema: string;
  readonly name: string;
}

interface FileShape {
  version: number;
  subscriptions: {
    id: string;
    position: string;
    registeredAtMs: number;
    acknowledgedAtMs: number;
    tables?: RecordedTable[];
  }[];
}

export class SubscriptionStore<P extends Position = Position> {
  private readonly path: string;
  private current = new Map<string, SubscriptionRecord<P>>();
  private durable = new Map<string, SubscriptionRecord<P>>();
  private dirty = false;

  private constructor(dir: string) {
    this.path = join(dir, FILE);
  }

  /** Reads the store of the log in `dir` (none yet: empty). A damaged file is CHANGELOG_CORRUPT. */
  static open<P extends Position>(dir: string, codec: PositionCodec<P>): SubscriptionStore<P> {
    const store = new SubscriptionStore<P>(dir);
    let text: string | null = null;
    try {
      text = readFileSync(store.path, 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') {
        throw new TidemarkError('CHANGELOG_CORRUPT', { detail: `cannot read ${store.path}`, cause: err });
      }
    }
    if (text !== null) {
      try {
        const parsed = JSON.parse(text) as FileShape;
        if (parsed.version !== VERSION) throw new Error(`version ${String(parsed.version)}`);
        for (const s of parsed.subscriptions) {
          const rec = { ...s, position: codec.parse(s.position), tables: s.tables ?? null };
          store.current.set(s.id, rec);
          store.durable.set(s.id, rec);
        }
      } catch (cause) {
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `${store.path} is damaged`,
          // Unlike the log, nothing refills it: retrying cannot heal it.
          retriable: false,
          hint: 'Restore it, or delete it and restart every changefeed of this source: each registers again at its sink checkpoint (a changefeed that is not restarted no longer holds the source).',
          cause,
        });
      }
    }
    return store;
  }

  get(id: string): SubscriptionRecord<P> | null {
    return this.current.get(id) ?? null;
  }

  all(): SubscriptionRecord<P>[] {
    return [...this.current.values()];
  }

  /** Registers `id` at `position` (replacing any earlier record), durable at the next flush. */
  register(id: string, position: P, tables: readonly RecordedTable[], nowMs = Date.now()): void {
    this.current.set(id, {
      id,
      position,
      registeredAtMs: nowMs,
      acknowledgedAtMs: nowMs,
      tables: [...tables],
    });
    this.dirty = true;
  }

  /** Replaces the tables `id` replicates (a table added, dropped, renamed). */
  setTables(id: string, tables: readonly RecordedTable[]): void {
    const rec = this.current.get(id);
    if (!rec) return;
    this.current.set(id, { ...rec, tables: [...tables] });
    this.dirty = true;
  }

  /** Records that `id`'s sink holds everything up to `position` (never moves back). */
  acknowledge(id: string, position: P, nowMs = Date.now()): void {
    const rec = this.current.get(id);
    if (!rec || position.compare(rec.position) <= 0) return;
    this.current.set(id, { ...rec, position, acknowledgedAtMs: nowMs });
    this.dirty = true;
  }

  /** Forgets `id`: it no longer holds the log or the source. Durable at the next flush. */
  remove(id: string): boolean {
    const had = this.current.delete(id);
    if (had) this.dirty = true;
    return had;
  }

  /** Writes the records durably when they changed; returns whether it wrote. */
  flush(): boolean {
    if (!this.dirty) return false;
    const shape: FileShape = {
      version: VERSION,
      subscriptions: [...this.current.values()].map((s) => ({
        id: s.id,
        position: s.position.toString(),
        registeredAtMs: s.registeredAtMs,
        acknowledgedAtMs: s.acknowledgedAtMs,
        ...(s.tables === null ? {} : { tables: [...s.tables] }),
      })),
    };
    try {
      writeFileDurably(this.path, JSON.stringify(shape, null, 1));
    } catch (cause) {
      const code = (cause as { code?: string }).code;
      throw new TidemarkError(code === 'ENOSPC' || code === 'EDQUOT' ? 'CHANGELOG_DISK_FULL' : 'INTERNAL', {
        detail: `writing ${this.path}: ${String((cause as Error).message ?? cause)}`,
        cause,
      });
    }
    this.durable = new Map(this.current);
    this.dirty = false;
    return true;
  }

  /**
   * The smallest position any subscriber still needs after (null: no subscriber): the minimum
   * over the records as they are and as they were last written, so that neither a registration
   * not yet durable nor a removal not yet durable lets the log or the source drop too much.
   */
  minPosition(): P | null {
    let min: P | null = null;
    for (const m of [this.current, this.durable]) {
      for (const s of m.values()) if (!min || s.position.compare(min) < 0) min = s.position;
    }
    return min;
  }
}
