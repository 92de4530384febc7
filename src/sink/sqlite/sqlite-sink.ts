/**
 * Exactly-once sink into one SQLite file (`sqlite:///abs/path/file.db`).
 *
 *   writeSnapshot / commitEpoch ──► BEGIN IMMEDIATE
 *                                   ├─ create / alter target tables
 *                                   ├─ truncate · deletes · upserts · partial updates · row deltas
 *                                   ├─ upsert tidemark_checkpoints(changefeed, position, epoch)
 *                                   └─ COMMIT   (data and checkpoint visible together)
 *
 * An epoch in chunks (`beginEpoch`) is the same transaction, begun with its first chunk, each
 * chunk applied as a whole epoch would be; the checkpoint check waits for the commit (it needs
 * the epoch number).
 *
 * WAL journal mode, so readers keep reading the last committed epoch while one is written.
 * Tables of schema `public` keep their name; others are named `schema.table` (one identifier).
 */
import { openSqliteSinkRead } from './read-session.ts';
import type { SinkReadSession } from '../../core/table-read.ts';
import Database from 'better-sqlite3';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { EpochWriter, Sink, SnapshotWriteOptions } from '../sink.ts';
import type { Checkpoint, Epoch, SnapshotRows, TableChanges } from '../../core/epoch.ts';
import { CheckpointFence, type StoredCheckpoint } from '../shared/checkpoint-fence.ts';
import { EpochWriterSlot } from '../shared/epoch-writer-slot.ts';
import { SqliteTableWriter, sqliteIdent, sqliteTableName } from './sqlite-table-writer.ts';
import { NUMERIC_SCALE_FUNCTION, numericScale, sqliteAlterStatements } from './sqlite-schema.ts';

export interface SqliteSinkOptions {
  /** `sqlite:///abs/path/file.db` */
  readonly uri: string;
  /** The changefeed's id: the key of its row in `tidemark_checkpoints`. */
  readonly changefeedId: string;
}

export function sqlitePathFromUri(uri: string): string {
  let u: URL;
  try {
    u = new URL(uri);
  } catch (cause) {
    throw new TidemarkError('CONFIG_INVALID', { detail: `sink URI is not a URI: ${uri}`, cause });
  }
  if (u.protocol !== 'sqlite:' || !u.pathname.startsWith('/') || u.pathname === '/') {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `sink URI ${uri}: expected sqlite:///absolute/path/file.db`,
    });
  }
  return decodeURIComponent(u.pathname);
}

/**
 * Opens the file as the sink uses it: WAL journal (readers keep the last committed epoch while
 * the next is written) and `synchronous = FULL`, so every COMMIT is on disk when it returns — the
 * source is acknowledged up to it, so an epoch lost to a power failure (which `NORMAL` allows in
 * WAL mode) would be lost for good.
 */
export function openSqliteDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 10000');
  return db;
}

export function createSqliteSink(options: SqliteSinkOptions): SqliteSink {
  return new SqliteSink(options);
}

export class SqliteSink implements Sink {
  readonly guarantee = 'exactly-once' as const;
  readonly snapshotsByTable = true;
  readonly #path: string;
  readonly #changefeedId: string;
  #db: Database.Database | null = null;
  readonly #writers = new Map<string, SqliteTableWriter>();
  readonly #epochSlot = new EpochWriterSlot('sqlite sink');
  readonly #fence: CheckpointFence;

  constructor(options: SqliteSinkOptions) {
    this.#path = sqlitePathFromUri(options.uri);
    this.#changefeedId = options.changefeedId;
    this.#fence = new CheckpointFence(`sqlite sink ${this.#path}`);
  }

