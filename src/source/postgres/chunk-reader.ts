/**
 * Online snapshots: one table read a key range at a time, each chunk in its own short
 * transaction, bracketed by two WAL positions the pipeline reconciles with the stream
 * (docs/design/2026-12-04-online-snapshots.md has the argument).
 *
 *   low  := pg_current_wal_insert_lsn()            ┐ one short read-write transaction that also
 *           pg_current_xact_id()  (commit)         ┘ takes an xid: every older xid ends up < xmax(S)
 *   BEGIN REPEATABLE READ READ ONLY; LOCK TABLE t IN ACCESS SHARE MODE   (before the snapshot: see read)
 *                                                   snapshot S taken by the first query, which
 *     ambiguous := xids in xip(S) already committed  also finds commits S cannot see yet (→ retry)
 *     SELECT cols WHERE (key) > (after) ORDER BY key LIMIT n
 *   COMMIT
 *   high := pg_current_wal_insert_lsn(); a transactional watermark message (a commit past high
 *           reaches the stream promptly, even on an idle source)
 *
 * What the chunk holds: every transaction whose commit record starts before `low` (visible in S)
 * and none whose commit record starts at or after `high`. The snapshot lives only as long as one
 * chunk, so the source's xmin is held for milliseconds, not for the whole copy.
 *
 * A table without a key is read whole, in one such transaction (there is no range to resume from,
 * and rows cannot be told apart to reconcile them with the stream key by key). The snapshot's
 * xids come back too (`contains`): which of the stream's transactions the rows hold, exactly.
 */
import type pg from 'pg';
import { quoteIdent, quoteTable, type TableSchema } from '../../core/table-schema.ts';
import type { Row } from '../../core/row.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { ChunkRead, ChunkReader } from '../connector.ts';
import { Lsn } from './lsn.ts';
import { connectSourceClient } from './session-settings.ts';
import { wrapReadError } from './pg-errors.ts';
import { keyAfterPredicate, keyIndexOrder } from './key-range.ts';
import { snapshotContains } from './snapshot-visibility.ts';

export const WATERMARK_MESSAGE_PREFIX = 'tidemark.watermark';

const rawText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

/** How often a chunk whose snapshot misses an already committed transaction is tried again. */
const MAX_AMBIGUOUS_RETRIES = 200;
/**
 * Bytes of row text fetched per round trip when a keyless table is read whole through a cursor:
 * the row count of each fetch follows the rows' width (1 MB TOAST values included).
 */
const CURSOR_BATCH_BYTES = 4 << 20;
const CURSOR_MAX_ROWS = 10_000;

export class PgChunkReader implements ChunkReader<Lsn> {
  private client: pg.Client | null = null;
  private from: string | null = null;
  /** The key columns in the order of their index (keyIndexOrder), read once. */
  private keyOrder: readonly number[] | null = null;
  /** Snapshots thrown away because a committed transaction was not visible yet (tests, metrics). */
  ambiguousRetries = 0;

