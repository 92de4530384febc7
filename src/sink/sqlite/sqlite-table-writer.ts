/**
 * Writes one target table inside the sink's open transaction: DDL from the type mapping in
 * `sqlite-types.ts`, then prepared statements reused for every row (multi-row for upserts).
 */
import type Database from 'better-sqlite3';
import { UNCHANGED, type Cell, type Row } from '../../core/row.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { cellConverters, sqliteAffinity, type SqliteValue } from './sqlite-types.ts';
import { pgTypeKind } from '../shared/pg-type-kind.ts';

/** SQLite's default SQLITE_MAX_VARIABLE_NUMBER since 3.32. */
const MAX_VARIABLES = 32766;
const MAX_BATCH_ROWS = 200;

export function sqliteTableName(t: { schema: string; name: string }): string {
  return t.schema === 'public' ? t.name : `${t.schema}.${t.name}`;
}

export function sqliteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export class SqliteTableWriter {
  readonly #db: Database.Database;
  readonly #table: TableSchema;
  readonly #name: string;
  readonly #convert: ((text: string) => SqliteValue)[];
  readonly #statements = new Map<string, Database.Statement>();
  readonly #batchRows: number;

  constructor(db: Database.Database, table: TableSchema) {
    this.#db = db;
    this.#table = table;
    this.#name = sqliteIdent(sqliteTableName(table));
    this.#convert = cellConverters(table);
    this.#batchRows = Math.max(1, Math.min(MAX_BATCH_ROWS, Math.floor(MAX_VARIABLES / table.columns.length)));
  }

  /** True when `table` has the same columns and key as the one this writer was built for. */
  sameShape(table: TableSchema): boolean {
    const a = this.#table;
    return (
      a.columns.length === table.columns.length &&
      a.columns.every(
        (c, i) => c.name === table.columns[i]?.name && c.typeName === table.columns[i]?.typeName,
      ) &&
      a.keyColumns.join() === table.keyColumns.join()
    );
  }

  /**
   * Creates the table if missing. `strict` (snapshot): an existing table must have exactly our
   * columns and key. `evolve` (epochs): missing columns are added; extra ones are left alone.
   */
  ensureTable(mode: 'strict' | 'evolve'): void {
    const existing = this.#db.prepare(`PRAGMA table_info(${this.#name})`).all() as {
      name: string;
      type: string;
      pk: number;
    }[];
    const wanted = this.#table.columns.map((c) => ({
      name: c.name,
      type: sqliteAffinity(pgTypeKind(c, this.#table)),
    }));
    if (existing.length === 0) {
      const cols = wanted.map((c) => `${sqliteIdent(c.name)} ${c.type}`);
      const key = this.#keyNames();
      if (key.length > 0) cols.push(`PRIMARY KEY (${key.map(sqliteIdent).join(', ')})`);
      this.#db.exec(`CREATE TABLE ${this.#name} (${cols.join(', ')})`);
      return;
    }
    const byName = new Map(existing.map((c) => [c.name, c]));
    const mismatch = (what: string) =>
      new TidemarkError('SINK_SCHEMA_MISMATCH', {
        detail: `sqlite table ${sqliteTableName(this.#table)}: ${what}`,
      });
    for (const c of wanted) {
      const have = byName.get(c.name);
      if (!have) {
        if (mode === 'strict') throw mismatch(`column ${c.name} is missing`);
        this.#db.exec(`ALTER TABLE ${this.#name} ADD COLUMN ${sqliteIdent(c.name)} ${c.type}`);
      } else if (have.type.toUpperCase() !== c.type) {
        throw mismatch(`column ${c.name} is ${have.type}, expected ${c.type}`);
      }
    }
    if (mode === 'strict' && existing.length !== wanted.length) {
      const extra = existing.filter((e) => !wanted.some((w) => w.name === e.name)).map((e) => e.name);
      throw mismatch(`extra columns ${extra.join(', ')}`);
    }
    const haveKey = existing
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    if (haveKey.join('\0') !== this.#keyNames().join('\0')) {
      throw mismatch(`key is (${haveKey.join(', ')}), expected (${this.#keyNames().join(', ')})`);
    }
  }

  truncate(): void {
    this.#stmt('truncate', () => `DELETE FROM ${this.#name}`).run();
  }

  /** Inserts or overwrites full rows by key (plain inserts for keyless tables). */
  upsert(rows: readonly Row[]): void {
    const n = this.#batchRows;
    let i = 0;
    if (rows.length >= n) {
      const batch = this.#stmt(`upsert:${n}`, () => this.#upsertSql(n));
      for (; i + n <= rows.length; i += n) {
        const values: SqliteValue[] = [];
        for (let j = i; j < i + n; j++) this.#pushValues(values, rows[j] as Row);
        batch.run(values);
      }
    }
    const one = this.#stmt('upsert:1', () => this.#upsertSql(1));
    for (; i < rows.length; i++) one.run(this.#values(rows[i] as Row));
  }

  deleteByKey(keys: readonly Row[]): void {
    const where = this.#keyNames()
      .map((k) => `${sqliteIdent(k)} = ?`)
      .join(' AND ');
    const stmt = this.#stmt('delete', () => `DELETE FROM ${this.#name} WHERE ${where}`);
    for (const k of keys) stmt.run(this.#keyValues(k));
  }

  /** Writes the changed cells of a row; UNCHANGED cells keep their value (from `fromKey`'s row). */
  partialUpdate(row: readonly Cell[], fromKey: Row | null): void {
    const cols = this.#table.columns;
    if (fromKey === null) {
      const set = cols
        .map((_, i) => i)
        .filter((i) => row[i] !== UNCHANGED && !this.#table.keyColumns.includes(i));
      if (set.length === 0) return;
      const sql = `UPDATE ${this.#name} SET ${set.map((i) => `${sqliteIdent(cols[i]!.name)} = ?`).join(', ')} WHERE ${this.#keyWhere()}`;
      const values = set.map((i) => this.#cell(i, row[i] as string | null));
      this.#stmt(`update:${set.join(',')}`, () => sql).run([...values, ...this.#keyValues(row as Row)]);
      return;
    }
    const old = this.#stmt('select-by-key', () => `SELECT * FROM ${this.#name} WHERE ${this.#keyWhere()}`)
      .raw()
      .safeIntegers()
      .get(this.#keyValues(fromKey)) as SqliteValue[] | undefined;
    // The old row is not here (never replicated, or deleted): its unchanged values are unknown.
    if (!old) return;
    this.#stmt('delete', () => `DELETE FROM ${this.#name} WHERE ${this.#keyWhere()}`).run(
      this.#keyValues(fromKey),
    );
    const merged = cols.map((_, i) =>
      row[i] === UNCHANGED ? (old[i] ?? null) : this.#cell(i, row[i] as string | null),
    );
    this.#stmt('upsert:1', () => this.#upsertSql(1)).run(merged);
  }

  insertCopies(row: Row, count: number): void {
    const stmt = this.#stmt('insert:1', () => `INSERT INTO ${this.#name} VALUES (${this.#placeholders()})`);
    const values = this.#values(row);
    for (let i = 0; i < count; i++) stmt.run(values);
  }

  /** Deletes `count` rows equal to `row` (NULL-safe) from a keyless table. */
  deleteCopies(row: Row, count: number): void {
    const match = this.#table.columns.map((c) => `${sqliteIdent(c.name)} IS ?`).join(' AND ');
    this.#stmt(
      'delete-copies',
      () =>
        `DELETE FROM ${this.#name} WHERE rowid IN (SELECT rowid FROM ${this.#name} WHERE ${match} LIMIT ?)`,
    ).run([...this.#values(row), count]);
  }

  #upsertSql(rows: number): string {
    const cols = this.#table.columns.map((c) => sqliteIdent(c.name));
    const tuple = `(${this.#placeholders()})`;
    const values = Array.from({ length: rows }, () => tuple).join(', ');
    const insert = `INSERT INTO ${this.#name} (${cols.join(', ')}) VALUES ${values}`;
    const key = this.#keyNames();
    if (key.length === 0) return insert;
    const set = this.#table.columns
      .filter((_, i) => !this.#table.keyColumns.includes(i))
      .map((c) => `${sqliteIdent(c.name)} = excluded.${sqliteIdent(c.name)}`);
    const action = set.length === 0 ? 'NOTHING' : `UPDATE SET ${set.join(', ')}`;
    return `${insert} ON CONFLICT (${key.map(sqliteIdent).join(', ')}) DO ${action}`;
  }

  #placeholders(): string {
    return this.#table.columns.map(() => '?').join(', ');
  }

  #keyNames(): string[] {
    return this.#table.keyColumns.map((i) => this.#table.columns[i]!.name);
  }

  #keyWhere(): string {
    return this.#keyNames()
      .map((k) => `${sqliteIdent(k)} = ?`)
      .join(' AND ');
  }

  #keyValues(row: Row): SqliteValue[] {
    return this.#table.keyColumns.map((i) => this.#cell(i, row[i] ?? null));
  }

  #cell(i: number, text: string | null): SqliteValue {
    return text === null ? null : this.#convert[i]!(text);
  }

  #values(row: Row): SqliteValue[] {
    const out: SqliteValue[] = [];
    this.#pushValues(out, row);
    return out;
  }

  #pushValues(out: SqliteValue[], row: Row): void {
    for (let i = 0; i < this.#convert.length; i++) out.push(this.#cell(i, row[i] ?? null));
  }

  #stmt(key: string, sql: () => string): Database.Statement {
    let s = this.#statements.get(key);
    if (!s) {
      s = this.#db.prepare(sql());
      this.#statements.set(key, s);
    }
    return s;
  }
}
