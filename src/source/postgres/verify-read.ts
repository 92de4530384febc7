/**
 * `openRead` of the PostgreSQL connector (`core/table-read.ts`): one REPEATABLE READ, READ ONLY
 * transaction on an ordinary connection, for `tidemark verify` and reconcile.
 *
 * Its position is `pg_current_wal_insert_lsn()` read by the transaction's first statement, after
 * its snapshot was taken: every transaction the snapshot sees had written its commit record
 * before that, so each commit it sees is at or before the position (an upper bound; commits
 * between the snapshot and the read may be later than the snapshot and still before it — verify
 * only relies on the bound). Row versions are the tuples' `(tableoid, ctid, xmin)`: any insert,
 * update or delete in a range changes that set. The transaction holds the source's xmin while it
 * is open: verify shows that it does (`docs/operations.md`) and keeps it short per round.
 */
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { KeyRange, SourceReadSession } from '../../core/table-read.ts';
import type { Row } from '../../core/row.ts';
import { quoteIdent, quoteTable, type TableSchema } from '../../core/table-schema.ts';
import { CopyTextDecoder } from './copy-text.ts';
import { Lsn } from './lsn.ts';
import { wrapPgError } from './pg-errors.ts';
import { connectSourceClient } from './session-settings.ts';
import { pgKeyRangeWhere } from './key-range-sql.ts';

const rawText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
const BATCH_ROWS = 2000;

export async function openPgSourceRead(url: string): Promise<SourceReadSession> {
  const c = await connectSourceClient(
    url,
    { types: rawText, application_name: 'tidemark:verify' },
    'connecting for verify',
  );
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows } = await c.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l');
    return new PgSourceRead(c, url, Lsn.parse(rows[0]!.l));
  } catch (err) {
    await c.end().catch(() => {});
    throw wrapPgError(err, { role: 'source', uri: url, action: 'starting the verify snapshot' });
  }
}

/** Reads rows as COPY text (the same bytes the snapshot and pgoutput carry). */
export async function* copyRows(c: pg.Client, sql: string): AsyncGenerator<Row[]> {
  const stream = c.query(copyTo(`COPY (${sql}) TO STDOUT`));
  const decoder = new CopyTextDecoder();
  let batch: Row[] = [];
  for await (const data of stream as AsyncIterable<Buffer>) {
    for (const row of decoder.push(data)) batch.push(row);
    if (batch.length >= BATCH_ROWS) {
      yield batch;
      batch = [];
    }
  }
  decoder.end();
  if (batch.length > 0) yield batch;
}

class PgSourceRead implements SourceReadSession {
  readonly #from = new Map<number, string>();
  #closed = false;

  constructor(
    private readonly c: pg.Client,
    private readonly url: string,
    readonly position: Lsn,
  ) {}

  /** `ONLY t` for a plain table (inheritance children are tables of their own), `t` for a partitioned root. */
  async #fromOf(t: TableSchema): Promise<string> {
    let from = this.#from.get(t.relationId);
    if (from === undefined) {
      const { rows } = await this.#q<{ relkind: string }>(
        'SELECT relkind::text AS relkind FROM pg_class WHERE oid = $1',
        [t.relationId],
      );
      from = rows[0]?.relkind === 'p' ? quoteTable(t) : `ONLY ${quoteTable(t)}`;
      this.#from.set(t.relationId, from);
    }
    return from;
  }

  async #q<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.c.query<R>(text, values);
    } catch (err) {
      throw wrapPgError(err, { role: 'source', uri: this.url, action: 'reading for verify' });
    }
  }

  async *readRows(t: TableSchema, range: KeyRange): AsyncGenerator<readonly Row[]> {
    const cols = t.columns.map((c) => quoteIdent(c.name)).join(', ');
    const sql = `SELECT ${cols} FROM ${await this.#fromOf(t)} WHERE ${t.keyless ? 'true' : pgKeyRangeWhere(t, range)}`;
    try {
      yield* copyRows(this.c, sql);
    } catch (err) {
      throw wrapPgError(err, {
        role: 'source',
        uri: this.url,
        action: `reading ${quoteTable(t)} for verify`,
      });
    }
  }

  async chunkBounds(t: TableSchema, chunkRows: number): Promise<Row[]> {
    if (t.keyless) return [];
    const from = await this.#fromOf(t);
    const keyList = t.keyColumns.map((i) => quoteIdent(t.columns[i]!.name)).join(', ');
    const sql = `SELECT ${keyList} FROM (SELECT ${keyList}, row_number() OVER (ORDER BY ${keyList}) AS rn
                   FROM ${from}) s WHERE rn % ${Math.max(1, Math.floor(chunkRows))} = 0 ORDER BY ${keyList}`;
    const out: Row[] = [];
    try {
      for await (const batch of copyRows(this.c, sql)) out.push(...batch);
    } catch (err) {
      throw wrapPgError(err, {
        role: 'source',
        uri: this.url,
        action: `cutting ${quoteTable(t)} into ranges`,
      });
    }
    return out;
  }

  async rangeVersion(t: TableSchema, range: KeyRange): Promise<string | null> {
    const where = t.keyless ? 'true' : pgKeyRangeWhere(t, range);
    const { rows } = await this.#q<{ v: string }>(
      `SELECT count(*)::text || ':' || coalesce(md5(string_agg(tableoid::text || '/' || ctid::text || '/' || xmin::text, ','
                ORDER BY tableoid, ctid)), '') AS v
         FROM ${await this.#fromOf(t)} WHERE ${where}`,
    );
    return rows[0]!.v;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.c.query('ROLLBACK').catch(() => {});
    await this.c.end().catch(() => {});
  }
}
