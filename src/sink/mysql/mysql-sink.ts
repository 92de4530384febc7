/**
 * Exactly-once sink into MySQL, MariaDB or TiDB (`mysql://user:pw@host:3306/db?max-txn-rows=N`).
 *
 *   ensure tables (DDL: auto-commits in MySQL, so it runs before the transaction; creating an
 *   empty table or adding a nullable column is harmless if the epoch then fails)
 *   BEGIN ─► lock + check our tidemark_checkpoints row (the fence) ─► delete / upsert / partial
 *         / deltas ─► write tidemark_checkpoints ─► COMMIT   (data and checkpoint visible together)
 *
 * The fence: `SELECT … FOR UPDATE` of our checkpoint row right after BEGIN must find the row
 * this instance last read or wrote; a second process's transaction waits on that lock until the
 * first ends, then finds the new row and fails with SINK_FENCED. With no row yet there is nothing
 * to lock: the transaction inserts the row first (rewritten before COMMIT), and a second writer's
 * insert waits on it, then fails on the key (SINK_FENCED). With max-txn-rows the row is inserted
 * with the last chunk instead (a placeholder must not be committed early).
 *
 * An epoch in chunks (`beginEpoch`) is the same transaction with the apply step repeated per
 * chunk; the first chunk's tables are ensured before BEGIN. A table first seen in a later chunk
 * cannot be created on the open transaction (DDL would commit it), so its DDL runs on a second
 * connection, opened only then. The one thing MySQL cannot do is add a column to a table the open
 * transaction already wrote (the transaction's metadata lock blocks the ALTER until it ends):
 * then the epoch is rolled back, the column added, and the epoch fails as retriable — its retry
 * finds the column there.
 *
 * Plain transactions, no XA, so TiDB works too. `max-txn-rows=N` caps one downstream transaction
 * at about N rows for stores with transaction limits (TiDB's txn-total-size-limit): an epoch or
 * the snapshot is then committed in chunks and only the last carries the checkpoint. That
 * weakens atomicity to per chunk — a reader may see part of an epoch, and a crash mid-epoch
 * replays it (keyed changes are idempotent; keyless row deltas may apply twice) — so the sink
 * then declares `effectively-once`. Each of those transactions is fenced anew.
 */
import { openMysqlSinkRead } from './read-session.ts';
import type { SinkReadSession } from '../../core/table-read.ts';
import mysql from 'mysql2/promise';
import type { Row } from '../../core/row.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { EpochWriter, Sink } from '../sink.ts';
import type { Checkpoint, Epoch, SnapshotRows, TableChanges } from '../../core/epoch.ts';
import { CheckpointFence, type StoredCheckpoint } from '../shared/checkpoint-fence.ts';
import { EpochWriterSlot } from '../shared/epoch-writer-slot.ts';
import { wrapMysqlError } from '../../source/mysql/mysql-errors.ts';
import { schemaChangeTableId, type SchemaChange } from '../../core/schema-change.ts';
import { mysqlSchemaDdl, sameChange, throughPending } from './mysql-schema.ts';
import { MARIADB_LIMITS_LIFTED, mysqlUriParts } from '../../source/mysql/mysql-uri.ts';
import { MysqlTableWriter, mysqlTableName } from './mysql-table-writer.ts';

export interface MysqlSinkOptions {
  /** `mysql://user:password@host:port/database?max-txn-rows=N&ssl-mode=…` (TLS: source/mysql/mysql-uri.ts) */
  readonly uri: string;
  readonly changefeedId: string;
}

interface ParsedUri {
  readonly config: mysql.ConnectionOptions;
  readonly database: string;
  readonly maxTxnRows: number | null;
}

export function parseMysqlUri(uri: string): ParsedUri {
  const { url, host, port, user, password, database, ssl } = mysqlUriParts(uri, 'sink');
  if (database === null) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `sink URI ${maskUri(uri)}: expected mysql://user:password@host:port/database`,
    });
  }
  const max = url.searchParams.get('max-txn-rows');
  if (max !== null && !/^[1-9]\d*$/.test(max)) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `sink URI ${maskUri(uri)}: max-txn-rows must be a positive integer`,
    });
  }
  return {
    database,
    maxTxnRows: max === null ? null : Number(max),
    config: {
      ...(ssl === undefined ? {} : { ssl }),
      host,
      port,
      user,
      password,
      database,
      charset: 'utf8mb4',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      connectTimeout: 10_000,
    },
  };
}

