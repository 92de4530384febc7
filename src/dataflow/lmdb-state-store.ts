/**
 * The durable StateStore: state in an LMDB environment on local disk (lmdb-backend.ts: layout,
 * epoch log, undo). Memory stays bounded whatever the state's size: committed epochs are held in
 * memory up to `memtableBytes` before they are merged into LMDB's B-tree, the open epoch's writes
 * spill into LMDB past `spillBytes`, with an undo log of what they overwrote, and the environment
 * is re-mapped whenever the process's RSS (which counts the map's pages read) passes
 * `rssLimitBytes` and a collection of the JS heap's garbage does not bring it back under.
 *
 * Limit: LMDB keys are at most 1978 bytes; longer keys are stored in a bounded form (long-keys.ts).
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import { EpochWriteBatchStore } from './epoch-write-batch.ts';
import {
  DEFAULT_MAP_BUDGET_BYTES,
  DEFAULT_MEMTABLE_BYTES,
  DEFAULT_RSS_LIMIT_BYTES,
  LmdbBackend,
} from './lmdb-backend.ts';
import { LONG_KEY_CHARS, storedKey, storedValue, unwrapEntry } from './long-keys.ts';
import type { ScanOptions } from './state-store.ts';

export { DEFAULT_MAP_BUDGET_BYTES, DEFAULT_MEMTABLE_BYTES, DEFAULT_RSS_LIMIT_BYTES } from './lmdb-backend.ts';

export interface LmdbStateStoreOptions {
  /** Directory of the LMDB environment (created if missing); one per changefeed. */
  readonly path: string;
  /** The open epoch's writes held in memory before they spill into LMDB (default 16 MiB). */
  readonly spillBytes?: number;
  /**
   * The process's resident memory (VmRSS: heap and mapped file pages) beyond which the map's
   * pages are dropped (the environment re-mapped), as long as the map holds more than 32 MiB
   * (default 400 MiB). Below it the map keeps the pages it has read: every re-map costs the
   * next reads a page fault each, which made a re-map every 64 MiB the views' largest cost.
   * Past it, with the map within its budget, a full garbage collection is asked for first when
   * the JS heap has grown enough since the last (see `collectGarbage`): V8's uncollected garbage
   * otherwise crowded the map out (326 re-maps for 100k changes, bench/views.ts).
   */
  readonly rssLimitBytes?: number;
  /** File pages of the map beyond which it is re-mapped whatever the RSS (default 256 MiB). */
  readonly mapBudgetBytes?: number;
  /**
   * Committed writes held in memory (and in the epoch log) before those of all epochs but the
   * last are merged into the B-tree (default 64 MiB).
   */
  readonly memtableBytes?: number;
  /** fsync every commit (survives a machine crash; default false, as the change log). */
  readonly fsync?: boolean;
}

export class LmdbStateStore extends EpochWriteBatchStore {
  private constructor(
    private readonly lmdb: LmdbBackend,
    spillBytes: number | undefined,
  ) {
    super(lmdb, spillBytes === undefined ? {} : { spillBytes });
  }

  // Keys past LMDB's limit are stored in a bounded form (long-keys.ts), below every other layer.
  override get(ns: string, key: string): string | undefined {
    const stored = storedKey(key);
    const v = super.get(ns, stored);
    return v === undefined || stored === key ? v : unwrapEntry(stored, v)[1];
  }

  override put(ns: string, key: string, value: string): void {
    super.put(ns, storedKey(key), storedValue(key, value));
  }

  override insert(ns: string, key: string, value: string): void {
    super.insert(ns, storedKey(key), storedValue(key, value));
  }

  override delete(ns: string, key: string): void {
    super.delete(ns, storedKey(key));
  }

  override scanPrefix(ns: string, prefix: string, options: ScanOptions = {}): [string, string][] {
    const from = options.after === undefined ? {} : { after: storedKey(options.after) };
    if (prefix.length <= LONG_KEY_CHARS) {
      const entries = super.scanPrefix(ns, prefix, { ...options, ...from });
      return entries.map(([k, v]) => unwrapEntry(k, v));
    }
    // Only long keys can have it: scanned by its kept part, matched on the whole key.
    const out: [string, string][] = [];
    const limit = options.limit ?? Infinity;
    let after = from.after;
    for (;;) {
      const page = super.scanPrefix(ns, prefix.slice(0, LONG_KEY_CHARS), {
        ...options,
        limit: 1000,
        ...(after === undefined ? {} : { after }),
      });
      for (const [k, v] of page) {
        const entry = unwrapEntry(k, v);
        if (entry[0].startsWith(prefix)) out.push(entry);
        if (out.length >= limit) return out;
      }
      if (page.length < 1000 || options.reverse === true) return out;
      after = page[page.length - 1]![0];
    }
  }

  /** Times the map's pages were dropped to keep the RSS under the limit. */
  get remaps(): number {
    return this.lmdb.remaps;
  }

  /** Full garbage collections asked for instead of a re-map (see `rssLimitBytes`). */
  get collections(): number {
    return this.lmdb.collections;
  }

  /** Merges of committed epochs from memory into LMDB's B-tree (see `memtableBytes`). */
  get merges(): number {
    return this.lmdb.merges;
  }

  /** Opens (or creates) the store at `options.path`, showing the last committed epoch's state. */
  static open(options: LmdbStateStoreOptions): LmdbStateStore {
    let backend: LmdbBackend;
    try {
      backend = new LmdbBackend(
        options.path,
        options.rssLimitBytes ?? DEFAULT_RSS_LIMIT_BYTES,
        options.mapBudgetBytes ?? DEFAULT_MAP_BUDGET_BYTES,
        options.memtableBytes ?? DEFAULT_MEMTABLE_BYTES,
        options.fsync === true,
      );
    } catch (cause) {
      if (cause instanceof TidemarkError) throw cause;
      throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
        detail: `cannot open LMDB state at ${options.path}`,
        cause,
      });
    }
    return new LmdbStateStore(backend, options.spillBytes);
  }
}
