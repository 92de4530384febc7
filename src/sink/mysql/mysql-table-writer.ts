/**
 * Statements for one target table in MySQL: DDL from `mysql-types.ts`, batched multi-row
 * `INSERT … ON DUPLICATE KEY UPDATE`, batched `DELETE … WHERE (k1,k2) IN ((…),(…))`. Values are
 * escaped client-side by mysql2 (`query`, not `execute`), so batches are not capped by the
 * 65,535 placeholders of server-side prepared statements; a batch is cut at `MAX_BATCH_ROWS`
 * rows or `MAX_BATCH_BYTES` of values, well under max_allowed_packet (16 MiB by default).
 */
import type { Connection } from 'mysql2/promise';
import { UNCHANGED, type Cell, type Row } from '../../core/row.ts';
import type { PartialUpdate } from '../../core/epoch.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { mysqlColumnType, type MysqlColumnType, type MysqlValue } from './mysql-types.ts';
import { flatTableName } from '../shared/flat-table-name.ts';

const MAX_BATCH_ROWS = 1000;
/** Old rows read per query for key moves (one UNION ALL branch each). */
const MOVE_BATCH = 200;
/** Name of the UNIQUE key that stands for the primary key when the key may hold NULL. */
const KEY_INDEX = 'tidemark_key';
const MAX_BATCH_BYTES = 4 << 20;

/** The table's name in the database (`flatTableName`: public tables keep theirs, others `schema.table`). */
export function mysqlTableName(t: { schema: string; name: string }): string {
  const name = flatTableName(t);
  if (name.length > 64) {
    throw new TidemarkError('SINK_UNSUPPORTED_TYPE', {
      detail: `table ${t.schema}.${t.name}: MySQL table names are at most 64 characters ("${name}")`,
      hint: 'Rename the table, or replicate it through a view with a shorter name.',
    });
  }
  return name;
}