/**
 * The server's binary collation that does not ignore trailing spaces: `utf8mb4_bin` is PAD SPACE
 * (`'a' = 'a '`), which would merge two source keys. MySQL 8 and TiDB 7.4+ have
 * `utf8mb4_0900_bin`, MariaDB 10.2+ `utf8mb4_nopad_bin`; a server with neither is refused.
 */
async function exactCollation(conn: mysql.Connection, uri: string): Promise<string> {
  const wanted = ['utf8mb4_0900_bin', 'utf8mb4_nopad_bin'];
  const [rows] = await conn.query(
    'SELECT COLLATION_NAME AS c FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (?)',
    [wanted],
  );
  const have = new Set((rows as { c: string }[]).map((r) => r.c));
  const found = wanted.find((c) => have.has(c));
  if (found) return found;
  throw new TidemarkError('SINK_UNSUITABLE', {
    detail: `MySQL sink ${maskUri(uri)}: the server has no binary collation that keeps trailing spaces (${wanted.join(', ')}); with utf8mb4_bin the keys 'a' and 'a ' would be one`,
    hint: 'Use MySQL 8.0+, MariaDB 10.2+ or TiDB 7.4+ as the sink.',
  });
}

export function createMysqlSink(options: MysqlSinkOptions): MysqlSink {
  return new MysqlSink(options);
}

/** See `#connect`. */
const SESSION_SQL = `SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'${MARIADB_LIMITS_LIFTED}`;
/**
 * Metadata-lock waits bounded to 2 s (or the operator's `lock_wait_timeout`, if shorter): a DDL
 * waiting for a metadata lock that a downstream reader's transaction holds makes every later
 * reader of the table queue behind it. Bounded, it fails with 1205 (SINK_LOCK_TIMEOUT), the queue
 * moves on, and the epoch is retried after a back-off. Apart, and skipped where the server has no
 * such variable (1193): TiDB's DDL does not queue readers this way.
 */
const LOCK_WAIT_SQL = 'SET SESSION lock_wait_timeout = LEAST(@@SESSION.lock_wait_timeout, 2)';

export class MysqlSink implements Sink {
  readonly guarantee: 'exactly-once' | 'effectively-once';
  readonly #uri: string;
  readonly #parsed: ParsedUri;
  readonly #changefeedId: string;
  #conn: mysql.Connection | null = null;
  #jsonCast = true;
  /** The NO PAD binary collation of the server: text compares byte for byte, trailing spaces too. */
  #collation = 'utf8mb4_0900_bin';
  #rowsInTxn = 0;
  /** The checkpoint the open transaction is to commit, when known (for SINK_FENCED messages). */
  #committing: Checkpoint | null = null;
  readonly #known = new Map<string, MysqlTableWriter>();
  readonly #epochSlot = new EpochWriterSlot('MySQL sink');
  readonly #fence: CheckpointFence;
  /**
   * Schema changes whose DDL ran (or may have run) while the epoch holding them has not
   * committed: recorded in our checkpoint row before the DDL, cleared by that epoch's commit.
   */
  #pending: SchemaChange[] = [];

  constructor(options: MysqlSinkOptions) {
    this.#uri = options.uri;
    this.#parsed = parseMysqlUri(options.uri);
    this.#changefeedId = options.changefeedId;
    this.guarantee = this.#parsed.maxTxnRows === null ? 'exactly-once' : 'effectively-once';
    this.#fence = new CheckpointFence(`MySQL sink ${maskUri(options.uri)}`);
  }

