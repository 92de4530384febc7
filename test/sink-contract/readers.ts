/**
 * Reading each sink's store back as PostgreSQL text rows, the way a downstream reader would:
 * PostgreSQL, SQLite and MySQL by SELECT, NATS as a consistent consumer (buffer until the epoch marker, keep
 * what the marker commits, de-duplicate by Nats-Msg-Id). The file sink's reader is
 * `file-readback.ts`. Shared by the contract suite and the end-to-end tests.
 */
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { existsSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Row } from '../../src/core/row.ts';
import { quoteTable, type TableSchema } from '../../src/core/table-schema.ts';
import type { Checkpoint } from '../../src/core/epoch.ts';
import { mysqlIdent, mysqlTableName } from '../../src/sink/mysql/mysql-table-writer.ts';
import { encodeText } from '../../src/decode/pg-values.ts';
import { pgTypeKind } from '../../src/sink/shared/pg-type-kind.ts';
import { sqliteIdent, sqliteTableName } from '../../src/sink/sqlite/sqlite-table-writer.ts';
import { sqliteToText } from '../../src/sink/sqlite/sqlite-types.ts';
import { jsonRecord, replayRecords, type Rec } from './file-readback.ts';
import { jsonArrayToPg, parseJsonExact } from './json-readback.ts';

export function readSqlite(path: string, t: TableSchema): Row[] {
  const db = new Database(path, { readonly: true });
  try {
    const rows = db
      .prepare(`SELECT * FROM ${sqliteIdent(sqliteTableName(t))}`)
      .raw()
      .safeIntegers()
      .all() as unknown[][];
    return rows.map((r) => t.columns.map((c, i) => sqliteToText(r[i], c, t)));
  } finally {
    db.close();
  }
}

export function sqliteCheckpoint(path: string, changefeed: string): Checkpoint | null {
  if (!existsSync(path)) return null;
  const db = new Database(path, { readonly: true });
  try {
    const row = db
      .prepare('SELECT position, epoch FROM tidemark_checkpoints WHERE changefeed = ?')
      .get(changefeed) as { position: string; epoch: number } | undefined;
    return row ? { position: row.position, epoch: Number(row.epoch) } : null;
  } catch {
    return null; // not created yet
  } finally {
    db.close();
  }
}

export async function readMysql(url: string, t: TableSchema): Promise<Row[]> {
  const conn = await mysql.createConnection({
    uri: url,
    rowsAsArray: true,
    // Raw bytes for every column; toPgText decides per PostgreSQL type.
    typeCast: (field) => field.buffer(),
  });
  try {
    const [rows] = await conn.query(`SELECT * FROM ${mysqlIdent(mysqlTableName(t))}`);
    return (rows as unknown[][]).map((r) => t.columns.map((_, i) => toPgText(r[i], t, i)));
  } catch (err) {
    if ((err as { errno?: number }).errno === 1146) return [];
    throw err;
  } finally {
    await conn.end();
  }
}

export async function mysqlCheckpoint(url: string, changefeed: string): Promise<Checkpoint | null> {
  const conn = await mysql.createConnection({ uri: url });
  try {
    const [rows] = await conn.query('SELECT position, epoch FROM tidemark_checkpoints WHERE changefeed = ?', [
      changefeed,
    ]);
    const row = (rows as { position: string; epoch: number }[])[0];
    return row ? { position: row.position, epoch: Number(row.epoch) } : null;
  } catch (err) {
    if ((err as { errno?: number }).errno === 1146) return null;
    throw err;
  } finally {
    await conn.end();
  }
}

function toPgText(v: unknown, t: TableSchema, i: number): string | null {
  if (v === null || v === undefined) return null;
  const column = t.columns[i]!;
  const text = (v as Buffer).toString('utf8');
  switch (pgTypeKind(column, t)) {
    case 'bool':
      return text === '1' ? 't' : 'f';
    case 'bytea':
      return `\\x${(v as Buffer).toString('hex')}`;
    // The sink's DATETIME(6) prints six fraction digits; PostgreSQL's text form drops trailing zeros.
    case 'timestamp':
      return trimFraction(text);
    case 'timestamptz':
      return `${trimFraction(text)}+00`;
    // MySQL prints `3.40282e38`, PostgreSQL `3.40282e+38`: the same value, PostgreSQL's text.
    case 'float4':
    case 'float8':
      return encodeText(Number(text), column.typeOid) ?? text;
    case 'array':
      return jsonArrayToPg(JSON.parse(text));
    default:
      return text;
  }
}

function trimFraction(text: string): string {
  return text.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
}

export interface NatsStreamRef {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly stream: string;
}

export interface StreamMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: string;
  readonly msgId: string | undefined;
}

