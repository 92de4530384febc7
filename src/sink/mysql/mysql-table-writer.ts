/**
 * Statements for one target table in MySQL: DDL from `mysql-types.ts`, batched multi-row
 * `INSERT … ON DUPLICATE KEY UPDATE`, batched `DELETE … WHERE (k1,k2) IN ((…),(…))`. Values are
 * escaped client-side by mysql2 (`query`, not `execute`), so batches are not capped by the
 * 65,535 placeholders of server-side prepared statements; a batch is cut at `MAX_BATCH_ROWS`
 * rows or `MAX_BATCH_BYTES` of values, well under max_allowed_packet (16 MiB by default).
 */
import type { Connection } from 'mysql2/promise';
import { UNCHANGED, type Cell, type Row } from '../../core/row.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { mysqlColumnType, type MysqlColumnType, type MysqlValue } from './mysql-types.ts';

const MAX_BATCH_ROWS = 1000;
const MAX_BATCH_BYTES = 4 << 20;

export function mysqlTableName(t: { schema: string; name: string }): string {
  const name = t.schema === 'public' ? t.name : `${t.schema}.${t.name}`;
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

  /**
   * Maps every column first: an unmappable column fails here, before anything is written.
   * `jsonCast`: the server has a real JSON type (MySQL, TiDB) and JSON values are compared as
   * `CAST(? AS JSON)`; MariaDB's JSON is LONGTEXT and compares as text.
   */
  constructor(table: TableSchema, options: { jsonCast: boolean }) {
    this.table = table;
    this.#jsonCast = options.jsonCast;
    this.#name = mysqlIdent(mysqlTableName(table));
    this.#types = table.columns.map((c) => mysqlColumnType(c, table));
    this.#cols = table.columns.map((c) => mysqlIdent(c.name));
  }

  createSql(): string {
    const cols = this.table.columns.map(
      (c, i) => `${this.#cols[i]} ${this.#types[i]!.ddl}${c.isKey ? ' NOT NULL' : ''}`,
    );
    if (this.table.keyColumns.length > 0) cols.push(`PRIMARY KEY (${this.#keyCols().join(', ')})`);
    return `CREATE TABLE IF NOT EXISTS ${this.#name} (${cols.join(', ')}) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`;
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
      `SELECT COLUMN_NAME AS name, COLUMN_KEY AS k FROM information_schema.COLUMNS
       WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [database, mysqlTableName(this.table)],
    );
    const existing = rows as { name: string; k: string }[];
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
    const key = existing.filter((e) => e.k === 'PRI').map((e) => e.name);
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

  /** Full rows: insert or overwrite by key (plain inserts when keyless). */
  async upsert(conn: Connection, rows: readonly Row[]): Promise<void> {
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
      (r) => this.#values(r),
    );
  }

  async deleteByKey(conn: Connection, keys: readonly Row[]): Promise<void> {
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

  /** Writes the changed cells; UNCHANGED cells keep their value, read from `fromKey`'s row when the key changed. */
  async partialUpdate(conn: Connection, row: readonly Cell[], fromKey: Row | null): Promise<void> {
    const cols = this.table.columns;
    if (fromKey === null) {
      const set = cols
        .map((_, i) => i)
        .filter((i) => row[i] !== UNCHANGED && !this.table.keyColumns.includes(i));
      if (set.length === 0) return;
      const values = set.map((i) => this.#cell(i, row[i] as string | null));
      await conn.query(
        `UPDATE ${this.#name} SET ${set.map((i) => `${this.#cols[i]} = ${this.#param(i)}`).join(', ')} WHERE ${this.#keyWhere()}`,
        [...values, ...this.#keyValues(row as Row)],
      );
      return;
    }
    // New row = changed cells from the epoch + unchanged cells from the old row, in one statement.
    const select = cols.map((_, i) => (row[i] === UNCHANGED ? `old.${this.#cols[i]}` : this.#param(i)));
    const values = cols.flatMap((_, i) =>
      row[i] === UNCHANGED ? [] : [this.#cell(i, row[i] as string | null)],
    );
    await conn.query(
      `INSERT INTO ${this.#name} (${this.#cols.join(', ')}) SELECT ${select.join(', ')} FROM ${this.#name} AS old WHERE ${this.#keyWhere('old.')}`,
      [...values, ...this.#keyValues(fromKey)],
    );
    await conn.query(`DELETE FROM ${this.#name} WHERE ${this.#keyWhere()}`, this.#keyValues(fromKey));
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

  #keyWhere(prefix = ''): string {
    return this.table.keyColumns.map((i) => `${prefix}${this.#cols[i]} = ${this.#param(i)}`).join(' AND ');
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