  constructor(
    private readonly url: string,
    readonly table: TableSchema,
  ) {}

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = await connectSourceClient(
      this.url,
      { types: rawText, application_name: 'tidemark:copy' } as pg.ClientConfig,
      'connecting for an online copy',
    );
    c.on('error', () => {});
    this.client = c;
    return c;
  }

  async estimateRows(): Promise<number | null> {
    return this.run('estimating the table size', async (c) => {
      const { rows } = await c.query<{ n: string | null }>(
        `SELECT CASE WHEN c.relkind = 'p'
                     THEN (SELECT sum(greatest(p.reltuples, 0)) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                            WHERE i.inhparent = c.oid)
                     ELSE greatest(c.reltuples, 0) END::bigint::text AS n
           FROM pg_class c WHERE c.oid = $1`,
        [String(this.table.relationId)],
      );
      const n = rows[0]?.n;
      return n === null || n === undefined ? null : Number(n);
    });
  }

  async read(
    after: Row | null,
    limit: number,
    each?: (rows: readonly Row[]) => void,
  ): Promise<ChunkRead<Lsn>> {
    return this.run('reading a chunk of an online copy', async (c) => {
      const t = this.table;
      this.from ??= await this.fromClause(c);
      const cols = t.columns.map((col) => quoteIdent(col.name)).join(', ');
      const keyed = !t.keyless && t.keyColumns.length > 0;
      let text = `SELECT ${cols} FROM ${this.from}`;
      let values: string[] = [];
      if (keyed) {
        // The same order as the initial snapshot's key-ordered read (snapshot-reader.ts).
        const order = (this.keyOrder ??= await keyIndexOrder(c, t));
        const keyCols = order.map((i) => t.columns[i]!);
        if (after !== null) {
          const p = keyAfterPredicate(keyCols, 1);
          text += ` WHERE ${p}`;
          values = order.map((i) => {
            const v = after[i];
            if (typeof v !== 'string')
              throw new TidemarkError('INTERNAL', { detail: 'a NULL key in a chunk bound' });
            return v;
          });
        }
        text += ` ORDER BY ${keyCols.map((k) => quoteIdent(k.name)).join(', ')} LIMIT ${Math.max(1, Math.floor(limit))}`;
      }
      for (let attempt = 0; ; attempt++) {
        await c.query('BEGIN');
        const { rows: lowRows } = await c.query<{ low: string }>(
          `SELECT pg_current_wal_insert_lsn()::text AS low`,
        );
        await c.query('SELECT pg_current_xact_id()');
        await c.query('COMMIT');
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        try {
          // Locked before the snapshot is taken: a table rewrite (ALTER … TYPE, a volatile default)
          // or TRUNCATE is not MVCC-safe — a snapshot older than it sees the table empty. Taken
          // first, the lock waits for one in progress, and the snapshot after it sees its result.
          await c.query(`LOCK TABLE ${quoteTable(t)} IN ACCESS SHARE MODE`);
          const { rows: amb } = await c.query<{ n: string; s: string }>(
            `SELECT (SELECT count(*) FROM pg_snapshot_xip(pg_current_snapshot()) x
                      WHERE pg_xact_status(x) = 'committed')::text AS n,
                    pg_current_snapshot()::text AS s`,
          );
          if (amb[0]?.n !== '0') {
            await c.query('ROLLBACK');
            this.ambiguousRetries++;
            if (attempt >= MAX_AMBIGUOUS_RETRIES) {
              throw new TidemarkError('SOURCE_COPY_UNSETTLED', {
                detail: `${quoteTable(t)}: every snapshot taken missed a transaction already committed (synchronous replication waiting?)`,
              });
            }
            await new Promise((r) => setTimeout(r, Math.min(50, 1 + attempt)));
            continue;
          }
          let rows: Row[] = [];
          if (!keyed && each) {
            // A cursor: the whole table passes through in batches, never held at once.
            await c.query(`DECLARE tidemark_copy NO SCROLL CURSOR FOR ${text}`);
            for (let n = 100; ;) {
              const batch = await c.query({
                text: `FETCH FORWARD ${n} FROM tidemark_copy`,
                rowMode: 'array',
              } satisfies pg.QueryArrayConfig);
              const got = batch.rows as Row[];
              if (got.length === 0) break;
              each(got);
              const rowBytes = textBytes(got) / got.length;
              n = Math.max(
                1,
                Math.min(CURSOR_MAX_ROWS, Math.floor(CURSOR_BATCH_BYTES / Math.max(1, rowBytes))),
              );
            }
          } else {
            const res = await c.query({ text, values, rowMode: 'array' } satisfies pg.QueryArrayConfig);
            rows = res.rows as Row[];
          }
          await c.query('COMMIT');
          const { rows: highRows } = await c.query<{ high: string }>(
            `SELECT pg_current_wal_insert_lsn()::text AS high, pg_logical_emit_message(true, '${WATERMARK_MESSAGE_PREFIX}', '') IS NOT NULL AS w`,
          );
          const last = rows.at(-1);
          return {
            rows,
            low: Lsn.parse(lowRows[0]!.low),
            high: Lsn.parse(highRows[0]!.high),
            lastKey: keyed && last ? last : null,
            done: !keyed || rows.length < limit,
            contains: snapshotContains(amb[0]!.s),
          };
        } catch (err) {
          await c.query('ROLLBACK').catch(() => {});
          throw err;
        }
      }
    });
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }

  /** `ONLY t` for a plain table (inheritance children are tables of their own), `t` for a partitioned root. */
  private async fromClause(c: pg.Client): Promise<string> {
    const { rows } = await c.query<{ relkind: string }>(
      `SELECT relkind::text AS relkind FROM pg_class WHERE oid = $1`,
      [String(this.table.relationId)],
    );
    if (!rows[0]) {
      throw new TidemarkError('SOURCE_SNAPSHOT_SCHEMA_MOVED', {
        detail: `${quoteTable(this.table)} no longer exists (id ${this.table.relationId})`,
      });
    }
    return rows[0].relkind === 'p' ? quoteTable(this.table) : `ONLY ${quoteTable(this.table)}`;
  }

  private async run<T>(action: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.connect());
    } catch (err) {
      // A broken connection is not reused: the next chunk connects again.
      if (!(err instanceof TidemarkError)) await this.close();
      throw err instanceof TidemarkError
        ? err
        : wrapReadError(err, { role: 'source', uri: this.url, action });
    }
  }
}

/** Characters of the rows' cells (their text size, near enough for sizing a fetch). */
function textBytes(rows: readonly Row[]): number {
  let n = 0;
  for (const r of rows) for (const c of r) n += c === null ? 1 : c.length;
  return n;
}
