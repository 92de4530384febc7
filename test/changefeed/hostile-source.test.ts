/**
 * The source shapes and events that broke the first version (shared/HOSTILE-WORLD.md, issue 10):
 * partitioned tables, renames and swap migrations, names that need quoting, schema changes made
 * while Tidemark is down, replica identities, generated columns, two changefeeds on one pattern.
 * Each case replicates for real and compares the downstream with the source row for row, or
 * asserts the clear error that must replace silence.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { caughtUp, failureOf, startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

async function count(db: TestDatabase, table: string): Promise<number> {
  return (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n as number;
}

describe('hostile source shapes', () => {
  it('a partitioned table replicates as its root: snapshot of every partition, streamed changes, a partition attached later', async () => {
    const src = await freshDatabase('part_src');
    const dst = await freshDatabase('part_dst');
    await src.query(`
      CREATE TABLE ev (id bigint, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
      CREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      INSERT INTO ev VALUES (1, '2025-05-05', 'a'), (2, '2026-06-06', 'b');
    `);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['public.ev'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    expect(await count(dst, 'ev')).toBe(2);
    await src.query(`INSERT INTO ev VALUES (3, '2026-01-02', 'c'); UPDATE ev SET v = 'z' WHERE id = 1`);
    // A partition created and attached while streaming, with rows already in it.
    await src.query(`
      CREATE TABLE ev_2027 (id bigint, at date, v text, PRIMARY KEY (id, at));
      ALTER TABLE ev ATTACH PARTITION ev_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
      INSERT INTO ev VALUES (4, '2027-03-03', 'd');
      DELETE FROM ev WHERE id = 2;
    `);
    await caughtUp(src, dst);
    await expectSameTables(src.url, dst.url, ['ev']);
    await feed.stop();
  });

  it('names that need quoting survive snapshot, stream and restart', async () => {
    const src = await freshDatabase('names_src');
    const dst = await freshDatabase('names_dst');
    await src.query(`
      CREATE SCHEMA "Sales Team";
      CREATE SCHEMA "a.b";
      CREATE TABLE "User" (id int PRIMARY KEY, "order" int, "E-Mail" text);
      CREATE TABLE "Sales Team"."a.b" (k text PRIMARY KEY, v int);
      CREATE TABLE "Sales Team.a" ("b" text PRIMARY KEY, v int);
      CREATE TABLE "a.b"."c" (id int PRIMARY KEY, v text);
      CREATE TABLE "ünïcødé" (id int PRIMARY KEY, "ключ" text);
      CREATE TABLE "${'x'.repeat(63)}" (id int PRIMARY KEY);
      INSERT INTO "User" VALUES (1, 1, 'x@y');
      INSERT INTO "Sales Team"."a.b" VALUES ('k', 1);
      INSERT INTO "Sales Team.a" VALUES ('b', 2);
      INSERT INTO "a.b"."c" VALUES (1, 'dot');
      INSERT INTO "ünïcødé" VALUES (1, 'k');
      INSERT INTO "${'x'.repeat(63)}" VALUES (1);
    `);
    const tables = [
      '"User"',
      '"Sales Team"."a.b"',
      '"Sales Team.a"',
      '"a.b"."c"',
      '"ünïcødé"',
      `"${'x'.repeat(63)}"`,
    ];
    const cfg = testConfig({
      source: src.url,
      sink: dst.url,
      tables: [
        'public.User',
        '"Sales Team".*',
        'public."Sales Team.a"',
        '"a.b".c',
        'public.ünïcødé',
        `public.${'x'.repeat(63)}`,
      ],
    });
    let feed = startChangefeed(cfg, { logger: silentLogger });
    await caughtUp(src, dst);
    await src.query(`UPDATE "User" SET "order" = 2; INSERT INTO "a.b"."c" VALUES (2, 'two')`);
    await caughtUp(src, dst);
    await feed.stop();
    // A restart compares the stored selection with the catalog: quoted names must match.
    await src.query(`INSERT INTO "Sales Team"."a.b" VALUES ('k2', 3); INSERT INTO "ünïcødé" VALUES (2, 'л')`);
    feed = startChangefeed(cfg, { logger: silentLogger });
    await caughtUp(src, dst);
    expect(feed.status().phase).toBe('streaming');
    await expectSameTables(src.url, dst.url, tables);
    await feed.stop();
  });

  it('a schema change made while Tidemark is down is decoded at its position; other tables are not held up', async () => {
    const src = await freshDatabase('ddl_src');
    const dst = await freshDatabase('ddl_dst');
    await src.query(`
      CREATE TABLE prices (id int PRIMARY KEY, a int, b text);
      CREATE TABLE other (id int PRIMARY KEY, v int);
      INSERT INTO prices VALUES (1, 10, 'x'); INSERT INTO other VALUES (1, 1);
    `);
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['prices', 'other'] });
    let feed = startChangefeed(cfg, { logger: silentLogger });
    await caughtUp(src, dst);
    await feed.stop();
    await src.query(`INSERT INTO prices VALUES (2, 20, 'y')`);
    await src.query(`ALTER TABLE prices ADD COLUMN c numeric(12,2)`);
    await src.query(`INSERT INTO prices VALUES (3, 30, 'z', 1.5); UPDATE other SET v = 2`);
    await src.query(`ALTER TABLE prices ADD COLUMN d int DEFAULT 7`);
    await src.query(`INSERT INTO prices VALUES (4, 40, 'w', 2.5, 8); UPDATE other SET v = 3`);
    feed = startChangefeed(cfg, { logger: silentLogger });
    await caughtUp(src, dst);
    expect(feed.status().error).toBeNull();
    await expectSameTables(src.url, dst.url, ['prices', 'other']);
    await feed.stop();
  });

  it('a renamed table is followed by its id; a table swapped in under the old name is never taken for it', async () => {
    const src = await freshDatabase('ren_src');
    const dst = await freshDatabase('ren_dst');
    await src.query(`CREATE TABLE orders (id int PRIMARY KEY, v int); INSERT INTO orders VALUES (1, 1)`);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['orders'] }), {
      logger: silentLogger,
    });
    feed.done.catch(() => {}); // its failure is read from the status below
    await caughtUp(src, dst);
    await src.query(`ALTER TABLE orders RENAME TO orders_old`);
    await src.query(`INSERT INTO orders_old VALUES (2, 2)`);
    // Applied before the swap arrives: a barrier that stops the changefeed discards the epoch it
    // is in (never partial), so what must be downstream first is waited for.
    await caughtUp(src, dst);
    // The swap: a new table filled and renamed to the old name. Its rows were never snapshotted.
    await src.query(
      `CREATE TABLE orders_new (id int PRIMARY KEY, v int); INSERT INTO orders_new VALUES (9, 9)`,
    );
    await src.query(`ALTER TABLE orders_new RENAME TO orders`);
    await src.query(`INSERT INTO orders VALUES (10, 10)`);
    // The rename is followed: the row inserted under the new name arrives there.
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test', timeoutMs: 30_000 }).catch(
      () => {},
    );
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && feed.status().error === null)
      await new Promise((r) => setTimeout(r, 100));
    // Never silent: the swapped-in table's rows were never copied, so the changefeed stops at the
    // rename with an error naming the table, rather than streaming a partial table.
    const st = feed.status();
    expect(st.error?.code).toBe('SOURCE_TABLES_CHANGED');
    expect(st.error?.message).toContain('public.orders');
    const old = (await dst.query(`SELECT id FROM orders_old ORDER BY id`)).rows.map((r) => r.id as number);
    expect(old).toEqual([1, 2]);
    const swapped = await dst.query(`SELECT to_regclass('public.orders') AS t`);
    expect(swapped.rows[0]?.t).toBeNull();
    await feed.stop();
  });

  it('REPLICA IDENTITY NOTHING is refused and never published; USING INDEX keys the table on that index', async () => {
    const src = await freshDatabase('ri_src');
    const dst = await freshDatabase('ri_dst');
    await src.query(`
      CREATE TABLE nothing_ri (id int PRIMARY KEY, v text);
      ALTER TABLE nothing_ri REPLICA IDENTITY NOTHING;
      CREATE TABLE idx_ri (id int PRIMARY KEY, code text NOT NULL UNIQUE, v text);
      ALTER TABLE idx_ri REPLICA IDENTITY USING INDEX idx_ri_code_key;
      INSERT INTO idx_ri VALUES (1, 'c1', 'v'), (2, 'c2', 'v');
      INSERT INTO nothing_ri VALUES (1, 'a');
    `);
    const refused = startChangefeed(
      testConfig({ id: 'named', source: src.url, sink: dst.url, tables: ['nothing_ri'] }),
      { logger: silentLogger },
    );
    const err = await failureOf(refused);
    expect(err.code).toBe('SOURCE_REPLICA_IDENTITY');
    expect(err.message).toContain('nothing_ri');
    const pub = await src.query(`SELECT tablename FROM pg_publication_tables WHERE tablename = 'nothing_ri'`);
    expect(pub.rows).toEqual([]);
    // A pattern leaves it out (with a warning) and replicates the rest.
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['public.*'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    await src.query(`UPDATE nothing_ri SET v = 'b'`); // the source's own writes still work
    await src.query(`UPDATE idx_ri SET v = 'w' WHERE id = 1; DELETE FROM idx_ri WHERE id = 2`);
    await src.query(`UPDATE idx_ri SET code = 'c9' WHERE id = 1`);
    await caughtUp(src, dst);
    await expectSameTables(src.url, dst.url, ['idx_ri']);
    const left = await src.query(
      `SELECT tablename FROM pg_publication_tables WHERE tablename = 'nothing_ri'`,
    );
    expect(left.rows).toEqual([]);
    await feed.stop();
  });

  it('generated columns arrive with their values', async () => {
    const src = await freshDatabase('gen_src');
    const dst = await freshDatabase('gen_dst');
    await src.query(`
      CREATE TABLE gen (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED,
                        n int GENERATED BY DEFAULT AS IDENTITY);
      INSERT INTO gen(id, a) VALUES (1, 2);
    `);
    const feed = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['gen'] }), {
      logger: silentLogger,
    });
    await caughtUp(src, dst);
    await src.query(`INSERT INTO gen(id, a) VALUES (2, 3); UPDATE gen SET a = 5 WHERE id = 1`);
    await caughtUp(src, dst);
    await expectSameTables(src.url, dst.url, ['gen']);
    await feed.stop();
  });

  it('two changefeeds selecting one pattern in a schema that needs quoting share the publication without error', async () => {
    const src = await freshDatabase('pub_src');
    const d1 = await freshDatabase('pub_d1');
    const d2 = await freshDatabase('pub_d2');
    await src.query(`
      CREATE SCHEMA "Sales Team";
      CREATE TABLE "Sales Team".t1 (id int PRIMARY KEY); CREATE TABLE "Sales Team"."T2" (id int PRIMARY KEY);
      INSERT INTO "Sales Team".t1 VALUES (1); INSERT INTO "Sales Team"."T2" VALUES (1);
    `);
    const feeds = ['one', 'two'].map((id, i) =>
      startChangefeed(
        testConfig({ id, source: src.url, sink: (i === 0 ? d1 : d2).url, tables: ['"Sales Team".*'] }),
        { logger: silentLogger },
      ),
    );
    await caughtUp(src, d1, { id: 'one' });
    await caughtUp(src, d2, { id: 'two' });
    await src.query(`INSERT INTO "Sales Team".t1 VALUES (2); INSERT INTO "Sales Team"."T2" VALUES (2)`);
    await caughtUp(src, d1, { id: 'one' });
    await caughtUp(src, d2, { id: 'two' });
    for (const f of feeds) expect(f.status().error).toBeNull();
    await expectSameTables(src.url, d1.url, ['"Sales Team".t1', '"Sales Team"."T2"']);
    await expectSameTables(src.url, d2.url, ['"Sales Team".t1', '"Sales Team"."T2"']);
    await Promise.all(feeds.map((f) => f.stop()));
  });

  it('an orphaned prepared transaction makes the snapshot fail with an error naming it, not hang', async () => {
    const src = await freshDatabase('prep_src');
    const dst = await freshDatabase('prep_dst');
    await src.query(`CREATE TABLE t (id int PRIMARY KEY)`);
    const max = (await src.query(`SHOW max_prepared_transactions`)).rows[0]?.max_prepared_transactions;
    expect(Number(max)).toBeGreaterThan(0);
    await src.query(`BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION 'forgotten_tx'`);
    try {
      const feed = startChangefeed(
        testConfig({ source: src.url, sink: dst.url, tables: ['t'], snapshot: { startTimeoutMs: 3000 } }),
        { logger: silentLogger },
      );
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && feed.status().error?.code !== 'SOURCE_SNAPSHOT_BLOCKED') {
        await new Promise((r) => setTimeout(r, 100));
      }
      const e = feed.status().error;
      expect(e?.code).toBe('SOURCE_SNAPSHOT_BLOCKED');
      expect(e?.message).toContain('forgotten_tx');
      await feed.stop();
      // No slot is left half made by a session nobody owns (closing its socket does not end a
      // walsender waiting on a lock): once stopped, the source holds no slot of this changefeed.
      const slots = async () =>
        Number(
          (
            await src.query(
              `SELECT count(*) AS n FROM pg_replication_slots WHERE database = current_database()`,
            )
          ).rows[0]?.n,
        );
      const until = Date.now() + 10_000;
      while ((await slots()) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(await slots()).toBe(0);
    } finally {
      await src.query(`ROLLBACK PREPARED 'forgotten_tx'`);
    }
  });
});
