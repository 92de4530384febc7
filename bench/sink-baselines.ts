/**
 * The baseline of each sink target: a plain batched write loop with the same client library into
 * the same store — one statement (or one transaction) per source transaction of rows, inserts as
 * INSERT, updates as the store's upsert. No collapsing, no checkpoint.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Row } from '../src/core/row.ts';

export interface BaselineWriter {
  /** Writes one batch; `upsert` overwrites rows with the same id. Keys in a batch are distinct. */
  write(batch: readonly Row[], options: { upsert: boolean }): Promise<void>;
  close(): Promise<void>;
}

const COLUMNS = 'id, grp, payload';

export async function postgresBaseline(url: string): Promise<BaselineWriter> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('CREATE TABLE items (id bigint PRIMARY KEY, grp integer NOT NULL, payload text NOT NULL)');
  return {
    async write(batch, { upsert }) {
      const values = batch.map((_, i) => `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`).join(',');
      const tail = upsert
        ? ' ON CONFLICT (id) DO UPDATE SET grp = excluded.grp, payload = excluded.payload'
        : '';
      await c.query(`INSERT INTO items (${COLUMNS}) VALUES ${values}${tail}`, batch.flat());
    },
    close: () => c.end(),
  };
}

export async function sqliteBaseline(path: string): Promise<BaselineWriter> {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, payload TEXT NOT NULL)');
  const insert = db.prepare(`INSERT INTO items (${COLUMNS}) VALUES (?, ?, ?)`);
  const upsert = db.prepare(
    `INSERT INTO items (${COLUMNS}) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET grp = excluded.grp, payload = excluded.payload`,
  );
  const apply = db.transaction((batch: readonly Row[], up: boolean) => {
    const st = up ? upsert : insert;
    for (const r of batch) st.run(Number(r[0]), Number(r[1]), r[2]);
  });
  return {
    async write(batch, options) {
      apply(batch, options.upsert);
    },
    async close() {
      db.close();
    },
  };
}

/** Appends JSON lines; fsyncs every `fsyncEveryRows` rows, like the file sink at each epoch. */
export async function fileBaseline(path: string, fsyncEveryRows: number): Promise<BaselineWriter> {
  const fd = openSync(path, 'a');
  let unsynced = 0;
  return {
    async write(batch, { upsert }) {
      const op = upsert ? 'u' : 'c';
      writeSync(
        fd,
        batch.map((r) => JSON.stringify({ op, id: r[0], grp: r[1], payload: r[2] })).join('\n') + '\n',
      );
      unsynced += batch.length;
      if (unsynced >= fsyncEveryRows) {
        fsyncSync(fd);
        unsynced = 0;
      }
    },
    async close() {
      fsyncSync(fd);
      closeSync(fd);
    },
  };
}

export async function mysqlBaseline(url: string): Promise<BaselineWriter> {
  const c = await mysql.createConnection(url);
  await c.query(
    'CREATE TABLE items (id bigint PRIMARY KEY, grp int NOT NULL, payload text NOT NULL) ENGINE=InnoDB',
  );
  return {
    async write(batch, { upsert }) {
      const tail = upsert ? ' ON DUPLICATE KEY UPDATE grp = VALUES(grp), payload = VALUES(payload)' : '';
      await c.query(`INSERT INTO items (${COLUMNS}) VALUES ?${tail}`, [batch]);
    },
    close: () => c.end(),
  };
}

/** Publishes each row to JetStream and waits for every ack of the batch. */
export async function natsBaseline(options: {
  port: number;
  user: string;
  pass: string;
  stream: string;
}): Promise<BaselineWriter> {
  const nc = await connect({ servers: `127.0.0.1:${options.port}`, user: options.user, pass: options.pass });
  const jsm = await jetstreamManager(nc);
  const subject = `${options.stream}.public.items`;
  await jsm.streams.add({ name: options.stream, subjects: [`${options.stream}.>`] });
  const js = jetstream(nc);
  const enc = new TextEncoder();
  return {
    async write(batch, { upsert }) {
      const op = upsert ? 'u' : 'c';
      await Promise.all(
        batch.map((r) =>
          js.publish(subject, enc.encode(JSON.stringify({ op, id: r[0], grp: r[1], payload: r[2] }))),
        ),
      );
    },
    close: () => nc.close(),
  };
}
