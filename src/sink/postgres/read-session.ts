/**
 * `openRead` of the PostgreSQL sink (`core/table-read.ts`): a REPEATABLE READ, READ ONLY
 * transaction in the sink's session settings, so rows read back are the text the sink wrote,
 * and the checkpoint row is read in the same snapshot as the rows.
 */
import type pg from 'pg';
import type { Checkpoint } from '../../core/epoch.ts';
import type { Row } from '../../core/row.ts';
import type { KeyRange, SinkReadSession } from '../../core/table-read.ts';
import { quoteIdent, quoteTable, type TableSchema } from '../../core/table-schema.ts';
import { pgKeyRangeWhere, pgKeysWhere } from '../../source/postgres/key-range-sql.ts';
import { wrapPgError } from '../../source/postgres/pg-errors.ts';
import { connectPgClient } from '../../source/postgres/pg-tls.ts';
import { copyRows } from '../../source/postgres/verify-read.ts';

const KEYS_PER_QUERY = 500;

export async function openPostgresSinkRead(
  uri: string,
  changefeedId: string,
  sessionSql: string,
): Promise<SinkReadSession> {
  const c = await connectPgClient(
    uri,
    { application_name: 'tidemark:verify' },
    { role: 'sink', action: 'connecting for verify' },
  );
  try {
    await c.query(sessionSql);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows: has } = await c.query<{ e: boolean }>(
      "SELECT to_regclass('tidemark.checkpoints') IS NOT NULL AS e",
    );
    const { rows } = has[0]?.e
      ? await c.query<{ position: string; epoch: string }>(
          'SELECT position, epoch::text AS epoch FROM tidemark.checkpoints WHERE changefeed = $1',
          [changefeedId],
        )
      : { rows: [] };
    const r = rows[0];
    const checkpoint = r ? { position: r.position, epoch: Number(r.epoch) } : null;
    return new PostgresSinkRead(c, uri, checkpoint);
  } catch (err) {
    await c.end().catch(() => {});
    throw wrapPgError(err, { role: 'sink', uri, action: 'starting the verify read' });
  }
}

class PostgresSinkRead implements SinkReadSession {
  readonly #exists = new Map<string, boolean>();
  #closed = false;

  constructor(
    private readonly c: pg.Client,
    private readonly uri: string,
    readonly checkpoint: Checkpoint | null,
  ) {}

  async #q<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.c.query<R>(text, values);
    } catch (err) {
      throw wrapPgError(err, { role: 'sink', uri: this.uri, action: 'reading for verify' });
    }
  }

  async #tableExists(t: TableSchema): Promise<boolean> {
    const name = quoteTable(t);
    let e = this.#exists.get(name);
    if (e === undefined) {
      const { rows } = await this.#q<{ oid: string | null }>('SELECT to_regclass($1)::oid::text AS oid', [
        name,
      ]);
      e = rows[0]?.oid !== null && rows[0]?.oid !== undefined;
      this.#exists.set(name, e);
    }
    return e;
  }

  #select(t: TableSchema, where: string): string {
    return `SELECT ${t.columns.map((c) => quoteIdent(c.name)).join(', ')} FROM ${quoteTable(t)} WHERE ${where}`;
  }

  async *readRows(t: TableSchema, range: KeyRange): AsyncGenerator<readonly Row[]> {
    if (!(await this.#tableExists(t))) return;
    try {
      yield* copyRows(this.c, this.#select(t, t.keyless ? 'true' : pgKeyRangeWhere(t, range)));
    } catch (err) {
      throw wrapPgError(err, { role: 'sink', uri: this.uri, action: `reading ${quoteTable(t)} for verify` });
    }
  }

  async readRowsByKeys(t: TableSchema, keys: readonly Row[]): Promise<Row[]> {
    if (!(await this.#tableExists(t))) return [];
    const out: Row[] = [];
    for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
      try {
        for await (const batch of copyRows(
          this.c,
          this.#select(t, pgKeysWhere(t, keys.slice(i, i + KEYS_PER_QUERY))),
        ))
          out.push(...batch);
      } catch (err) {
        throw wrapPgError(err, { role: 'sink', uri: this.uri, action: `reading ${quoteTable(t)} by key` });
      }
    }
    return out;
  }

  async hasRows(t: TableSchema): Promise<boolean> {
    if (!(await this.#tableExists(t))) return false;
    const { rows } = await this.#q<{ e: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${quoteTable(t)}) AS e`);
    return rows[0]?.e === true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.c.query('ROLLBACK').catch(() => {});
    await this.c.end().catch(() => {});
  }
}
