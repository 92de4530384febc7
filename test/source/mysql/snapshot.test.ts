/**
 * Snapshot then stream with no gap and no duplicate, while writers keep committing: the
 * snapshot's rows at P plus `replicate(after P)`'s changes, applied in order, equal the source's
 * final table — every committed row arrives exactly once. Keys of several types, parallel chunks.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Row } from '../../../src/core/row.ts';
import { MysqlConnector } from '../../../src/source/mysql/mysql-connector.ts';
import { freePort } from '../../support/pg-cluster.ts';
import { startMariaDbSource, type MariaDbSource } from '../../support/mariadb-source.ts';
import { collect, iterate, sawRow } from './helpers.ts';

let src: MariaDbSource;
beforeAll(async () => {
  src = await startMariaDbSource({ port: await freePort(55755) });
});
afterAll(async () => {
  await src?.stop();
});

const TABLES = {
  ints: 'CREATE TABLE ints (id bigint PRIMARY KEY, v int NOT NULL)',
  strs: 'CREATE TABLE strs (k varchar(40) COLLATE utf8mb4_unicode_ci, n int, v int NOT NULL, PRIMARY KEY (k, n))',
  bins: 'CREATE TABLE bins (k varbinary(16) PRIMARY KEY, v int NOT NULL)',
  nokey: 'CREATE TABLE nokey (a int, v int)',
} as const;

function keyOf(table: string, row: Row): string {
  if (table === 'strs') return `${row[0]}|${row[1]}`;
  if (table === 'nokey') return JSON.stringify(row);
  return row[0]!;
}

describe('MariaDB connector: snapshot', () => {
  it('gives every row exactly once across the switch to the stream, under concurrent writes', async () => {
    const db = await src.freshDatabase('snap');
    for (const ddl of Object.values(TABLES)) await src.sql(db.name, ddl);
    const seed: string[] = [];
    for (let i = 0; i < 300; i++) {
      seed.push(
        `INSERT INTO ints VALUES (${i * 7}, 0); INSERT INTO strs VALUES ('k${i % 17} é', ${i}, 0); INSERT INTO bins VALUES (UNHEX(MD5(${i})), 0); INSERT INTO nokey VALUES (${i}, 0)`,
      );
    }
    await src.sql(db.name, seed.join(';'));
    const c = new MysqlConnector({ uri: db.url });
    onTestFinished(() => c.close());
    const tables = (await c.describe(Object.keys(TABLES))).tables;
    await c.capture(tables);
    // Writers: each transaction bumps a row of every table and inserts new ones.
    let stop = false;
    const writer = async (w: number) => {
      const conn = await src.connect(db.name);
      let n = 0;
      while (!stop) {
        const i = (n * 13 + w) % 300;
        await conn.query(
          `START TRANSACTION; UPDATE ints SET v = v + 1 WHERE id = ${i * 7}; INSERT INTO ints VALUES (${100_000 + w * 10_000 + n}, 1);
           UPDATE strs SET v = v + 1 WHERE n = ${i}; DELETE FROM bins WHERE k = UNHEX(MD5(${i})); INSERT INTO bins VALUES (UNHEX(MD5(${1000 + w * 10_000 + n})), 1);
           UPDATE nokey SET v = v + 1 WHERE a = ${i}; COMMIT`,
        );
        n++;
      }
      await conn.end();
      return n;
    };
    const writers = [writer(1), writer(2)];
    await new Promise((r) => setTimeout(r, 300));
    const snap = await c.snapshot(tables, { parallelism: 3, chunkRows: 50 });
    const state = new Map<string, Map<string, Row>>(Object.keys(TABLES).map((t) => [t, new Map()]));
    for await (const chunk of snap.rows) {
      const m = state.get(chunk.table.name)!;
      for (const row of chunk.rows) {
        const k = keyOf(chunk.table.name, row);
        if (chunk.table.name !== 'nokey')
          expect(m.has(k), `${chunk.table.name} ${k} twice in the snapshot`).toBe(false);
        m.set(k, row);
      }
    }
    await snap.release();
    const session = await c.replicate({
      after: snap.position,
      knownTables: tables,
      acceptStartAfter: () => false,
    });
    onTestFinished(() => session.close());
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    const written = await Promise.all(writers);
    expect(written.every((n) => n > 0)).toBe(true);
    await src.sql(db.name, `INSERT INTO ints VALUES (-1, -1)`);
    const events = await collect(iterate(session), sawRow('ints', '-1'));
    for (const e of events) {
      if (e.tag === 'insert') {
        const m = state.get(e.table.name)!;
        const k = keyOf(e.table.name, e.row);
        if (e.table.name !== 'nokey') expect(m.has(k), `${e.table.name} ${k} inserted twice`).toBe(false);
        m.set(k, e.row);
      } else if (e.tag === 'update') {
        const m = state.get(e.table.name)!;
        const k = keyOf(e.table.name, e.old!);
        expect(m.has(k), `${e.table.name} ${k} updated before it existed`).toBe(true);
        m.delete(k);
        m.set(keyOf(e.table.name, e.row as Row), e.row as Row);
      } else if (e.tag === 'delete') {
        const m = state.get(e.table.name)!;
        const k = keyOf(e.table.name, e.old);
        expect(m.has(k), `${e.table.name} ${k} deleted before it existed`).toBe(true);
        m.delete(k);
      }
    }
    for (const t of Object.keys(TABLES)) {
      const rows = (await src.sql(db.name, `SELECT * FROM ${t}`)) as Record<string, unknown>[];
      expect(state.get(t)!.size, t).toBe(rows.length);
    }
    const sums = (await src.sql(
      db.name,
      'SELECT (SELECT SUM(v) FROM ints) a, (SELECT SUM(v) FROM strs) b, (SELECT SUM(v) FROM nokey) c',
    )) as Record<string, string>[];
    const sum = (t: string) => [...state.get(t)!.values()].reduce((s, r) => s + Number(r[r.length - 1]), 0);
    expect([sum('ints'), sum('strs'), sum('nokey')]).toEqual([
      Number(sums[0]!.a),
      Number(sums[0]!.b),
      Number(sums[0]!.c),
    ]);
  });

  it('refuses (retriably) a snapshot of tables whose shape changed since they were described', async () => {
    const db = await src.freshDatabase('snapddl');
    await src.sql(
      db.name,
      'CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO t VALUES (1, 1)',
    );
    const c = new MysqlConnector({ uri: db.url });
    onTestFinished(() => c.close());
    const tables = (await c.describe(['t'])).tables;
    await c.capture(tables);
    // Described with two columns; the snapshot would be taken after a third was added.
    await src.sql(db.name, "ALTER TABLE t ADD COLUMN note varchar(8) NOT NULL DEFAULT 'fresh'");
    const err = await c.snapshot(tables, { parallelism: 1, chunkRows: 100 }).then(
      (s) => s.release().then(() => null),
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'SOURCE_SNAPSHOT_SCHEMA_MOVED', retriable: true });
    expect(String((err as Error).message)).toContain(`${db.name}.t`);
  });
});