  /** Connects (UTC, strict mode), creates `tidemark_checkpoints` if missing, reads our row. */
  async open(): Promise<Checkpoint | null> {
    const conn = await this.#connect();
    this.#conn = conn;
    return this.#io('reading the checkpoint', async () => {
      const [v] = await conn.query('SELECT VERSION() AS v');
      this.#jsonCast = !/mariadb/i.test(String((v as { v: string }[])[0]?.v));
      this.#collation = await exactCollation(conn, this.#uri);
      await conn.query(
        `CREATE TABLE IF NOT EXISTS tidemark_checkpoints (changefeed VARCHAR(255) NOT NULL PRIMARY KEY,
           position VARCHAR(64) NOT NULL, epoch BIGINT NOT NULL, committed_at DATETIME(6) NOT NULL,
           writer VARCHAR(255) NULL, pending_schema LONGTEXT NULL)
         DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      );
      // Tables made before writers and pending schema changes were recorded get the columns.
      const [cols] = await conn.query(
        `SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'tidemark_checkpoints'`,
        [this.#parsed.database],
      );
      const have = new Set((cols as { c: string }[]).map((r) => r.c));
      if (!have.has('writer'))
        await conn.query('ALTER TABLE tidemark_checkpoints ADD COLUMN writer VARCHAR(255) NULL');
      if (!have.has('pending_schema'))
        await conn.query('ALTER TABLE tidemark_checkpoints ADD COLUMN pending_schema LONGTEXT NULL');
      const opened = this.#fence.opened(await this.#readCheckpoint(conn, false));
      // A crash may have cut the last pending change of a table short: finish its DDL (each step
      // checks first). An earlier one of the same table ran whole before the later was recorded,
      // and checking it now would see the later's shape (a created table since renamed).
      this.#pending = await this.#readPending(conn);
      for (const [i, change] of this.#pending.entries()) {
        const id = schemaChangeTableId(change);
        if (this.#pending.slice(i + 1).some((p) => schemaChangeTableId(p) === id)) continue;
        const ddl = await mysqlSchemaDdl(conn, this.#parsed.database, change, (t) =>
          this.#writer(t).createSql(),
        );
        for (const sql of ddl) await conn.query(sql);
      }
      this.#known.clear();
      return opened;
    });
  }

  /** Creates/verifies tables, then one transaction (or chunks, see max-txn-rows) with the checkpoint. */
  async writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
  ): Promise<void> {
    const conn = this.#requireOpen();
    this.#fence.assertAdvances(at);
    const writers = tables.map((t) => this.#writer(t));
    for (const w of writers)
      await this.#io('creating tables', () => w.ensureTable(conn, this.#parsed.database, 'strict'));
    await this.#txn('writing the snapshot', at, async () => {
      for (const w of writers) await w.truncate(conn);
      for await (const chunk of chunks) {
        const w = this.#writer(chunk.table);
        await this.#inSlices(chunk.rows, (rows) => w.upsert(conn, rows));
      }
      await this.#writeCheckpoint(conn, at, []);
    });
    this.#fence.committed(at);
    this.#pending = [];
  }

  /** Applies the epoch and its checkpoint in one transaction (or chunks, see max-txn-rows). */
  async commitEpoch(epoch: Epoch): Promise<void> {
    const writer = await this.beginEpoch();
    await writer.commit(epoch);
  }

  /** The epoch's transaction, begun with the first chunk (or the commit); see the file comment. */
  async beginEpoch(): Promise<EpochWriter> {
    const conn = this.#requireOpen();
    const database = this.#parsed.database;
    /** True once BEGIN (and the fence) ran. */
    let begun = false;
    const ensured = new Set<MysqlTableWriter>();
    /** Tables the open transaction wrote: it holds their metadata locks until it ends. */
    const written = new Set<string>();
    let ddlConn: mysql.Connection | null = null;
    /** Pending schema changes this epoch met again (replayed): its commit clears them. */
    const consumed = new Set<SchemaChange>();
    /** Rows of a table's shape before a pending change go to the table as it is now. */
    const current = (tables: readonly TableChanges[]) =>
      this.#pending.length === 0 ? tables : tables.flatMap((tc) => throughPending(tc, this.#pending) ?? []);
    const endDdlConn = async () => {
      const c = ddlConn;
      ddlConn = null;
      if (c) await c.end().catch(() => c.destroy());
    };
    const begin = async (tables: readonly TableChanges[]) => {
      for (const tc of current(tables)) {
        const w = this.#writer(tc.table);
        await w.ensureTable(conn, database, 'evolve');
        ensured.add(w);
      }
      this.#rowsInTxn = 0;
      begun = true;
      await this.#begin(conn, this.#committing);
    };
    const write = async (tables: readonly TableChanges[]) => {
      if (!begun) await begin(tables);
      for (const tc of current(tables)) {
        const w = this.#writer(tc.table);
        if (!ensured.has(w)) {
          ddlConn ??= await this.#connect();
          const ddl = await w.ddl(ddlConn, database, 'evolve');
          if (ddl.length > 0 && written.has(mysqlTableName(tc.table))) {
            await conn.query('ROLLBACK');
            for (const sql of ddl) await conn.query(sql);
            throw new TidemarkError('SINK_WRITE_FAILED', {
              detail: `MySQL sink ${maskUri(this.#uri)}: ${mysqlTableName(tc.table)} gained columns in the middle of an epoch written in chunks; MySQL cannot alter a table its open transaction wrote, so the epoch was rolled back and the columns added`,
              hint: 'Nothing to do: the epoch is retried and finds the columns.',
              retriable: true,
            });
          }
          for (const sql of ddl) await ddlConn.query(sql);
          ensured.add(w);
        }
        written.add(mysqlTableName(tc.table));
        await this.#apply(conn, tc);
      }
    };
    return this.#epochSlot.open({
      applyChunk: (tables, chunk) => this.#io(`applying chunk ${chunk} of an epoch`, () => write(tables)),
      commit: (epoch) =>
        this.#io(`applying epoch ${epoch.checkpoint.epoch}`, async () => {
          this.#fence.assertAdvances(epoch.checkpoint);
          this.#committing = epoch.checkpoint;
          if (!begun) await begin(epoch.tables);
          await write(epoch.tables);
          const left = this.#pending.filter((p) => !consumed.has(p));
          await this.#writeCheckpoint(conn, epoch.checkpoint, left);
          await conn.query('COMMIT');
          this.#fence.committed(epoch.checkpoint);
          this.#pending = left;
          await endDdlConn();
        }),
      applySchema: (change) =>
        this.#io(`applying a schema change (${change.kind})`, async () => {
          const again = this.#pending.find((p) => sameChange(p, change));
          if (again) {
            // Replayed after a crash or a retry: open() finished its DDL.
            consumed.add(again);
            return;
          }
          const ddl = await mysqlSchemaDdl(conn, database, change, (t) => this.#writer(t).createSql());
          if (ddl.length === 0) return;
          // The DDL commits implicitly and waits for the open transaction's metadata locks: that
          // transaction goes, and the epoch is retried, its rows before the barrier written onto
          // the new shape (throughPending).
          const retry = begun;
          if (begun) {
            begun = false;
            await conn.query('ROLLBACK');
          }
          await endDdlConn();
          await this.#recordPending([...this.#pending, change]);
          for (const sql of ddl) await conn.query(sql);
          this.#known.clear();
          ensured.clear();
          if (retry) {
            throw new TidemarkError('SINK_WRITE_FAILED', {
              detail: `MySQL sink ${maskUri(this.#uri)}: a schema change (${change.kind}${change.ddl ? `: ${change.ddl.trim().slice(0, 200)}` : ''}) came in the middle of an epoch; MySQL commits DDL on its own, so the epoch's transaction was rolled back, the DDL applied and recorded`,
              hint: 'Nothing to do: the epoch is retried on the new shape.',
              retriable: true,
            });
          }
          consumed.add(change);
        }),
      discard: async () => {
        this.#committing = null;
        if (begun) await conn.query('ROLLBACK').catch(() => {});
        await endDdlConn();
      },
    });
  }

  /** A read-only snapshot of the downstream for verify and reconcile (`read-session.ts`). */
  openRead(): Promise<SinkReadSession> {
    return openMysqlSinkRead(this.#uri, this.#parsed.config, this.#changefeedId);
  }

  async close(): Promise<void> {
    const conn = this.#conn;
    this.#conn = null;
    this.#known.clear();
    // end() rolls back an open transaction on the server; nothing is committed here.
    if (conn) await conn.end().catch(() => conn.destroy());
  }

  async #apply(conn: mysql.Connection, tc: TableChanges): Promise<void> {
    const w = this.#writer(tc.table);
    if (tc.truncate) await w.truncate(conn);
    // Key moves read the old rows as the epoch (or chunk) found them: all of them, before the deletes.
    await this.#spend(conn, await w.moveRows(conn, tc.partialUpdates));
    await this.#inSlices(tc.deletes, (keys) => w.deleteByKey(conn, keys));
    await this.#inSlices(tc.upserts, (rows) => w.upsert(conn, rows));
    for (const pu of tc.partialUpdates) {
      if (pu.fromKey !== null) continue;
      await w.partialUpdate(conn, pu.row);
      await this.#spend(conn, 1);
    }
    for (const d of tc.rowDeltas) {
      if (d.count > 0) await w.insertCopies(conn, d.row, d.count);
      else if (d.count < 0) await w.deleteCopies(conn, d.row, -d.count);
      await this.#spend(conn, Math.abs(d.count));
    }
  }

  /** Runs `fn` on slices of at most max-txn-rows rows, committing between slices when capped. */
  async #inSlices(rows: readonly Row[], fn: (rows: readonly Row[]) => Promise<void>): Promise<void> {
    const max = this.#parsed.maxTxnRows;
    if (max === null) {
      if (rows.length > 0) await fn(rows);
      return;
    }
    for (let i = 0; i < rows.length;) {
      const slice = rows.slice(i, i + Math.max(1, max - this.#rowsInTxn));
      await fn(slice);
      await this.#spend(this.#requireOpen(), slice.length);
      i += slice.length;
    }
  }

  async #spend(conn: mysql.Connection, rows: number): Promise<void> {
    const max = this.#parsed.maxTxnRows;
    this.#rowsInTxn += rows;
    if (max !== null && this.#rowsInTxn >= max) {
      await conn.query('COMMIT');
      // The next transaction is fenced anew: another writer may have committed meanwhile.
      await this.#begin(conn, this.#committing);
      this.#rowsInTxn = 0;
    }
  }

  /**
   * BEGIN and the fence: our checkpoint row, read and locked, must be the one this instance read
   * or wrote; otherwise the transaction is rolled back and SINK_FENCED thrown. `cp` is what the
   * transaction is to commit, when known, for the message.
   */
  async #begin(conn: mysql.Connection, cp: Checkpoint | null): Promise<void> {
    await conn.query('BEGIN');
    if (this.#claimsRow()) {
      // No row to lock yet: the transaction inserts it first (a placeholder, rewritten before
      // COMMIT), so a second writer's insert waits on this one's row, then fails on the key.
      // A locking read of the missing row would take gap locks, and two of them deadlock.
      try {
        await conn.query(
          `INSERT INTO tidemark_checkpoints (position, epoch, writer, changefeed, committed_at) VALUES ('', -1, ?, ?, UTC_TIMESTAMP(6))`,
          [this.#fence.writer, this.#changefeedId],
        );
        return;
      } catch (err) {
        if ((err as { errno?: number }).errno !== 1062) throw err;
        await conn.query('ROLLBACK').catch(() => {});
        throw this.#fence.fenced(await this.#readCheckpoint(conn, false).catch(() => null), cp);
      }
    }
    const found = await this.#readCheckpoint(conn, true);
    if (!this.#fence.holds(found)) {
      await conn.query('ROLLBACK').catch(() => {});
      throw this.#fence.fenced(found, cp);
    }
  }

  /**
   * True when the first checkpoint is claimed by inserting its row at BEGIN. Not with
   * max-txn-rows: its intermediate commits would make the placeholder visible.
   */
  #claimsRow(): boolean {
    return this.#fence.expected === null && this.#parsed.maxTxnRows === null;
  }

  async #txn(action: string, cp: Checkpoint, fn: () => Promise<void>): Promise<void> {
    const conn = this.#requireOpen();
    this.#rowsInTxn = 0;
    this.#committing = cp;
    try {
      await this.#begin(conn, cp);
      await fn();
      await conn.query('COMMIT');
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => {});
      throw wrapMysqlError(err, { role: 'sink', uri: this.#uri, action });
    } finally {
      this.#committing = null;
    }
  }

  /**
   * A new session in UTC and strict mode (for the epoch, or for DDL beside an open epoch), with
   * the operator's statement limit lifted (MariaDB's `max_statement_time`, also set per user; in
   * a comment only MariaDB runs, as MySQL and TiDB have no such variable): a snapshot's writes run
   * long by design, and a limit would fail the same write on every retry.
   */
  async #connect(): Promise<mysql.Connection> {
    const conn = await this.#io('connecting', () => mysql.createConnection(this.#parsed.config));
    await this.#io('setting up the session', async () => {
      await conn.query(SESSION_SQL);
      await conn.query(LOCK_WAIT_SQL).catch((err: unknown) => {
        if ((err as { errno?: number }).errno !== 1193) throw err;
      });
    }).catch(async (err: unknown) => {
      await conn.end().catch(() => conn.destroy());
      throw err;
    });
    return conn;
  }

  #writer(table: TableSchema): MysqlTableWriter {
    const name = mysqlTableName(table);
    let w = this.#known.get(name);
    if (!w || w.table !== table) {
      w = new MysqlTableWriter(table, { jsonCast: this.#jsonCast, collation: this.#collation });
      this.#known.set(name, w);
    }
    return w;
  }

  async #readCheckpoint(conn: mysql.Connection, forUpdate: boolean): Promise<StoredCheckpoint | null> {
    const [rows] = await conn.query(
      `SELECT position, epoch, writer FROM tidemark_checkpoints WHERE changefeed = ?${forUpdate ? ' FOR UPDATE' : ''}`,
      [this.#changefeedId],
    );
    const row = (rows as { position: string; epoch: string | number; writer: string | null }[])[0];
    return row ? { position: row.position, epoch: Number(row.epoch), writer: row.writer } : null;
  }

  /**
   * Inside the fenced transaction: UPDATE of the row it locked, or, when there was none, a plain
   * INSERT that fails on the key if another writer inserted one meanwhile.
   */
  async #writeCheckpoint(
    conn: mysql.Connection,
    cp: Checkpoint,
    pending: readonly SchemaChange[],
  ): Promise<void> {
    const left = pending.length === 0 ? null : JSON.stringify(pending);
    const values = [cp.position, cp.epoch, this.#fence.writer, left, this.#changefeedId];
    if (this.#fence.expected === null && !this.#claimsRow()) {
      try {
        await conn.query(
          `INSERT INTO tidemark_checkpoints (position, epoch, writer, pending_schema, changefeed, committed_at) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))`,
          values,
        );
      } catch (err) {
        if ((err as { errno?: number }).errno !== 1062) throw err;
        await conn.query('ROLLBACK');
        throw this.#fence.fenced(await this.#readCheckpoint(conn, false).catch(() => null), cp);
      }
    } else {
      await conn.query(
        `UPDATE tidemark_checkpoints SET position = ?, epoch = ?, writer = ?, pending_schema = ?, committed_at = UTC_TIMESTAMP(6) WHERE changefeed = ?`,
        values,
      );
    }
  }

  async #readPending(conn: mysql.Connection): Promise<SchemaChange[]> {
    const [rows] = await conn.query(
      `SELECT pending_schema AS p FROM tidemark_checkpoints WHERE changefeed = ?`,
      [this.#changefeedId],
    );
    const text = (rows as { p: string | null }[])[0]?.p ?? null;
    return text === null ? [] : (JSON.parse(text) as SchemaChange[]);
  }

  /**
   * Records `pending` in our checkpoint row, in a fenced transaction of its own, before the DDL
   * runs: whoever opens the sink next finishes that DDL and maps rows of the old shape onto it.
   */
  async #recordPending(pending: readonly SchemaChange[]): Promise<void> {
    const conn = this.#requireOpen();
    if (this.#fence.expected === null) {
      throw new TidemarkError('INTERNAL', {
        detail: 'MySQL sink: a schema change before the first checkpoint (the snapshot commits first)',
      });
    }
    await this.#begin(conn, this.#committing);
    try {
      await conn.query(`UPDATE tidemark_checkpoints SET pending_schema = ? WHERE changefeed = ?`, [
        JSON.stringify(pending),
        this.#changefeedId,
      ]);
      await conn.query('COMMIT');
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => {});
      throw err;
    }
    this.#pending = [...pending];
  }

  #requireOpen(): mysql.Connection {
    if (!this.#conn) throw new TidemarkError('INTERNAL', { detail: 'MySQL sink used before open()' });
    return this.#conn;
  }

  async #io<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw wrapMysqlError(err, { role: 'sink', uri: this.#uri, action });
    }
  }
}