  /** Opens (creating) the file, switches to WAL, creates `tidemark_checkpoints`, reads ours. */
  async open(): Promise<Checkpoint | null> {
    const db = this.#guard('opening the database', () => {
      const db = openSqliteDatabase(this.#path);
      db.function(NUMERIC_SCALE_FUNCTION, { deterministic: true }, numericScale);
      db.exec(
        `CREATE TABLE IF NOT EXISTS tidemark_checkpoints (
           changefeed TEXT PRIMARY KEY, position TEXT NOT NULL, epoch INTEGER NOT NULL, committed_at TEXT NOT NULL,
           writer TEXT)`,
      );
      // Files made before writers were recorded get the column.
      const columns = db.prepare('PRAGMA table_info(tidemark_checkpoints)').all() as { name: string }[];
      if (!columns.some((c) => c.name === 'writer'))
        db.exec('ALTER TABLE tidemark_checkpoints ADD COLUMN writer TEXT');
      return db;
    });
    this.#db = db;
    return this.#fence.opened(this.#readCheckpoint(db));
  }

  /** One SQLite transaction: create/verify tables, empty them, insert every row, checkpoint. */
  async writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
    options: SnapshotWriteOptions = {},
  ): Promise<void> {
    const db = this.#requireOpen();
    this.#fence.assertAdvances(at);
    this.#begin(db, 'beginning the snapshot', at);
    try {
      this.#guard('creating tables', () => {
        for (const t of tables) {
          const w = this.#writer(db, t, { create: 'strict' });
          if (!options.append) w.truncate();
        }
      });
      for await (const chunk of chunks) {
        this.#guard(`writing snapshot rows of ${chunk.table.schema}.${chunk.table.name}`, () => {
          const w = this.#writer(db, chunk.table, { create: 'strict' });
          if (chunk.table.keyless) for (const r of chunk.rows) w.insertCopies(r, 1);
          else w.upsert(chunk.rows);
        });
      }
      this.#guard('writing the checkpoint', () => this.#writeCheckpoint(db, at));
      this.#guard('committing the snapshot', () => db.exec('COMMIT'));
      this.#fence.committed(at);
    } catch (err) {
      this.#rollback(db);
      throw err;
    }
  }

  /** One SQLite transaction per epoch, including the checkpoint row. */
  async commitEpoch(epoch: Epoch): Promise<void> {
    const writer = await this.beginEpoch();
    await writer.commit(epoch);
  }

  /** The epoch's SQLite transaction, begun (BEGIN IMMEDIATE) with the first chunk or the commit. */
  async beginEpoch(): Promise<EpochWriter> {
    const db = this.#requireOpen();
    let begun = false;
    const begin = (cp: Checkpoint | null) => {
      if (begun) return;
      this.#begin(db, 'beginning the epoch', cp);
      begun = true;
    };
    return this.#epochSlot.open({
      applyChunk: async (tables, chunk) => {
        begin(null);
        this.#guard(`applying chunk ${chunk} of an epoch`, () => {
          for (const tc of tables) this.#apply(db, tc);
        });
      },
      applySchema: async (change) => {
        begin(null);
        this.#guard(`applying a schema change (${change.kind})`, () => {
          switch (change.kind) {
            case 'table-created':
              this.#writer(db, change.table, { create: 'evolve' });
              break;
            case 'table-dropped':
              db.exec(`DROP TABLE IF EXISTS ${sqliteIdent(sqliteTableName(change.table))}`);
              this.#writers.delete(sqliteTableName(change.table));
              break;
            case 'table-altered':
              for (const sql of sqliteAlterStatements(change)) db.exec(sql);
              this.#writers.delete(sqliteTableName(change.before));
              this.#writers.delete(sqliteTableName(change.after));
              break;
          }
        });
      },
      commit: async (epoch) => {
        this.#fence.assertAdvances(epoch.checkpoint);
        begin(epoch.checkpoint);
        this.#guard(`applying epoch ${epoch.checkpoint.epoch}`, () => {
          for (const tc of epoch.tables) this.#apply(db, tc);
          this.#writeCheckpoint(db, epoch.checkpoint);
          db.exec('COMMIT');
        });
        this.#fence.committed(epoch.checkpoint);
      },
      discard: async () => this.#rollback(db),
    });
  }

  /** A read-only snapshot of the file for verify and reconcile (`read-session.ts`). */
  async openRead(): Promise<SinkReadSession> {
    return openSqliteSinkRead(this.#path, this.#changefeedId);
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = null;
    this.#writers.clear();
    if (db?.open) db.close();
  }

  #apply(db: Database.Database, tc: TableChanges): void {
    const w = this.#writer(db, tc.table, { create: 'evolve' });
    if (tc.truncate) w.truncate();
    // Key moves read the old rows as the epoch (or chunk) found them: all of them, before the deletes.
    w.moveRows(tc.partialUpdates);
    if (tc.deletes.length > 0) w.deleteByKey(tc.deletes);
    if (tc.upserts.length > 0) w.upsert(tc.upserts);
    for (const pu of tc.partialUpdates) if (!pu.fromKey) w.partialUpdate(pu.row);
    for (const d of tc.rowDeltas) {
      if (d.count > 0) w.insertCopies(d.row, d.count);
      else if (d.count < 0) w.deleteCopies(d.row, -d.count);
    }
  }

  #writer(
    db: Database.Database,
    table: TableSchema,
    opts: { create: 'strict' | 'evolve' },
  ): SqliteTableWriter {
    const name = sqliteTableName(table);
    let w = this.#writers.get(name);
    if (!w || !w.sameShape(table)) {
      w = new SqliteTableWriter(db, table);
      w.ensureTable(opts.create);
      this.#writers.set(name, w);
    }
    return w;
  }

  /**
   * BEGIN IMMEDIATE (the write lock: a second writer waits here) and the fence: the checkpoint
   * row must still be the one this instance read or wrote, else SINK_FENCED, rolled back.
   */
  #begin(db: Database.Database, action: string, cp: Checkpoint | null): void {
    this.#guard(action, () => db.exec('BEGIN IMMEDIATE'));
    const found = this.#guard('reading the checkpoint', () => this.#readCheckpoint(db));
    if (!this.#fence.holds(found)) {
      this.#rollback(db);
      throw this.#fence.fenced(found, cp);
    }
  }

  #readCheckpoint(db: Database.Database): StoredCheckpoint | null {
    const row = db
      .prepare('SELECT position, epoch, writer FROM tidemark_checkpoints WHERE changefeed = ?')
      .get(this.#changefeedId) as { position: string; epoch: number; writer: string | null } | undefined;
    return row ? { position: row.position, epoch: Number(row.epoch), writer: row.writer } : null;
  }

  /** Inside the fenced transaction: the row is the expected one (or absent when none is). */
  #writeCheckpoint(db: Database.Database, cp: Checkpoint): void {
    db.prepare(
      `INSERT INTO tidemark_checkpoints (changefeed, position, epoch, committed_at, writer) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(changefeed) DO UPDATE SET position = excluded.position, epoch = excluded.epoch,
         committed_at = excluded.committed_at, writer = excluded.writer`,
    ).run(this.#changefeedId, cp.position, cp.epoch, new Date().toISOString(), this.#fence.writer);
  }

  #rollback(db: Database.Database): void {
    // Writers cache statements and the verified shape; a rolled-back ALTER invalidates both.
    this.#writers.clear();
    if (db.inTransaction) db.exec('ROLLBACK');
  }

  #requireOpen(): Database.Database {
    if (!this.#db) throw new TidemarkError('INTERNAL', { detail: 'sqlite sink used before open()' });
    return this.#db;
  }

  #guard<T>(action: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof TidemarkError) throw err;
      const code = (err as { code?: string }).code ?? '';
      const retriable = code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === 'SQLITE_IOERR';
      // SQLITE_CONSTRAINT_* (NOT NULL, UNIQUE, CHECK, FOREIGN KEY…) refuses the same rows every time.
      const which = code.startsWith('SQLITE_CONSTRAINT')
        ? 'SINK_CONSTRAINT_VIOLATION'
        : code === 'SQLITE_CANTOPEN'
          ? 'CONNECT_REFUSED'
          : 'SINK_WRITE_FAILED';
      throw new TidemarkError(which, {
        detail: `sqlite sink ${this.#path} while ${action}: ${(err as Error).message}`,
        cause: err,
        retriable,
      });
    }
  }
}
