/**
 * Exactly-once sink into MySQL, MariaDB or TiDB (`mysql://user:pw@host:3306/db?max-txn-rows=N`).
 *
 *   ensure tables (DDL: auto-commits in MySQL, so it runs before the transaction; creating an
 *   empty table or adding a nullable column is harmless if the epoch then fails)
 *   BEGIN ─► lock + check our tidemark_checkpoints row ─► delete / upsert / partial / deltas
 *         ─► upsert tidemark_checkpoints ─► COMMIT       (data and checkpoint visible together)
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
 * then declares `effectively-once`.
 */
import mysql from 'mysql2/promise';
import type { Row } from '../../core/row.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { EpochWriter, Sink } from '../sink.ts';
import type { Checkpoint, Epoch, SnapshotRows, TableChanges } from '../../core/epoch.ts';
import { EpochWriterSlot } from '../shared/epoch-writer-slot.ts';
import { acceptAdditiveOnly } from '../shared/interim-schema.ts';
import { wrapMysqlError } from './mysql-errors.ts';
import { MysqlTableWriter, mysqlTableName } from './mysql-table-writer.ts';

export interface MysqlSinkOptions {
  /** `mysql://user:password@host:port/database?max-txn-rows=N` */
  readonly uri: string;
  readonly changefeedId: string;
}

interface ParsedUri {
  readonly config: mysql.ConnectionOptions;
  readonly database: string;
  readonly maxTxnRows: number | null;
}

export function parseMysqlUri(uri: string): ParsedUri {
  let u: URL;
  try {
    u = new URL(uri);
  } catch (cause) {
    throw new TidemarkError('CONFIG_INVALID', { detail: `sink URI is not a URI: ${maskUri(uri)}`, cause });
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (u.protocol !== 'mysql:' || !database) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `sink URI ${maskUri(uri)}: expected mysql://user:password@host:port/database`,
    });
  }
  const max = u.searchParams.get('max-txn-rows');
  if (max !== null && !/^[1-9]\d*$/.test(max)) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `sink URI ${maskUri(uri)}: max-txn-rows must be a positive integer`,
    });
  }
  return {
    database,
    maxTxnRows: max === null ? null : Number(max),
    config: {
      host: u.hostname,
      port: u.port ? Number(u.port) : 3306,
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      database,
      charset: 'utf8mb4',
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      connectTimeout: 10_000,
    },
  };
}

export function createMysqlSink(options: MysqlSinkOptions): MysqlSink {
  return new MysqlSink(options);
}

export class MysqlSink implements Sink {
  readonly guarantee: 'exactly-once' | 'effectively-once';
  readonly #uri: string;
  readonly #parsed: ParsedUri;
  readonly #changefeedId: string;
  #conn: mysql.Connection | null = null;
  #jsonCast = true;
  #rowsInTxn = 0;
  readonly #known = new Map<string, MysqlTableWriter>();
  readonly #epochSlot = new EpochWriterSlot('MySQL sink');

  constructor(options: MysqlSinkOptions) {
    this.#uri = options.uri;
    this.#parsed = parseMysqlUri(options.uri);
    this.#changefeedId = options.changefeedId;
    this.guarantee = this.#parsed.maxTxnRows === null ? 'exactly-once' : 'effectively-once';
  }

