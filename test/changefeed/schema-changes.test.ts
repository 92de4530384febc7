/**
 * Schema changes as barriers (issue 11): the everyday migrations reach the downstream at their
 * commit position, inside the same atomic epochs, while a writer keeps writing; the changefeed
 * never stops for them and never diverges. Compared with the source — column names, types,
 * values — in PostgreSQL and SQLite sinks; a reader checks in every snapshot that a new column is
 * never visible with the old epoch's rows; a randomized sequence of DDL and DML is checked
 * against PostgreSQL itself.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { expectSameTables, sinkCheckpoint, testConfig, withClient } from '../support/changefeed.ts';
import { caughtUp, startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import { readSqlite, sqliteCheckpoint } from '../sink-contract/readers.ts';
import { PostgresConnector } from '../../src/source/postgres/pg-connector.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';

/** Column names and types of a table, as information_schema prints them. */
async function columnsOf(url: string, schema: string, table: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const r = await c.query(
      `SELECT column_name || ' ' || format_type(a.atttypid, a.atttypmod) AS c
         FROM information_schema.columns ic
         JOIN pg_attribute a ON a.attrelid = format('%I.%I', ic.table_schema, ic.table_name)::regclass
                            AND a.attname = ic.column_name
        WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      [schema, table],
    );
    return r.rows.map((x: { c: string }) => x.c);
  });
}

async function expectSameShapeAndRows(src: TestDatabase, dst: TestDatabase, tables: string[]): Promise<void> {
  for (const t of tables) {
    expect(await columnsOf(dst.url, 'public', t), `${t}: columns`).toEqual(
      await columnsOf(src.url, 'public', t),
    );
  }
  await expectSameTables(
    src.url,
    dst.url,
    tables.map((t) => `public.${t}`),
  );
}

/** A writer committing small transactions into `t(id, v)` until stopped. */
function writer(db: TestDatabase, table: string): { stop(): Promise<number> } {
  let stop = false;
  let n = 0;
  const done = (async () => {
    const c = await db.connect();
    while (!stop) {
      n++;
      await c.query(
        `INSERT INTO ${table} (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`,
        [(n % 300) + 1, n],
      );
      if (n % 10 === 0) await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return n;
    },
  };
}

const MIGRATIONS: { name: string; sql: string }[] = [
  { name: 'add a column', sql: `ALTER TABLE t ADD COLUMN a text` },
  { name: 'add a column with a constant default', sql: `ALTER TABLE t ADD COLUMN d int NOT NULL DEFAULT 7` },
  { name: 'rename a column', sql: `ALTER TABLE t RENAME COLUMN a TO a2` },
  { name: 'widen varchar', sql: `ALTER TABLE t ALTER COLUMN s TYPE varchar(50)` },
  { name: 'int → bigint', sql: `ALTER TABLE t ALTER COLUMN v TYPE bigint` },
  { name: 'numeric(12,2) → numeric(20,4)', sql: `ALTER TABLE t ALTER COLUMN amount TYPE numeric(20,4)` },
  {
    name: 'a new enum label, used at once',
    sql: `ALTER TYPE mood ADD VALUE 'glad'; UPDATE t SET m = 'glad' WHERE id % 7 = 0`,
  },
  { name: 'drop a column', sql: `ALTER TABLE t DROP COLUMN old` },
  {
    name: 'two DDLs in quick succession',
    sql: `ALTER TABLE t ADD COLUMN q1 int DEFAULT 1; ALTER TABLE t ADD COLUMN q2 text DEFAULT 'two'`,
  },
  {
    name: 'DDL and DML in one transaction',
    sql: `BEGIN; ALTER TABLE t ADD COLUMN x int DEFAULT 0; UPDATE t SET x = id; COMMIT`,
  },
  { name: 'truncate', sql: `TRUNCATE t2` },
];

describe('schema changes as barriers', () => {
  it(
    'every everyday migration reaches PostgreSQL and SQLite at its position, under a concurrent writer',
    { timeout: 240_000 },
    async () => {
      const src = await freshDatabase('ddl_src');
      const dst = await freshDatabase('ddl_dst');
      const sqlite = join(mkdtempSync(join(tmpdir(), 'tm-ddl-')), 'replica.db');
      await src.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok');
      CREATE TABLE t (id int PRIMARY KEY, v int, s varchar(10), amount numeric(12,2), m mood, old text);
      CREATE TABLE t2 (id int PRIMARY KEY, v int);
      INSERT INTO t SELECT g, g, 's' || g, g * 1.25, 'ok', 'x' FROM generate_series(1, 300) g;
      INSERT INTO t2 SELECT g, g FROM generate_series(1, 50) g;
    `);
      const pgFeed = startChangefeed(
        testConfig({ id: 'pgddl', source: src.url, sink: dst.url, tables: ['public.*'] }),
        { logger: silentLogger },
      );
      const liteFeed = startChangefeed(
        testConfig({
          id: 'liteddl',
          source: src.url,
          sink: `sqlite://${sqlite}`,
          tables: ['public.t', 'public.t2'],
        }),
        { logger: silentLogger },
      );
      await caughtUp(src, dst, { id: 'pgddl' });
      const w = writer(src, 't');
      for (const m of MIGRATIONS) {
        // One transaction when it says so, else each statement on its own (in quick succession).
        for (const sql of m.sql.startsWith('BEGIN') ? [m.sql] : m.sql.split('; ')) await src.query(sql);
        await src.query(`INSERT INTO t2 (id, v) SELECT coalesce(max(id), 0) + 1, 0 FROM t2`);
        await new Promise((r) => setTimeout(r, 150));
        for (const f of [pgFeed, liteFeed]) expect(f.status().error, `${m.name}: ${f.id}`).toBeNull();
      }
      // A table created later that the pattern selects: created downstream at its position.
      await src.query(`CREATE TABLE t3 (id int PRIMARY KEY, note text); INSERT INTO t3 VALUES (1, 'born')`);
      await src.query(`INSERT INTO t3 VALUES (2, 'later')`);
      // A renamed table is renamed downstream.
      await src.query(`ALTER TABLE t3 RENAME TO t4`);
      await src.query(`INSERT INTO t4 VALUES (3, 'renamed')`);
      await w.stop();
      await caughtUp(src, dst, { id: 'pgddl' });
      for (const f of [pgFeed, liteFeed]) expect(f.status().error, f.id).toBeNull();
      await expectSameShapeAndRows(src, dst, ['t', 't2', 't4']);
      expect((await dst.query(`SELECT to_regclass('public.t3') AS r`)).rows[0]?.r).toBeNull();

      // SQLite: same values (its types are storage classes), read back as PostgreSQL text.
      const target = Lsn.parse((await src.query(`SELECT pg_current_wal_insert_lsn()::text AS l`)).rows[0]!.l);
      for (let i = 0; i < 600; i++) {
        const cp = sqliteCheckpoint(sqlite, 'liteddl');
        if (cp && Lsn.parse(cp.position).compare(target) >= 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const connector = new PostgresConnector({ url: src.url, heartbeatIntervalMs: 1000 });
      try {
        const { tables } = await connector.describe(['public.t', 'public.t2']);
        for (const table of tables) {
          const want = await withClient(src.url, async (c) => {
            const res = await c.query({
              text: `SELECT * FROM public.${table.name}`,
              rowMode: 'array',
              types: { getTypeParser: () => (v: string) => v },
            });
            return res.rows as (string | null)[][];
          });
          const got = readSqlite(sqlite, table);
          const key = (r: readonly (string | null)[]) => r.join('\u0001');
          expect(got.map(key).sort(), `sqlite ${table.name}`).toEqual(want.map(key).sort());
        }
      } finally {
        await connector.close();
      }
      await pgFeed.stop();
      await liteFeed.stop();
    },
  );

  it('a dropped table is dropped downstream (or kept, by policy); TRUNCATE of two tables in one statement', async () => {
    const src = await freshDatabase('ddldrop_src');
    const dropDst = await freshDatabase('ddldrop_drop');
    const keepDst = await freshDatabase('ddldrop_keep');
    await src.query(`
      CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE c (id int PRIMARY KEY);
      INSERT INTO a SELECT generate_series(1, 5); INSERT INTO b SELECT generate_series(1, 5); INSERT INTO c VALUES (1);
    `);
    const drop = startChangefeed(
      testConfig({ id: 'drop', source: src.url, sink: dropDst.url, tables: ['a', 'b', 'c'] }),
      {
        logger: silentLogger,
      },
    );
    const keep = startChangefeed(
      testConfig({
        id: 'keep',
        source: src.url,
        sink: keepDst.url,
        tables: ['a', 'b', 'c'],
        schemaChanges: { dropTable: 'keep' },
      }),
      { logger: silentLogger },
    );
    await caughtUp(src, dropDst, { id: 'drop' });
    await caughtUp(src, keepDst, { id: 'keep' });
    await src.query(`TRUNCATE a, b`);
    await src.query(`INSERT INTO a VALUES (9); DROP TABLE c`);
    await caughtUp(src, dropDst, { id: 'drop' });
    await caughtUp(src, keepDst, { id: 'keep' });
    for (const f of [drop, keep]) expect(f.status().error, f.id).toBeNull();
    await expectSameTables(src.url, dropDst.url, ['a', 'b']);
    await expectSameTables(src.url, keepDst.url, ['a', 'b']);
    expect((await dropDst.query(`SELECT to_regclass('public.c') AS r`)).rows[0]?.r).toBeNull();
    expect((await keepDst.query(`SELECT count(*)::int AS n FROM c`)).rows[0]?.n).toBe(1);
    await drop.stop();
    await keep.stop();
  });

  it('a reader never sees a new column with the old epoch’s rows', async () => {
    const src = await freshDatabase('ddlatom_src');
    const dst = await freshDatabase('ddlatom_dst');
    await src.query(
      `CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 500) g`,
    );
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['t'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    const reader = await dst.connect();
    let stop = false;
    let reads = 0;
    let seenNew = 0;
    const violations: string[] = [];
    const reading = (async () => {
      while (!stop) {
        await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        const cols = await reader.query(
          `SELECT attname FROM pg_attribute WHERE attrelid = 'public.t'::regclass AND attnum > 0 AND NOT attisdropped`,
        );
        const names = cols.rows.map((r: { attname: string }) => r.attname);
        for (const c of ['x', 'y']) {
          if (!names.includes(c)) continue;
          seenNew++;
          // Each column came with an UPDATE in its own transaction: never visible without it.
          const bad = await reader.query(
            `SELECT count(*)::int AS n FROM t WHERE ${c} IS DISTINCT FROM id * ${c === 'x' ? 1 : 2}`,
          );
          if (bad.rows[0].n > 0)
            violations.push(`${c}: ${bad.rows[0].n} rows without the values of its transaction`);
        }
        await reader.query('COMMIT');
        reads++;
      }
    })();
    await src.query(`BEGIN; ALTER TABLE t ADD COLUMN x int DEFAULT 0; UPDATE t SET x = id; COMMIT`);
    await src.query(`UPDATE t SET v = v + 1 WHERE id < 100`);
    await src.query(
      `BEGIN; UPDATE t SET v = v + 1; ALTER TABLE t ADD COLUMN y int; UPDATE t SET y = id * 2; COMMIT`,
    );
    await caughtUp(src, dst);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await reading;
    expect(violations).toEqual([]);
    expect(reads).toBeGreaterThan(10);
    expect(seenNew).toBeGreaterThan(0);
    await expectSameShapeAndRows(src, dst, ['t']);
    await feed.stop();
  });

  it('with schemaChanges.recopy: fail, a rewrite with a volatile default stops the changefeed at the barrier naming table, DDL and fix; nothing after it is applied', async () => {
    const src = await freshDatabase('ddlvol_src');
    const dst = await freshDatabase('ddlvol_dst');
    await src.query(
      `CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 10) g`,
    );
    const feed = startChangefeed(
      testConfig({ source: src.url, sink: dst.url, tables: ['t'], schemaChanges: { recopy: 'fail' } }),
      { logger: silentLogger },
    );
    await caughtUp(src, dst);
    await src.query(`INSERT INTO t VALUES (11, 11)`);
    await caughtUp(src, dst); // an epoch the barrier's failure would discard must commit first
    await src.query(`ALTER TABLE t ADD COLUMN r float8 DEFAULT random()`);
    await src.query(`INSERT INTO t VALUES (12, 12, 0.5)`);
    const err = await feed.done.then(
      () => null,
      (e: unknown) => e as { code: string; message: string; hint: string },
    );
    expect(err?.code).toBe('SOURCE_SCHEMA_RECOPY');
    expect(err?.message).toContain('public.t');
    expect(err?.message).toMatch(/column r was added with a default written into each existing row/);
    // The command's text never reaches errors or logs (it may hold secrets): its tag and table do.
    expect(err?.message).not.toContain('random()');
    expect(err?.message).toContain('ALTER TABLE public.t');
    expect(err?.hint).toMatch(/copied again/);
    const ids = (await dst.query(`SELECT id FROM t ORDER BY id`)).rows.map((r) => r.id as number);
    expect(ids).toEqual([...Array(11).keys()].map((i) => i + 1)); // 11 arrived, 12 did not
  });

  it('a randomized sequence of DDL and DML equals PostgreSQL (seeded)', { timeout: 180_000 }, async () => {
    for (const seed of [71, 72]) {
      const src = await freshDatabase(`ddlrnd_src${seed}`);
      const dst = await freshDatabase(`ddlrnd_dst${seed}`);
      await src.query(
        `CREATE TABLE r (id int PRIMARY KEY, c0 int, c1 text); INSERT INTO r SELECT g, g, 't' || g FROM generate_series(1, 40) g`,
      );
      const feed = startChangefeed(
        testConfig({ id: `rnd${seed}`, source: src.url, sink: dst.url, tables: ['r'] }),
        {
          logger: silentLogger,
        },
      );
      await caughtUp(src, dst, { id: `rnd${seed}` });
      const rnd = mulberry32(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      let cols = ['c0', 'c1'];
      let next = 2;
      const types = ['int', 'text', 'numeric(10,2)', 'bigint', 'boolean', 'date'];
      const literal = (type: string): string =>
        ({
          int: '5',
          text: `'v'`,
          'numeric(10,2)': '1.50',
          bigint: '9000000000',
          boolean: 'true',
          date: `'2026-01-02'`,
        })[type]!;
      for (let step = 0; step < 60; step++) {
        const r = rnd();
        if (r < 0.12) {
          const type = pick(types);
          const name = `c${next++}`;
          const dflt = rnd() < 0.5 ? ` DEFAULT ${literal(type)}` : '';
          await src.query(`ALTER TABLE r ADD COLUMN ${name} ${type}${dflt}`);
          cols.push(name);
        } else if (r < 0.18 && cols.length > 1) {
          const c = pick(cols);
          await src.query(`ALTER TABLE r DROP COLUMN ${c}`);
          cols = cols.filter((x) => x !== c);
        } else if (r < 0.24 && cols.length > 0) {
          const c = pick(cols);
          const to = `${c}_r${step}`;
          await src.query(`ALTER TABLE r RENAME COLUMN ${c} TO ${to}`);
          cols = cols.map((x) => (x === c ? to : x));
        } else if (r < 0.6) {
          const id = 1 + Math.floor(rnd() * 80);
          await src.query(`INSERT INTO r (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id`, [
            id,
          ]);
        } else if (r < 0.85 && cols.length > 0) {
          const c = pick(cols);
          await src.query(`UPDATE r SET ${c} = DEFAULT WHERE id % 3 = $1`, [Math.floor(rnd() * 3)]);
        } else {
          await src.query(`DELETE FROM r WHERE id = $1`, [1 + Math.floor(rnd() * 80)]);
        }
      }
      await caughtUp(src, dst, { id: `rnd${seed}` });
      expect(feed.status().error, `seed ${seed}`).toBeNull();
      await expectSameShapeAndRows(src, dst, ['r']);
      await feed.stop();
    }
  });

  it(
    'SIGKILLs around barriers: the downstream still equals the source, shapes and rows',
    { timeout: 240_000 },
    async () => {
      const src = await freshDatabase('ddlkill_src');
      const dst = await freshDatabase('ddlkill_dst');
      await src.query(
        `CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 300) g`,
      );
      const config = writeConfig(`
changefeeds:
  - id: ddlkill
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.t]
    epoch: { intervalMs: 20 }
    heartbeatIntervalMs: 100
`);
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const rnd = mulberry32(4711);
      const w = writer(src, 't');
      let ddl = 0;
      for (let i = 0; i < 8; i++) {
        const p = runCli(['start', '--config', config], { env });
        const deadline = Date.now() + 60_000;
        while (!(await sinkCheckpoint(dst.url, 'ddlkill')) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        // DDL lands while the process runs and just before it is killed.
        await src.query(`ALTER TABLE t ADD COLUMN k${ddl} int DEFAULT ${ddl}`);
        ddl++;
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 400)));
        await src.query(`ALTER TABLE t RENAME COLUMN k${ddl - 1} TO kk${ddl - 1}`);
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 400)));
        p.child.kill('SIGKILL');
        expect(await p.exited).toBe('SIGKILL');
      }
      await w.stop();
      const last = runCli(['start', '--config', config], { env });
      await caughtUp(src, dst, { id: 'ddlkill' });
      last.child.kill('SIGTERM');
      expect(await last.exited, last.output()).toBe(0);
      await expectSameShapeAndRows(src, dst, ['t']);
    },
  );
});
