/**
 * `openRead` of the MySQL sink (`core/table-read.ts`): one `START TRANSACTION WITH CONSISTENT
 * SNAPSHOT, READ ONLY` in UTC, values read as raw bytes and turned back into the pivot text form
 * by the column's PostgreSQL type (the inverse of `mysql-types.ts`): TINYINT(1) → `t`/`f`, blobs
 * → `\x…`, DATETIME(6) of a timestamptz → `…+00`, JSON arrays → array literals.
 */
import mysql from 'mysql2/promise';
import type { Checkpoint } from '../../core/epoch.ts';
import type { Row } from '../../core/row.ts';
import type { KeyRange, SinkReadSession } from '../../core/table-read.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { formatArrayLiteral, type ArrayItem } from '../../decode/pg-array.ts';
import { pgTypeKind } from '../shared/pg-type-kind.ts';
import { wrapMysqlError } from '../../source/mysql/mysql-errors.ts';
import { MARIADB_LIMITS_LIFTED } from '../../source/mysql/mysql-uri.ts';
import { mysqlIdent, mysqlTableName } from './mysql-table-writer.ts';
import { mysqlColumnType, type MysqlValue } from './mysql-types.ts';

const BATCH_ROWS = 2000;
const KEYS_PER_QUERY = 500;

export async function openMysqlSinkRead(
  uri: string,
  config: mysql.ConnectionOptions,
  changefeedId: string,
): Promise<SinkReadSession> {
  const io = async <T>(action: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw wrapMysqlError(err, { role: 'sink', uri, action });
    }
  };
  const conn = await io('connecting for verify', () =>
    mysql.createConnection({ ...config, rowsAsArray: true, typeCast: (field) => field.buffer() }),
  );
  try {
    await io('starting the verify read', async () => {
      await conn.query(`SET SESSION time_zone = '+00:00'${MARIADB_LIMITS_LIFTED}`);
      await conn.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    });
    const checkpoint = await io('reading the checkpoint', async () => {
      try {
        const [rows] = await conn.query(
          'SELECT position, epoch FROM tidemark_checkpoints WHERE changefeed = ?',
          [changefeedId],
        );
        const r = (rows as (Buffer | null)[][])[0];
        return r ? { position: String(r[0]), epoch: Number(String(r[1])) } : null;
      } catch (err) {
        if ((err as { errno?: number }).errno === 1146) return null;
        throw err;
      }
    });
    return new MysqlSinkRead(conn, uri, checkpoint);
  } catch (err) {
    await conn.end().catch(() => conn.destroy());
    throw err;
  }
}

class MysqlSinkRead implements SinkReadSession {
  constructor(
    private readonly conn: mysql.Connection,
    private readonly uri: string,
    readonly checkpoint: Checkpoint | null,
  ) {}

  async #query(t: TableSchema, where: string, params: MysqlValue[]): Promise<Row[]> {
    // FLOAT prints ~6 significant digits: read it widened to DOUBLE, exactly the stored single.
    const cols = t.columns
      .map((c) => (pgTypeKind(c, t) === 'float4' ? `(${mysqlIdent(c.name)} + 0e0)` : mysqlIdent(c.name)))
      .join(', ');
    try {
      const [rows] = await this.conn.query(
        `SELECT ${cols} FROM ${mysqlIdent(mysqlTableName(t))} WHERE ${where}`,
        params,
      );
      return (rows as (Buffer | null)[][]).map((r) =>
        t.columns.map((_, i) => toPivotText(r[i] ?? null, t, i)),
      );
    } catch (err) {
      if ((err as { errno?: number }).errno === 1146) return [];
      throw wrapMysqlError(err, {
        role: 'sink',
        uri: this.uri,
        action: `reading ${t.schema}.${t.name} for verify`,
      });
    }
  }

  #keyValues(t: TableSchema, key: Row): MysqlValue[] {
    return t.keyColumns.map((i, j) => {
      const v = key[j] ?? null;
      return v === null ? null : mysqlColumnType(t.columns[i]!, t).convert(v);
    });
  }

  #keyTuple(t: TableSchema): string {
    return `(${t.keyColumns.map((i) => mysqlIdent(t.columns[i]!.name)).join(', ')})`;
  }

  async *readRows(t: TableSchema, range: KeyRange): AsyncGenerator<readonly Row[]> {
    const where: string[] = [];
    const params: MysqlValue[] = [];
    const marks = `(${t.keyColumns.map(() => '?').join(', ')})`;
    if (!t.keyless && range.lower !== null) {
      where.push(`${this.#keyTuple(t)} > ${marks}`);
      params.push(...this.#keyValues(t, range.lower));
    }
    if (!t.keyless && range.upper !== null) {
      where.push(`${this.#keyTuple(t)} <= ${marks}`);
      params.push(...this.#keyValues(t, range.upper));
    }
    const rows = await this.#query(t, where.length > 0 ? where.join(' AND ') : 'TRUE', params);
    for (let i = 0; i < rows.length; i += BATCH_ROWS) yield rows.slice(i, i + BATCH_ROWS);
  }

  async readRowsByKeys(t: TableSchema, keys: readonly Row[]): Promise<Row[]> {
    const out: Row[] = [];
    const one = `(${t.keyColumns.map((i) => `${mysqlIdent(t.columns[i]!.name)} <=> ?`).join(' AND ')})`;
    for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
      const part = keys.slice(i, i + KEYS_PER_QUERY);
      out.push(
        ...(await this.#query(
          t,
          part.map(() => one).join(' OR '),
          part.flatMap((k) => this.#keyValues(t, k)),
        )),
      );
    }
    return out;
  }

  async hasRows(t: TableSchema): Promise<boolean> {
    try {
      const [rows] = await this.conn.query(`SELECT 1 FROM ${mysqlIdent(mysqlTableName(t))} LIMIT 1`);
      return (rows as unknown[]).length > 0;
    } catch (err) {
      if ((err as { errno?: number }).errno === 1146) return false;
      throw wrapMysqlError(err, { role: 'sink', uri: this.uri, action: `reading ${t.schema}.${t.name}` });
    }
  }

  async close(): Promise<void> {
    await this.conn.query('ROLLBACK').catch(() => {});
    await this.conn.end().catch(() => this.conn.destroy());
  }
}

/** A stored value as PostgreSQL would print it (`mysql-types.ts` in reverse). */
function toPivotText(v: Buffer | null, t: TableSchema, i: number): string | null {
  if (v === null) return null;
  const text = v.toString('utf8');
  switch (pgTypeKind(t.columns[i]!, t)) {
    case 'bool':
      return text === '1' ? 't' : 'f';
    case 'bytea':
      return `\\x${v.toString('hex')}`;
    case 'timestamptz':
      return `${text}+00`;
    case 'array':
      return jsonArrayToPg(JSON.parse(text.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"')));
    default:
      return text;
  }
}

function jsonArrayToPg(value: unknown): string {
  const item = (x: unknown): ArrayItem => {
    if (x === null) return null;
    if (Array.isArray(x)) return x.map(item);
    if (typeof x === 'boolean') return x ? 't' : 'f';
    return typeof x === 'string' ? x : typeof x === 'object' ? JSON.stringify(x) : String(x);
  };
  return Array.isArray(value) ? formatArrayLiteral(value.map(item)) : String(value);
}