  /** Connects (UTC, strict mode), creates `tidemark_checkpoints` if missing, reads our row. */
  async open(): Promise<Checkpoint | null> {
    const conn = await this.#connect();
    this.#conn = conn;
    return this.#io('reading the checkpoint', async () => {
      const [v] = await conn.query('SELECT VERSION() AS v');
      this.#jsonCast = !/mariadb/i.test(String((v as { v: string }[])[0]?.v));
      await conn.query(
        `CREATE TABLE IF NOT EXISTS tidemark_checkpoints (changefeed VARCHAR(255) NOT NULL PRIMARY KEY,
           position VARCHAR(64) NOT NULL, epoch BIGINT NOT NULL, committed_at DATETIME(6) NOT NULL)
         DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      );
      return this.#readCheckpoint(conn, false);
    });
  }

  /** Creates/verifies tables, then one transaction (or chunks, see max-txn-rows) with the checkpoint. */
  async writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
  ): Promise<void> {
    const conn = this.#requireOpen();
    const writers = tables.map((t) => this.#writer(t));
    for (const w of writers)
      await this.#io('creating tables', () => w.ensureTable(conn, this.#parsed.database, 'strict'));
    await this.#txn('writing the snapshot', async () => {
      for (const w of writers) await w.truncate(conn);
      for await (const chunk of chunks) {
        const w = this.#writer(chunk.table);
        await this.#inSlices(chunk.rows, (rows) => w.upsert(conn, rows));
      }
      await this.#writeCheckpoint(conn, at);
    });
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
    /** Our checkpoint row as the transaction read (and locked) it; undefined before BEGIN. */
    let stored: Checkpoint | null | undefined;
    const ensured = new Set<MysqlTableWriter>();
    /** Tables the open transaction wrote: it holds their metadata locks until it ends. */
    const written = new Set<string>();
    let ddlConn: mysql.Connection | null = null;
    const endDdlConn = async () => {
      const c = ddlConn;
      ddlConn = null;
      if (c) await c.end().catch(() => c.destroy());
    };
    const begin = async (tables: readonly TableChanges[]) => {
      for (const tc of tables) {
        const w = this.#writer(tc.table);
        await w.ensureTable(conn, database, 'evolve');
        ensured.add(w);
      }
      this.#rowsInTxn = 0;
      await conn.query('BEGIN');
      stored = await this.#readCheckpoint(conn, true);
    };
    const write = async (tables: readonly TableChanges[]) => {
      if (stored === undefined) await begin(tables);
      for (const tc of tables) {
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
          if (stored === undefined) await begin(epoch.tables);
          if (stored && stored.epoch >= epoch.checkpoint.epoch) {
            throw new TidemarkError('SINK_CHECKPOINT_AHEAD', {
              detail: `MySQL sink ${maskUri(this.#uri)}: epoch ${epoch.checkpoint.epoch} is already committed (checkpoint epoch ${stored.epoch} at ${stored.position})`,
            });
          }
          await write(epoch.tables);
          await this.#writeCheckpoint(conn, epoch.checkpoint);
          await conn.query('COMMIT');
          await endDdlConn();
        }),
      applySchema: async (change) => acceptAdditiveOnly('mysql sink', change),
      discard: async () => {
        if (stored !== undefined) await conn.query('ROLLBACK').catch(() => {});
        await endDdlConn();
      },
    });
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
    // Key-moving partial updates read the old row as the epoch found it: before the deletes.
    const moves = tc.partialUpdates.filter((pu) => pu.fromKey !== null);
    for (const pu of moves) {
      await w.partialUpdate(conn, pu.row, pu.fromKey);
      await this.#spend(conn, 1);
    }
    await this.#inSlices(tc.deletes, (keys) => w.deleteByKey(conn, keys));
    await this.#inSlices(tc.upserts, (rows) => w.upsert(conn, rows));
    for (const pu of tc.partialUpdates) {
      if (pu.fromKey !== null) continue;
      await w.partialUpdate(conn, pu.row, null);
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
      await conn.query('BEGIN');
      this.#rowsInTxn = 0;
    }
  }

  async #txn(action: string, fn: () => Promise<void>): Promise<void> {
    const conn = this.#requireOpen();
    this.#rowsInTxn = 0;
    try {
      await conn.query('BEGIN');
      await fn();
      await conn.query('COMMIT');
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => {});
      throw wrapMysqlError(err, { uri: this.#uri, action });
    }
  }

  /** A new session in UTC and strict mode (for the epoch, or for DDL beside an open epoch). */
  async #connect(): Promise<mysql.Connection> {
    const conn = await this.#io('connecting', () => mysql.createConnection(this.#parsed.config));
    await this.#io('setting up the session', () =>
      conn.query(`SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'`),
    ).catch(async (err: unknown) => {
      await conn.end().catch(() => conn.destroy());
      throw err;
    });
    return conn;
  }

  #writer(table: TableSchema): MysqlTableWriter {
    const name = mysqlTableName(table);
    let w = this.#known.get(name);
    if (!w || w.table !== table) {
      w = new MysqlTableWriter(table, { jsonCast: this.#jsonCast });
      this.#known.set(name, w);
    }
    return w;
  }

  async #readCheckpoint(conn: mysql.Connection, forUpdate: boolean): Promise<Checkpoint | null> {
    const [rows] = await conn.query(
      `SELECT position, epoch FROM tidemark_checkpoints WHERE changefeed = ?${forUpdate ? ' FOR UPDATE' : ''}`,
      [this.#changefeedId],
    );
    const row = (rows as { position: string; epoch: string | number }[])[0];
    return row ? { position: row.position, epoch: Number(row.epoch) } : null;
  }

  async #writeCheckpoint(conn: mysql.Connection, cp: Checkpoint): Promise<void> {
    await conn.query(
      `INSERT INTO tidemark_checkpoints (changefeed, position, epoch, committed_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))
       ON DUPLICATE KEY UPDATE position = VALUES(position), epoch = VALUES(epoch), committed_at = VALUES(committed_at)`,
      [this.#changefeedId, cp.position, cp.epoch],
    );
  }

  #requireOpen(): mysql.Connection {
    if (!this.#conn) throw new TidemarkError('INTERNAL', { detail: 'MySQL sink used before open()' });
    return this.#conn;
  }

  async #io<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw wrapMysqlError(err, { uri: this.#uri, action });
    }
  }
}