/** Every message of the stream, in order (an ordered consumer: one pass, no per-message request). */
export async function streamMessages(ref: NatsStreamRef): Promise<StreamMessage[]> {
  const nc = await connect({ servers: `127.0.0.1:${ref.port}`, user: ref.user, pass: ref.password });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(ref.stream).catch(() => null);
    const out: StreamMessage[] = [];
    if (!info || info.state.messages === 0) return out;
    const consumer = await jetstream(nc).consumers.get(ref.stream);
    const messages = await consumer.consume();
    for await (const m of messages) {
      out.push({ seq: m.seq, subject: m.subject, data: m.string(), msgId: m.headers?.get('Nats-Msg-Id') });
      if (m.seq >= info.state.last_seq) break;
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** The last epoch marker of `changefeed` on the stream (one request), as a checkpoint. */
export async function natsCheckpoint(ref: NatsStreamRef, changefeed: string): Promise<Checkpoint | null> {
  const nc = await connect({ servers: `127.0.0.1:${ref.port}`, user: ref.user, pass: ref.password });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(ref.stream).catch(() => null);
    if (!info) return null;
    const m = await jsm.streams.getMessage(ref.stream, {
      last_by_subj: `_tidemark.${ref.stream}.${changefeed}`,
    });
    if (!m) return null;
    const marker = m.json<{ epoch: number; position: string }>();
    return { position: marker.position, epoch: marker.epoch };
  } finally {
    await nc.close();
  }
}

export function isMarker(m: StreamMessage): boolean {
  return m.subject.startsWith('_tidemark.');
}

/** One marker's worth of committed changes, in stream order. */
export interface CommittedEpoch {
  readonly marker: { epoch: number; position: string; snapshot?: boolean; attempt?: string };
  readonly changes: { data: Record<string, unknown>; msgId: string | undefined }[];
}

/**
 * The consumer rule of docs/sinks.md ("Exactly once from the stream"), over tidemark-json
 * messages: buffer data messages until the changefeed's next epoch marker; the marker commits
 * those of its `attempt` (an epoch written in chunks) or else those stamped with its epoch *and*
 * position — not leftovers of aborted attempts, of another writer fenced out, or of an epoch
 * cut elsewhere; among those, a Nats-Msg-Id seen before in the same buffer is a replay and is
 * skipped; a marker not after the last one commits nothing. Returns the committed epochs in
 * order and the last marker's checkpoint.
 */
export function committedChanges(all: readonly StreamMessage[]): {
  epochs: CommittedEpoch[];
  checkpoint: Checkpoint | null;
} {
  const epochs: CommittedEpoch[] = [];
  let buffer: { data: Record<string, unknown>; msgId: string | undefined }[] = [];
  let checkpoint: Checkpoint | null = null;
  for (const m of all) {
    if (!isMarker(m)) {
      buffer.push({ data: parseJsonExact(m.data) as Record<string, unknown>, msgId: m.msgId });
      continue;
    }
    const marker = JSON.parse(m.data) as CommittedEpoch['marker'];
    const pending = buffer;
    buffer = [];
    if (checkpoint !== null && marker.epoch <= checkpoint.epoch) continue;
    const seen = new Set<string>();
    const changes = pending.filter(({ data, msgId }) => {
      const mine =
        marker.attempt !== undefined
          ? data.attempt === marker.attempt
          : data.epoch === marker.epoch && data.position === marker.position;
      if (!mine) return false;
      if (msgId === undefined) return true;
      if (seen.has(msgId)) return false;
      seen.add(msgId);
      return true;
    });
    epochs.push({ marker, changes });
    checkpoint = { position: marker.position, epoch: marker.epoch };
  }
  return { epochs, checkpoint };
}

/**
 * A table's rows after replaying the committed tidemark-json changes of the stream: a snapshot
 * marker starts over; key moves of one table in one epoch's chunk are one run (file-readback.ts).
 */
export async function readNatsTable(ref: NatsStreamRef, t: TableSchema): Promise<Row[]> {
  return natsTableFrom(await streamMessages(ref), t);
}

export function natsTableFrom(messages: readonly StreamMessage[], t: TableSchema): Row[] {
  let records: Rec[] = [];
  for (const { marker, changes } of committedChanges(messages).epochs) {
    if (marker.snapshot) records = [];
    for (const { data } of changes) {
      // Schema records (docs/sinks.md): this reader reads one shape, `t`'s, by column names.
      if (data.op === 'schema') continue;
      const table = data.table as { schema: string; name: string };
      if (table.schema !== t.schema || table.name !== t.name) continue;
      records.push({ ...jsonRecord(data, t), run: `${marker.epoch}/${String(data.chunk ?? 0)}` });
    }
  }
  return replayRecords(t, records);
}

/** Every column in the text form the source printed (same session settings as the source). */
export async function readPostgres(url: string, t: TableSchema): Promise<Row[]> {
  const c = new pg.Client({ connectionString: url, types: { getTypeParser: () => (v: string) => v } });
  await c.connect();
  try {
    await c.query(
      "SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = postgres; SET extra_float_digits = 3; SET bytea_output = hex",
    );
    const exists = await c.query('SELECT to_regclass($1) AS r', [quoteTable(t)]);
    if (!exists.rows[0]?.r) return [];
    const r = await c.query({ text: `SELECT * FROM ${quoteTable(t)}`, rowMode: 'array' });
    return r.rows as Row[];
  } finally {
    await c.end();
  }
}
