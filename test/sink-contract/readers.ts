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
import { pgTypeKind } from '../../src/sink/shared/pg-type-kind.ts';
import { sqliteIdent, sqliteTableName } from '../../src/sink/sqlite/sqlite-table-writer.ts';
import { sqliteToText } from '../../src/sink/sqlite/sqlite-types.ts';
import { jsonRecord, replayRecords } from './file-readback.ts';
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
    case 'timestamptz':
      return `${text}+00`;
    case 'array':
      return jsonArrayToPg(JSON.parse(text));
    default:
      return text;
  }
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

/**
 * A consistent consumer of tidemark-json messages: buffers changes until an epoch marker, then
 * keeps those the marker commits — those of its `attempt` for an epoch written in chunks, else
 * those stamped with its position (an aborted attempt of an epoch can leave changes stamped with
 * another end position, or with another attempt) — and drops repeats of a Msg-Id already
 * applied. Returns the committed changes in order and the last marker's checkpoint.
 */
export function committedChanges(all: readonly StreamMessage[]): {
  changes: { data: unknown; msgId: string | undefined }[];
  checkpoint: Checkpoint | null;
} {
  const seen = new Set<string>();
  const changes: { data: unknown; msgId: string | undefined }[] = [];
  let buffer: { data: { position: string | null; attempt?: string }; msgId: string | undefined }[] = [];
  let checkpoint: Checkpoint | null = null;
  for (const m of all) {
    if (!isMarker(m)) {
      buffer.push({ data: parseJsonExact(m.data) as { position: string | null }, msgId: m.msgId });
      continue;
    }
    const marker = JSON.parse(m.data) as { epoch: number; position: string; attempt?: string };
    for (const b of buffer) {
      const committed =
        marker.attempt === undefined
          ? b.data.position === marker.position
          : b.data.attempt === marker.attempt;
      if (!committed) continue;
      if (b.msgId !== undefined && seen.has(b.msgId)) continue;
      if (b.msgId !== undefined) seen.add(b.msgId);
      changes.push(b);
    }
    buffer = [];
    checkpoint = { position: marker.position, epoch: marker.epoch };
  }
  return { changes, checkpoint };
}

/** A table's rows after replaying the committed tidemark-json changes of the stream. */
export async function readNatsTable(ref: NatsStreamRef, t: TableSchema): Promise<Row[]> {
  const { changes } = committedChanges(await streamMessages(ref));
  const records = changes
    .map((c) => c.data as { table: { schema: string; name: string } })
    .filter((o) => o.table.schema === t.schema && o.table.name === t.name)
    .map((o) => jsonRecord(o, t));
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
