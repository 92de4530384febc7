/**
 * `openRead` of the SQLite sink (`core/table-read.ts`): its own read-only handle on the file,
 * one read transaction (WAL mode: a snapshot of the last committed epoch, never blocking the
 * writer), values turned back into the pivot text form by `sqliteToText`.
 */
import Database from 'better-sqlite3';
import type { Checkpoint } from '../../core/epoch.ts';
import type { Row } from '../../core/row.ts';
import type { KeyRange, SinkReadSession } from '../../core/table-read.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { sqliteIdent, sqliteTableName } from './sqlite-table-writer.ts';
import { cellConverters, sqliteToText, type SqliteValue } from './sqlite-types.ts';

const BATCH_ROWS = 2000;
const KEYS_PER_QUERY = 200;

export function openSqliteSinkRead(path: string, changefeedId: string): SinkReadSession {
  return guard(path, 'starting the verify read', () => {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 10000');
      db.exec('BEGIN');
      const has = db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tidemark_checkpoints'")
        .get();
      const row = has
        ? (db
            .prepare('SELECT position, epoch FROM tidemark_checkpoints WHERE changefeed = ?')
            .get(changefeedId) as { position: string; epoch: number | bigint } | undefined)
        : undefined;
      return new SqliteSinkRead(db, path, row ? { position: row.position, epoch: Number(row.epoch) } : null);
    } catch (err) {
      db.close();
      throw err;
    }
  });
}

function guard<T>(path: string, action: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TidemarkError) throw err;
    const code = (err as { code?: string }).code ?? '';
    throw new TidemarkError(code === 'SQLITE_CANTOPEN' ? 'CONNECT_REFUSED' : 'SINK_WRITE_FAILED', {
      detail: `sqlite sink ${path} while ${action}: ${(err as Error).message}`,
      cause: err,
      retriable: code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED',
    });
  }
}

class SqliteSinkRead implements SinkReadSession {
  readonly #exists = new Map<string, boolean>();

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    readonly checkpoint: Checkpoint | null,
  ) {}

  #has(t: TableSchema): boolean {
    const name = sqliteTableName(t);
    let e = this.#exists.get(name);
    if (e === undefined) {
      e =
        this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
        undefined;
      this.#exists.set(name, e);
    }
    return e;
  }

  #select(t: TableSchema, where: string): string {
    const cols = t.columns.map((c) => sqliteIdent(c.name)).join(', ');
    return `SELECT ${cols} FROM ${sqliteIdent(sqliteTableName(t))} WHERE ${where}`;
  }

  #keyTuple(t: TableSchema): string {
    return `(${t.keyColumns.map((i) => sqliteIdent(t.columns[i]!.name)).join(', ')})`;
  }

  #keyValues(t: TableSchema, key: Row): SqliteValue[] {
    const conv = cellConverters(t);
    return t.keyColumns.map((i, j) => {
      const v = key[j] ?? null;
      return v === null ? null : conv[i]!(v);
    });
  }

  #toText(t: TableSchema, r: unknown[]): Row {
    return t.columns.map((c, i) => sqliteToText(r[i], c, t));
  }

  async *readRows(t: TableSchema, range: KeyRange): AsyncGenerator<readonly Row[]> {
    if (!guard(this.path, 'reading for verify', () => this.#has(t))) return;
    const where: string[] = [];
    const params: SqliteValue[] = [];
    if (!t.keyless && range.lower !== null) {
      where.push(`${this.#keyTuple(t)} > (${t.keyColumns.map(() => '?').join(', ')})`);
      params.push(...this.#keyValues(t, range.lower));
    }
    if (!t.keyless && range.upper !== null) {
      where.push(`${this.#keyTuple(t)} <= (${t.keyColumns.map(() => '?').join(', ')})`);
      params.push(...this.#keyValues(t, range.upper));
    }
    const stmt = guard(this.path, 'reading for verify', () =>
      this.db
        .prepare(this.#select(t, where.length > 0 ? where.join(' AND ') : '1'))
        .raw()
        .safeIntegers(),
    );
    let batch: Row[] = [];
    for (const r of stmt.iterate(...params) as IterableIterator<unknown[]>) {
      batch.push(this.#toText(t, r));
      if (batch.length >= BATCH_ROWS) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  async readRowsByKeys(t: TableSchema, keys: readonly Row[]): Promise<Row[]> {
    if (!this.#has(t)) return [];
    const out: Row[] = [];
    const cols = t.keyColumns.map((i) => sqliteIdent(t.columns[i]!.name));
    for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
      const part = keys.slice(i, i + KEYS_PER_QUERY);
      const one = `(${cols.map((c) => `${c} IS ?`).join(' AND ')})`;
      const stmt = this.db
        .prepare(this.#select(t, part.map(() => one).join(' OR ')))
        .raw()
        .safeIntegers();
      for (const r of stmt.all(...part.flatMap((k) => this.#keyValues(t, k))) as unknown[][])
        out.push(this.#toText(t, r));
    }
    return out;
  }

  async hasRows(t: TableSchema): Promise<boolean> {
    if (!this.#has(t)) return false;
    return this.db.prepare(`SELECT 1 FROM ${sqliteIdent(sqliteTableName(t))} LIMIT 1`).get() !== undefined;
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    try {
      this.db.exec('COMMIT');
    } catch {
      // nothing was written
    }
    this.db.close();
  }
}
