/**
 * Reads the initial snapshot of the selected tables in parallel chunks, every reader inside the
 * same exported snapshot (the one the replication slot was created with), so the rows equal the
 * source at exactly the slot's consistent point.
 *
 *   slot created ── snapshot "S" ──► reader 1: SET TRANSACTION SNAPSHOT S; COPY chunk … ─┐
 *                                 ├► reader 2: …                                         ├─► bounded queue ─► sink
 *                                 └► reader N: …                                         ┘
 *
 * Tables are cut into ranges of heap pages (TID range scans), keyed or not; a partitioned root is
 * read whole through the root. `readInKeyOrder` reads one keyed table in key order instead (one
 * connection, one COPY), so that the runtime can commit it in parts an online copy goes on from.
 */
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { quoteIdent, quoteTable, type TableSchema } from '../../core/table-schema.ts';
import type { SnapshotRows } from '../../core/epoch.ts';
import { BoundedQueue } from '../../core/bounded-queue.ts';
import { CopyTextBatcher, decodeLine } from './copy-text.ts';
import type { KeyOrderedRows } from '../connector.ts';
import { connectSourceClient } from './session-settings.ts';
import { wrapReadError } from './pg-errors.ts';
import { keyIndexOrder } from './key-range.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';

export interface SnapshotReadOptions {
  url: string;
  snapshotName: string;
  tables: readonly TableSchema[];
  parallelism: number;
  chunkRows: number;
  /** Bytes of COPY text per emitted batch (whole rows; one row may exceed it). */
  batchBytes?: number;
  /** Bytes of rows buffered between the readers and the consumer. */
  bufferBytes?: number;
}

interface Chunk {
  table: TableSchema;
  where: string;
  /** `ONLY t` for a plain table (its inheritance children are tables of their own), `t` for a partitioned root (every partition). */
  from: string;
}

/**
 * The tables were described before the snapshot's slot existed: a schema change committed in
 * between is before the snapshot's position, so the stream will not carry it as a barrier. The
 * catalog as the snapshot sees it must be the described one; else the start is retried.
 */
async function assertShapesAtSnapshot(c: pg.Client, tables: readonly TableSchema[]): Promise<void> {
  for (const t of tables) {
    const { rows } = await c.query<{ relname: string; nspname: string; cols: string | null }>(
      `SELECT c.relname, n.nspname,
              (SELECT string_agg(a.attname || ':' || a.atttypid || ':' || a.atttypmod, ',' ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  AND a.attgenerated = '') AS cols
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`,
      [t.relationId],
    );
    const r = rows[0];
    const expected = t.columns.map((col) => `${col.name}:${col.typeOid}:${col.typeMod}`).join(',');
    if (!r || r.relname !== t.name || r.nspname !== t.schema || (r.cols ?? '') !== expected) {
      throw new TidemarkError('SOURCE_SNAPSHOT_SCHEMA_MOVED', {
        detail: `${quoteTable(t)} changed between its description and the snapshot`,
      });
    }
  }
}

const rawText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