/** A backtick-quoted identifier; safe for any name (backticks doubled). */
export function mysqlIdent(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

export class MysqlTableWriter {
  readonly table: TableSchema;
  readonly #name: string;
  readonly #types: MysqlColumnType[];
  readonly #cols: string[];
  readonly #jsonCast: boolean;
  /** A NO PAD binary collation (text compares exactly, trailing spaces included). */
  readonly #collation: string;
  /** Some key column may hold NULL (a view's key): a UNIQUE key instead of the primary key. */
  readonly #nullableKey: boolean;

  /**
   * Maps every column first: an unmappable column fails here, before anything is written.
   * `jsonCast`: the server has a real JSON type (MySQL, TiDB) and JSON values are compared as
   * `CAST(? AS JSON)`; MariaDB's JSON is LONGTEXT and compares as text. `collation`: the table's,
   * a NO PAD binary one (the sink picks it per server).
   */
  constructor(table: TableSchema, options: { jsonCast: boolean; collation: string }) {
    this.table = table;
    this.#jsonCast = options.jsonCast;
    this.#collation = options.collation;
    this.#name = mysqlIdent(mysqlTableName(table));
    this.#types = table.columns.map((c) => mysqlColumnType(c, table));
    this.#cols = table.columns.map((c) => mysqlIdent(c.name));
    this.#nullableKey = table.keyColumns.some((i) => table.columns[i]?.nullable === true);
  }

  /**
   * A key that may hold NULL cannot be a primary key: it is a UNIQUE key named `tidemark_key`
   * (which lets any number of NULLs in; the sink itself keeps one row per key, NULL equal to NULL).
   */
  createSql(): string {
    const cols = this.table.columns.map(
      (c, i) => `${this.#cols[i]} ${this.#types[i]!.ddl}${c.isKey && !c.nullable ? ' NOT NULL' : ''}`,
    );
    if (this.table.keyColumns.length > 0) {
      const key = this.#keyCols().join(', ');
      cols.push(this.#nullableKey ? `UNIQUE KEY ${KEY_INDEX} (${key})` : `PRIMARY KEY (${key})`);
    }
    return `CREATE TABLE IF NOT EXISTS ${this.#name} (${cols.join(', ')}) DEFAULT CHARSET=utf8mb4 COLLATE=${this.#collation}`;
  }

  /** Creates the table, or checks an existing one: `strict` wants exactly our columns, `evolve` adds missing ones. */
  async ensureTable(conn: Connection, database: string, mode: 'strict' | 'evolve'): Promise<void> {
    for (const sql of await this.ddl(conn, database, mode)) await conn.query(sql);
  }

  /**
   * The DDL `ensureTable` would run (CREATE TABLE, or ALTER TABLE … ADD COLUMN per missing
   * column in `evolve` mode), without running it; throws SINK_SCHEMA_MISMATCH like it. Reads
   * the catalog on `conn`. DDL commits implicitly in MySQL, so the caller picks the connection.
   */
  async ddl(conn: Connection, database: string, mode: 'strict' | 'evolve'): Promise<string[]> {
    const [rows] = await conn.query(
      `SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS
       WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [database, mysqlTableName(this.table)],
    );
    const existing = rows as { name: string }[];
    if (existing.length === 0) return [this.createSql()];
    const mismatch = (what: string) =>
      new TidemarkError('SINK_SCHEMA_MISMATCH', {
        detail: `MySQL table ${mysqlTableName(this.table)}: ${what}`,
      });
    const names = new Set(existing.map((e) => e.name));
    const out: string[] = [];
    for (const [i, c] of this.table.columns.entries()) {
      if (names.has(c.name)) continue;
      if (mode === 'strict') throw mismatch(`column ${c.name} is missing`);
      out.push(`ALTER TABLE ${this.#name} ADD COLUMN ${this.#cols[i]} ${this.#types[i]!.ddl}`);
    }
    const extra = existing.filter((e) => !this.table.columns.some((c) => c.name === e.name));
    if (mode === 'strict' && extra.length > 0)
      throw mismatch(`extra columns ${extra.map((e) => e.name).join(', ')}`);
    // The key: the primary key, or else the UNIQUE key the sink makes for keys that hold NULL.
    const [idx] = await conn.query(
      `SELECT INDEX_NAME AS idx, COLUMN_NAME AS name FROM information_schema.STATISTICS
       WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME IN ('PRIMARY', ?) ORDER BY SEQ_IN_INDEX`,
      [database, mysqlTableName(this.table), KEY_INDEX],
    );
    const indexed = idx as { idx: string; name: string }[];
    const primary = indexed.filter((e) => e.idx === 'PRIMARY');
    const key = (primary.length > 0 ? primary : indexed).map((e) => e.name);
    const want = this.table.keyColumns.map((i) => this.table.columns[i]!.name);
    if ([...key].sort().join('\0') !== [...want].sort().join('\0')) {
      throw mismatch(`key is (${key.join(', ')}), expected (${want.join(', ')})`);
    }
    return out;
  }

  async truncate(conn: Connection): Promise<void> {
    // TRUNCATE is DDL in MySQL (implicit commit); DELETE stays inside the transaction.
    await conn.query(`DELETE FROM ${this.#name}`);
  }

  /**
   * Full rows: insert or overwrite by key (plain inserts when keyless). A row whose key holds a
   * NULL is deleted (`<=>`) and inserted: the UNIQUE key does not see two NULLs as equal.
   */
  async upsert(conn: Connection, rows: readonly Row[]): Promise<void> {
    if (this.#nullableKey && rows.some((r) => this.#hasNullKey(r))) {
      for (const r of rows.filter((x) => this.#hasNullKey(x))) {
        await conn.query(`DELETE FROM ${this.#name} WHERE ${this.#keyWhere()}`, this.#keyValues(r));
        await conn.query(
          `INSERT INTO ${this.#name} (${this.#cols.join(', ')}) VALUES (${this.#cols.map((_, i) => this.#param(i)).join(', ')})`,
          this.#values(r),
        );
      }
      rows = rows.filter((x) => !this.#hasNullKey(x));
      if (rows.length === 0) return;
    }
    await this.#upsertValues(
      conn,
      rows.map((r) => this.#values(r)),
    );
  }

  /** Batched INSERT … ON DUPLICATE KEY UPDATE of rows given as bound values. */
  async #upsertValues(conn: Connection, rows: readonly MysqlValue[][]): Promise<void> {
    const keyed = this.table.keyColumns.length > 0;
    const nonKey = this.table.columns.map((_, i) => i).filter((i) => !this.table.keyColumns.includes(i));
    const onDup = !keyed
      ? ''
      : nonKey.length === 0
        ? ` ON DUPLICATE KEY UPDATE ${this.#cols[this.table.keyColumns[0]!]} = ${this.#cols[this.table.keyColumns[0]!]}`
        : ` ON DUPLICATE KEY UPDATE ${nonKey.map((i) => `${this.#cols[i]} = VALUES(${this.#cols[i]})`).join(', ')}`;
    const tuple = `(${this.#cols.map(() => '?').join(', ')})`;
    await this.#batched(
      rows,
      async (batch, values) => {
        const sql = `INSERT INTO ${this.#name} (${this.#cols.join(', ')}) VALUES ${batch.map(() => tuple).join(', ')}${onDup}`;
        await conn.query(sql, values);
      },
      (r) => r,
    );
  }

  /**
   * Key moves (sink.ts `TableChanges`): every old row is read first (one query per batch, each
   * branch an index lookup), then the new rows — changed cells from the move, UNCHANGED ones as
   * read — are upserted under their new keys, overwriting what is there. Reading all before
   * writing any keeps chains and cycles right (`3 from 2, 2 from 1`); old rows are not removed
   * here (a delete of the epoch does that). Returns how many rows it wrote.
   */
  async moveRows(conn: Connection, moves: readonly PartialUpdate[]): Promise<number> {
    const list = moves.filter((m): m is PartialUpdate & { fromKey: Row } => m.fromKey !== null);
    if (list.length === 0) return 0;
    const rows: MysqlValue[][] = [];
    for (let at = 0; at < list.length; at += MOVE_BATCH) {
      const batch = list.slice(at, at + MOVE_BATCH);
      // Locking reads: they read the latest rows and open no read view, which would make a table
      // created beside the open transaction (a later chunk's) unusable in it (error 1412).
      const branch = `(SELECT ? AS tidemark_n, t.* FROM ${this.#name} AS t WHERE ${this.#keyWhere('t.')} FOR UPDATE)`;
      const [found] = await conn.query(
        {
          sql: batch.map(() => branch).join(' UNION ALL '),
          rowsAsArray: true,
          // JSON as its text (mysql2 would parse it), to be written back as it was.
          typeCast: (field, next) => (field.type === 'JSON' ? field.string('utf8') : next()),
        },
        batch.flatMap((m, n) => [n, ...this.#keyValues(m.fromKey)]),
      );
      const old = new Map((found as unknown[][]).map((r) => [Number(r[0]), r.slice(1) as MysqlValue[]]));
      batch.forEach((m, n) => {
        const before = old.get(n);
        // The old row is not here (never replicated, or deleted): its unchanged values are unknown.
        if (!before) return;
        rows.push(
          this.table.columns.map((_, i) =>
            m.row[i] === UNCHANGED ? (before[i] ?? null) : this.#cell(i, m.row[i] as string | null),
          ),
        );
      });
    }
    await this.#upsertValues(conn, rows);
    return rows.length;
  }

  async deleteByKey(conn: Connection, keys: readonly Row[]): Promise<void> {
    if (this.#nullableKey && keys.some((k) => this.#hasNullKey(k))) {
      for (const k of keys.filter((x) => this.#hasNullKey(x)))
        await conn.query(`DELETE FROM ${this.#name} WHERE ${this.#keyWhere()}`, this.#keyValues(k));
      keys = keys.filter((x) => !this.#hasNullKey(x));
      if (keys.length === 0) return;
    }
    const keyCols = this.#keyCols();
    const tuple = keyCols.length === 1 ? '?' : `(${keyCols.map(() => '?').join(', ')})`;
    const lhs = keyCols.length === 1 ? keyCols[0]! : `(${keyCols.join(', ')})`;
    await this.#batched(
      keys,
      async (batch, values) => {
        await conn.query(
          `DELETE FROM ${this.#name} WHERE ${lhs} IN (${batch.map(() => tuple).join(', ')})`,
          values,
        );
      },
      (k) => this.#keyValues(k),
    );
  }

  /** Writes the changed cells of a row in place; UNCHANGED cells keep their value. */
  async partialUpdate(conn: Connection, row: readonly Cell[]): Promise<void> {
    const set = this.table.columns
      .map((_, i) => i)
      .filter((i) => row[i] !== UNCHANGED && !this.table.keyColumns.includes(i));
    if (set.length === 0) return;
    const values = set.map((i) => this.#cell(i, row[i] as string | null));
    await conn.query(
      `UPDATE ${this.#name} SET ${set.map((i) => `${this.#cols[i]} = ${this.#param(i)}`).join(', ')} WHERE ${this.#keyWhere()}`,
      [...values, ...this.#keyValues(row as Row)],
    );
  }

  async insertCopies(conn: Connection, row: Row, count: number): Promise<void> {
    await this.upsert(
      conn,
      Array.from({ length: count }, () => row),
    );
  }

  /** Deletes `count` rows equal to `row` (NULL-safe `<=>`) from a keyless table. */
  async deleteCopies(conn: Connection, row: Row, count: number): Promise<void> {
    const match = this.#cols.map((c, i) => `${c} <=> ${this.#param(i)}`).join(' AND ');
    await conn.query(
      `DELETE FROM ${this.#name} WHERE ${match} LIMIT ${Math.floor(count)}`,
      this.#values(row),
    );
  }

  async #batched<T>(
    items: readonly T[],
    run: (batch: T[], values: MysqlValue[]) => Promise<void>,
    valuesOf: (item: T) => MysqlValue[],
  ): Promise<void> {
    let batch: T[] = [];
    let values: MysqlValue[] = [];
    let bytes = 0;
    for (const item of items) {
      const v = valuesOf(item);
      for (const x of v) bytes += typeof x === 'string' || Buffer.isBuffer(x) ? x.length : 8;
      batch.push(item);
      values.push(...v);
      if (batch.length >= MAX_BATCH_ROWS || bytes >= MAX_BATCH_BYTES) {
        await run(batch, values);
        batch = [];
        values = [];
        bytes = 0;
      }
    }
    if (batch.length > 0) await run(batch, values);
  }

  #param(i: number): string {
    return this.#jsonCast && this.#types[i]!.json ? 'CAST(? AS JSON)' : '?';
  }

  #keyCols(): string[] {
    return this.table.keyColumns.map((i) => this.#cols[i]!);
  }

  /** Key columns that may hold NULL compare with `<=>` (NULL-safe, and still served by the index). */
  #keyWhere(prefix = ''): string {
    return this.table.keyColumns
      .map(
        (i) => `${prefix}${this.#cols[i]} ${this.table.columns[i]!.nullable ? '<=>' : '='} ${this.#param(i)}`,
      )
      .join(' AND ');
  }

  #hasNullKey(row: Row): boolean {
    return this.table.keyColumns.some((i) => row[i] === null);
  }

  #keyValues(row: Row): MysqlValue[] {
    return this.table.keyColumns.map((i) => this.#cell(i, row[i] ?? null));
  }

  #values(row: Row): MysqlValue[] {
    return this.table.columns.map((_, i) => this.#cell(i, row[i] ?? null));
  }

  #cell(i: number, text: string | null): MysqlValue {
    return text === null ? null : this.#types[i]!.convert(text);
  }
}
