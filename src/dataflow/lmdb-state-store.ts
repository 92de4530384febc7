/**
 * The durable StateStore: committed state in an LMDB environment on local disk (memory-mapped,
 * so state larger than memory spills to the page cache and disk). One LMDB write transaction per
 * epoch carries the epoch's writes and the epoch number, so a crash leaves the state of the last
 * committed epoch. Keys are the UTF-8 bytes of `ns|key` (binary key encoding: LMDB's byte order
 * is the order state-store.ts relies on); values are strings. See state-store.ts for the layout.
 *
 * Limit: LMDB keys are at most 1978 bytes, so rows keyed into state (join, distinct, top-n,
 * ordered aggregates) must stay below that; longer keys fail with DATAFLOW_UNSUPPORTED_VALUE.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { EpochWriteBatchStore, type OrderedBackend, type UndoRecord } from './epoch-write-batch.ts';

const EPOCH_KEY = Buffer.from('meta|epoch', 'utf8');
/** The undo record of the last committed epoch, one JSON value: {e, p, w: [[key, value|null]…]}. */
const UNDO_KEY = Buffer.from('meta|undo', 'utf8');
const MAX_KEY_BYTES = 1978;

class LmdbBackend implements OrderedBackend {
  /** undefined until read from disk. */
  private undoCache: UndoRecord | null | undefined = undefined;

  constructor(private readonly db: Database<string, Buffer>) {}

  get(fullKey: string): string | undefined {
    return this.db.get(Buffer.from(fullKey, 'utf8'));
  }

  *range(from: string, reverse: boolean): Generator<[string, string]> {
    for (const { key, value } of this.db.getRange({ start: Buffer.from(from, 'utf8'), reverse })) {
      yield [key.toString('utf8'), value];
    }
  }

  write(
    writes: Iterable<readonly [string, string | undefined]>,
    epoch: number | null,
    undo: UndoRecord | null,
  ): Promise<void> {
    this.db.transactionSync(() => {
      for (const [key, value] of writes) {
        const bytes = Buffer.from(key, 'utf8');
        if (bytes.length > MAX_KEY_BYTES) {
          throw new TidemarkError('DATAFLOW_UNSUPPORTED_VALUE', {
            detail: `state key of ${bytes.length} bytes exceeds LMDB's ${MAX_KEY_BYTES}: ${key.slice(0, 60)}…`,
            hint: 'Key, group or order views by shorter values, or use the memory state store.',
          });
        }
        if (value === undefined) this.db.removeSync(bytes);
        else this.db.putSync(bytes, value);
      }
      if (epoch === null) this.db.removeSync(EPOCH_KEY);
      else this.db.putSync(EPOCH_KEY, String(epoch));
      if (undo === null) this.db.removeSync(UNDO_KEY);
      else
        this.db.putSync(
          UNDO_KEY,
          JSON.stringify({
            e: undo.epoch,
            p: undo.previousEpoch,
            w: undo.entries.map(([k, v]) => [k, v ?? null]),
          }),
        );
    });
    this.undoCache = undo;
    return Promise.resolve();
  }

  committedEpoch(): number | null {
    const v = this.db.get(EPOCH_KEY);
    return v === undefined ? null : Number(v);
  }

  undoRecord(): UndoRecord | null {
    if (this.undoCache !== undefined) return this.undoCache;
    const text = this.db.get(UNDO_KEY);
    if (text === undefined) return (this.undoCache = null);
    try {
      const j = JSON.parse(text) as { e: number; p: number | null; w: [string, string | null][] };
      this.undoCache = { epoch: j.e, previousEpoch: j.p, entries: j.w.map(([k, v]) => [k, v ?? undefined]) };
    } catch (cause) {
      throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
        detail: 'the undo record is not valid JSON',
        cause,
      });
    }
    return this.undoCache;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

export interface LmdbStateStoreOptions {
  /** Directory of the LMDB environment (created if missing); one per changefeed. */
  readonly path: string;
}

export class LmdbStateStore extends EpochWriteBatchStore {
  private constructor(backend: LmdbBackend) {
    super(backend);
  }

  /** Opens (or creates) the store at `options.path`, showing the last committed epoch's state. */
  static open(options: LmdbStateStoreOptions): LmdbStateStore {
    let db: RootDatabase<string, Buffer>;
    try {
      db = open<string, Buffer>({ path: options.path, keyEncoding: 'binary', encoding: 'string' });
    } catch (cause) {
      throw new TidemarkError('DATAFLOW_STATE_CORRUPT', {
        detail: `cannot open LMDB state at ${options.path}`,
        cause,
      });
    }
    return new LmdbStateStore(new LmdbBackend(db));
  }
}