export async function* readSnapshot(opts: SnapshotReadOptions): AsyncGenerator<SnapshotRows> {
  const clients: pg.Client[] = [];
  const queue = new BoundedQueue<SnapshotRows>({ capacityBytes: opts.bufferBytes ?? 32 * 1024 * 1024 });
  try {
    const n = Math.max(1, opts.parallelism);
    for (let i = 0; i < n; i++) {
      const c = await connectSourceClient(opts.url, { types: rawText }, 'connecting for the snapshot');
      clients.push(c);
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await c.query(`SET TRANSACTION SNAPSHOT '${opts.snapshotName.replaceAll("'", "''")}'`);
    }
    await assertShapesAtSnapshot(clients[0]!, opts.tables);
    const chunks: Chunk[] = [];
    for (const t of opts.tables) chunks.push(...(await planChunks(clients[0]!, t, opts.chunkRows)));
    let next = 0;
    const worker = async (client: pg.Client) => {
      for (;;) {
        const chunk = chunks[next++];
        if (!chunk) return;
        await copyChunk(client, chunk, opts.batchBytes ?? 256 * 1024, queue);
      }
    };
    const workers = Promise.all(clients.map(worker)).then(
      () => queue.close(),
      (err: unknown) =>
        queue.fail(wrapReadError(err, { role: 'source', uri: opts.url, action: 'reading the snapshot' })),
    );
    yield* queue;
    await workers;
  } catch (err) {
    throw wrapReadError(err, { role: 'source', uri: opts.url, action: 'reading the snapshot' });
  } finally {
    queue.fail(new Error('snapshot reader closed'));
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}

export interface KeyOrderReadOptions {
  url: string;
  snapshotName: string;
  table: TableSchema;
  /** Bytes of COPY text per emitted batch (whole rows; one row may exceed it). */
  batchBytes?: number;
  /** Bytes of rows buffered between the reader and the consumer. */
  bufferBytes?: number;
}

/**
 * One table with a key, in key order, inside the exported snapshot: `ORDER BY` the key columns in
 * their index's order (keyIndexOrder),
 * the order the online copy's `ROW(key) > ROW(after)` chunks follow (`chunk-reader.ts`: the same
 * columns, their default operators and collations, the same session settings for the key's text).
 * Each batch carries its last row. One COPY, read ahead into a buffer while the consumer writes.
 */
export async function* readInKeyOrder(opts: KeyOrderReadOptions): AsyncGenerator<KeyOrderedRows> {
  const t = opts.table;
  const queue = new BoundedQueue<KeyOrderedRows>({ capacityBytes: opts.bufferBytes ?? 32 * 1024 * 1024 });
  const action = { role: 'source' as const, uri: opts.url, action: 'reading the snapshot' };
  let client: pg.Client | null = null;
  try {
    const c = await connectSourceClient(opts.url, { types: rawText }, 'connecting for the snapshot');
    client = c;
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await c.query(`SET TRANSACTION SNAPSHOT '${opts.snapshotName.replaceAll("'", "''")}'`);
    await assertShapesAtSnapshot(c, [t]);
    // The key's index, walked: a sort of the whole table would spill it to disk before the first row.
    await c.query('SET LOCAL enable_sort = off');
    const { rows } = await c.query<{ relkind: string }>(
      `SELECT relkind::text AS relkind FROM pg_class WHERE oid = $1`,
      [t.relationId],
    );
    const from = rows[0]?.relkind === 'p' ? quoteTable(t) : `ONLY ${quoteTable(t)}`;
    const cols = t.columns.map((col) => quoteIdent(col.name)).join(', ');
    const order = (await keyIndexOrder(c, t)).map((i) => quoteIdent(t.columns[i]!.name)).join(', ');
    const sql = `COPY (SELECT ${cols} FROM ${from} ORDER BY ${order}) TO STDOUT`;
    const reading = (async () => {
      const batcher = new CopyTextBatcher(t, opts.batchBytes ?? 256 * 1024);
      const push = async (b: SnapshotRows) => {
        const copyText = b.copyText!;
        const bytes = copyText.bytes;
        const start = bytes.lastIndexOf(0x0a, bytes.length - 2) + 1;
        const batch: KeyOrderedRows = {
          table: b.table,
          get rows() {
            return b.rows;
          },
          copyText,
          lastKey: decodeLine(bytes, start, bytes.length - 1),
        };
        await queue.push(batch, bytes.length);
      };
      for await (const data of c.query(copyTo(sql)) as AsyncIterable<Buffer>) {
        for (const out of batcher.push(data)) await push(out);
      }
      const last = batcher.end();
      if (last) await push(last);
    })().then(
      () => queue.close(),
      (err: unknown) => queue.fail(wrapReadError(err, action)),
    );
    yield* queue;
    await reading;
  } catch (err) {
    throw wrapReadError(err, action);
  } finally {
    queue.fail(new Error('snapshot reader closed'));
    await client?.end().catch(() => {});
  }
}

async function copyChunk(
  client: pg.Client,
  chunk: Chunk,
  batchBytes: number,
  queue: BoundedQueue<SnapshotRows>,
) {
  const cols = chunk.table.columns.map((c) => quoteIdent(c.name)).join(', ');
  const sql = `COPY (SELECT ${cols} FROM ${chunk.from} WHERE ${chunk.where}) TO STDOUT`;
  const stream = client.query(copyTo(sql));
  // Not decoded here: the rows travel as COPY text, decoded only by a consumer that reads cells.
  const batcher = new CopyTextBatcher(chunk.table, batchBytes);
  for await (const data of stream as AsyncIterable<Buffer>) {
    for (const out of batcher.push(data)) await queue.push(out, out.copyText!.bytes.length);
  }
  const last = batcher.end();
  if (last) await queue.push(last, last.copyText!.bytes.length);
}

/**
 * Cuts a table into chunks of about `chunkRows` rows by ranges of heap pages (TID range scans,
 * PostgreSQL 14+): sequential reads, and no planning query over the whole key index (which took
 * seconds per million rows before the first row moved). Inside the exported snapshot every visible
 * row version has one fixed place, so the ranges, the last one open-ended, hold each row once.
 */
async function planChunks(client: pg.Client, t: TableSchema, chunkRows: number): Promise<Chunk[]> {
  const { rows: est } = await client.query<{ tuples: string; pages: string; relkind: string }>(
    `SELECT greatest(reltuples, 0)::bigint AS tuples, relkind::text AS relkind,
            (pg_relation_size(oid) / current_setting('block_size')::int)::bigint AS pages
       FROM pg_class WHERE oid = $1`,
    [t.relationId],
  );
  const partitioned = est[0]?.relkind === 'p';
  const from = partitioned ? quoteTable(t) : `ONLY ${quoteTable(t)}`;
  // A partitioned root has no pages or statistics of its own: it is read as one chunk, through
  // the root (every partition).
  const tuples = Number(est[0]?.tuples ?? 0);
  const pages = Number(est[0]?.pages ?? 0);
  if (partitioned || pages <= 1 || tuples <= chunkRows) return [{ table: t, where: 'true', from }];
  const pagesPerChunk = Math.max(1, Math.floor((pages * chunkRows) / Math.max(tuples, 1)));
  const out: Chunk[] = [];
  for (let p = 0; p < pages; p += pagesPerChunk) {
    const hi = p + pagesPerChunk >= pages ? '' : ` AND ctid < '(${p + pagesPerChunk},0)'::tid`;
    out.push({ table: t, where: `ctid >= '(${p},0)'::tid${hi}`, from });
  }
  return out;
}
