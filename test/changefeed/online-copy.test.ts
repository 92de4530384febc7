/**
 * Online copies (issue 12): a table that joins a running changefeed is read in short chunk
 * transactions reconciled with the stream, fills a shadow downstream and is swapped in within one
 * epoch — a reader never sees it partial. Invariant checked in every read: `wallet` downstream is
 * absent, or holds every account with the constant total (transfers move money, never make it).
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, testConfig } from '../support/changefeed.ts';
import { failureOf, startChangefeed } from '../support/engine.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { shadowName } from '../../src/runtime/table-copy.ts';
import {
  ACCOUNTS,
  cliFeedYaml,
  createWallet,
  logFields,
  recordingLogger,
  startReader,
  startTransfers,
  untilCaughtUp,
  waitFor,
  expectNoShadowLeft,
  finishCopyUnderLoad,
} from '../support/wallet.ts';

describe('online copies', () => {
  it('a table added to a running changefeed under load is copied in chunks and swapped in whole', async () => {
    const src = await freshDatabase('oc_src');
    const dst = await freshDatabase('oc_dst');
    await src.query(`CREATE TABLE other (id int PRIMARY KEY, v text); INSERT INTO other VALUES (1, 'a')`);
    await createWallet(src);
    const first = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['other'] }), {
      logger: silentLogger,
    });
    await untilCaughtUp(src, dst);
    await first.stop();

    const transfers = await startTransfers(src, 12);
    const reader = await startReader(dst);
    const log = recordingLogger();
    const cfg = testConfig({
      source: src.url,
      sink: dst.url,
      tables: ['other', 'wallet'],
      snapshot: { parallelism: 1, chunkRows: 1000 },
    });
    const feed = startChangefeed(cfg, { logger: log });
    // Other tables keep streaming meanwhile.
    await src.query(`INSERT INTO other VALUES (2, 'b')`);
    const { seen } = await finishCopyUnderLoad({ src, dst, log, feed, transfers, reader });
    expect(seen.absent).toBeGreaterThan(0);
    expect(seen.whole).toBeGreaterThan(0);
    await expectSameTables(src.url, dst.url, ['other', 'wallet']);
    const swap = log.lines.find((l) => l.msg === 'online copy swapped in')!;
    expect(swap.fields.rows).toBeGreaterThan(0);
    expect(swap.fields.chunks).toBeGreaterThanOrEqual(ACCOUNTS / 1000);
    await expectNoShadowLeft(dst);
  });
});

describe('online copies across SIGKILL', () => {
  it(
    'a copy killed mid-way goes on from its last committed chunk; readers never see it partial',
    { timeout: 200_000 },
    async () => {
      const src = await freshDatabase('ock_src');
      const dst = await freshDatabase('ock_dst');
      await src.query(`CREATE TABLE other (id int PRIMARY KEY, v text); INSERT INTO other VALUES (1, 'a')`);
      await createWallet(src);
      const oid = (await src.query(`SELECT 'wallet'::regclass::oid::int AS oid`)).rows[0]!.oid as number;
      const yaml = (tables: string) => cliFeedYaml(tables, 400);
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const before = runCli(['start', '--config', writeConfig(yaml('public.other'))], { env });
      await untilCaughtUp(src, dst);
      before.child.kill('SIGTERM');
      expect(await before.exited, before.output()).toBe(0);

      const transfers = await startTransfers(src, 34);
      const reader = await startReader(dst);
      const config = writeConfig(yaml('public.other, public.wallet'));
      const shadowRows = async () => {
        const shadow = shadowName(oid, 'test');
        const r = await dst.query(`SELECT to_regclass('public.${shadow}') IS NOT NULL AS e`);
        if (!r.rows[0]?.e) return 0;
        return (await dst.query(`SELECT count(*)::int AS n FROM ${shadow}`)).rows[0]!.n as number;
      };
      let kills = 0;
      for (const at of [3000, 8000, 13000]) {
        const p = runCli(['start', '--config', config], { env });
        let exited = false;
        void p.exited.then(() => (exited = true));
        await waitFor(async () => exited || (await shadowRows()) >= at, `the shadow to hold ${at} rows`);
        expect(exited, p.output()).toBe(false);
        p.child.kill('SIGKILL');
        expect(await p.exited).toBe('SIGKILL');
        kills++;
      }
      const last = runCli(['start', '--config', config], { env });
      await waitFor(() => last.output().includes('online copy swapped in'), 'the swap', 120_000).catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${last.output().slice(-6000)}`);
        },
      );
      const made = await transfers.stop();
      await untilCaughtUp(src, dst);
      const seen = await reader.stop();
      last.child.kill('SIGTERM');
      expect(await last.exited, last.output()).toBe(0);
      expect(kills).toBe(3);
      expect(made).toBeGreaterThan(20);
      expect(seen.whole).toBeGreaterThan(0);
      await expectSameTables(src.url, dst.url, ['other', 'wallet']);
      // The last run resumed where the committed progress ended and read only the chunks left.
      const resumed = logFields(last.output(), 'online copy resumed');
      const swapped = logFields(last.output(), 'online copy swapped in');
      // How many chunks had committed by the last kill depends on the machine's speed: the shadow
      // also holds rows the stream wrote ahead of their chunk, so it fills faster than chunks
      // commit (8 of them at 13,000 shadow rows under load). Some had.
      expect(resumed.chunks as number).toBeGreaterThan(0);
      const total = swapped.chunks as number;
      expect(total).toBeGreaterThanOrEqual(ACCOUNTS / 400);
      // Chunks read again after the restart: at most the one in flight (plus re-reads of chunks a
      // window could not reconcile, which a key move with unlogged TOAST cells forces; none here).
      expect(swapped.reads as number).toBeLessThanOrEqual(total - (resumed.chunks as number) + 1);
    },
  );
});

describe('online copies of hostile shapes', () => {
  it(
    'odd names, composite text/uuid keys, a partitioned root, a keyless table and a 63-byte name are added under writes',
    { timeout: 200_000 },
    async () => {
      const src = await freshDatabase('och_src');
      const dst = await freshDatabase('och_dst');
      const long = 'l'.repeat(63);
      await src.query(`
      CREATE TABLE other (id int PRIMARY KEY);
      CREATE SCHEMA "we.ird";
      CREATE TABLE "we.ird"."Odd.Name ü" (k text, u uuid, "order" int, payload text, PRIMARY KEY (k, u));
      INSERT INTO "we.ird"."Odd.Name ü" SELECT 'k' || (g % 13) || repeat(' ', g % 3), md5(g::text)::uuid, g,
        CASE WHEN g % 50 = 0 THEN (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 300) i) END
        FROM generate_series(1, 3000) g;
      CREATE TABLE parts (region text, id int, v int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
      CREATE TABLE parts_eu PARTITION OF parts FOR VALUES IN ('eu');
      CREATE TABLE parts_us PARTITION OF parts FOR VALUES IN ('us');
      INSERT INTO parts SELECT CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g, g FROM generate_series(1, 3000) g;
      CREATE TABLE nokey (a int, b text);
      ALTER TABLE nokey REPLICA IDENTITY FULL;
      INSERT INTO nokey SELECT g % 10, 'dup' FROM generate_series(1, 500) g;
      CREATE TABLE "${long}" (id bigint PRIMARY KEY, v text);
      INSERT INTO "${long}" SELECT g, 'v' || g FROM generate_series(1, 1500) g;
    `);
      const first = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['other'] }), {
        logger: silentLogger,
      });
      await untilCaughtUp(src, dst);
      await first.stop();

      const w = await src.connect();
      let stop = false;
      let n = 0;
      const writing = (async () => {
        while (!stop) {
          n++;
          await w.query('BEGIN');
          await w.query(`UPDATE "we.ird"."Odd.Name ü" SET "order" = "order" + 1 WHERE "order" = $1`, [
            (n * 37) % 3000,
          ]);
          await w.query(`UPDATE "we.ird"."Odd.Name ü" SET k = k || '!' WHERE "order" = $1`, [
            (n * 53) % 3000,
          ]);
          await w.query(`UPDATE parts SET v = v + 1 WHERE id = $1`, [(n * 31) % 3000]);
          // Moves a row between partitions (a delete and an insert in the stream).
          if (n % 7 === 0)
            await w.query(
              `UPDATE parts SET region = CASE region WHEN 'eu' THEN 'us' ELSE 'eu' END WHERE id = $1`,
              [(n * 11) % 3000],
            );
          await w.query(`INSERT INTO nokey VALUES ($1, 'w')`, [n % 5]);
          await w.query(`DELETE FROM "${long}" WHERE id = $1`, [(n * 17) % 1500]);
          await w.query(`INSERT INTO "${long}" VALUES ($1, 'new') ON CONFLICT (id) DO UPDATE SET v = 'upd'`, [
            1500 + n,
          ]);
          await w.query('COMMIT');
        }
      })();
      const log = recordingLogger();
      const feed = startChangefeed(
        testConfig({
          source: src.url,
          sink: dst.url,
          tables: ['other', '"we.ird"."Odd.Name ü"', 'parts', 'nokey', `"${long}"`],
          snapshot: { parallelism: 1, chunkRows: 300 },
        }),
        { logger: log },
      );
      await waitFor(
        () => log.lines.filter((l) => l.msg === 'online copy swapped in').length === 4,
        'four swaps',
        150_000,
      );
      stop = true;
      await writing;
      await untilCaughtUp(src, dst);
      expect(feed.status().error).toBeNull();
      await feed.stop();
      expect(n).toBeGreaterThan(5);
      await expectSameTables(src.url, dst.url, ['"we.ird"."Odd.Name ü"', 'parts', 'nokey', `"${long}"`]);
      // The keyless table, written in every transaction, was read once: the chunk's snapshot says
      // which of the held changes it already holds (before, every such window read it again).
      const nokeySwap = log.lines.find(
        (l) => l.msg === 'online copy swapped in' && l.fields.table === 'public.nokey',
      );
      expect(nokeySwap?.fields.reads).toBe(1);
    },
  );
});

describe('online copies hold no long snapshot', () => {
  it(
    "the source's xmin is held per chunk, not for the whole copy (beside the exported snapshot)",
    { timeout: 200_000 },
    async () => {
      const src = await freshDatabase('ocx_src');
      const dst = await freshDatabase('ocx_dst');
      const dst2 = await freshDatabase('ocx_dst2');
      await src.query(`CREATE TABLE other (id int PRIMARY KEY)`);
      await src.query(`
      CREATE TABLE big (id int PRIMARY KEY, balance bigint NOT NULL, note text);
      INSERT INTO big SELECT g, 100, repeat('n', 200) FROM generate_series(1, 150000) g;
      CREATE TABLE wallet (id int PRIMARY KEY, balance bigint NOT NULL, note text);
      INSERT INTO wallet SELECT g, 100, NULL FROM generate_series(1, ${ACCOUNTS}) g;
    `);
      const transfers = await startTransfers(src, 56);
      const poller = await src.connect();
      /**
       * The longest a snapshot of Tidemark's table reads stays open on the source, in ms, sampled until
       * `done`: the age of the open transaction of every backend holding an xmin while it reads rows
       * (the online copy's chunk connection; the exported snapshot's COPY readers).
       */
      const sampleHold = async (done: () => boolean) => {
        let max = 0;
        while (!done()) {
          const r = await poller.query<{ ms: number | null }>(
            `SELECT max(extract(epoch FROM clock_timestamp() - xact_start) * 1000)::int AS ms FROM pg_stat_activity
            WHERE backend_xmin IS NOT NULL AND datname = current_database()
              AND (application_name = 'tidemark:copy' OR query LIKE 'COPY (SELECT%' OR query LIKE 'SET TRANSACTION SNAPSHOT%')`,
          );
          max = Math.max(max, r.rows[0]?.ms ?? 0);
          await new Promise((r) => setTimeout(r, 10));
        }
        return max;
      };
      // Today's path: the initial snapshot of `big` inside one exported snapshot.
      let initialDone = false;
      const initialFeed = startChangefeed(
        testConfig({
          id: 'initial',
          source: src.url,
          sink: dst2.url,
          tables: ['big'],
          snapshot: { parallelism: 1, chunkRows: 2000 },
        }),
        { logger: silentLogger },
      );
      const initialSampling = sampleHold(() => initialDone);
      await waitFor(async () => initialFeed.status().phase === 'streaming', 'the initial snapshot');
      initialDone = true;
      const exported = await initialSampling;
      await initialFeed.stop();

      // The online copy of the same table, chunked.
      const first = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['other'] }), {
        logger: silentLogger,
      });
      await untilCaughtUp(src, dst);
      await first.stop();
      const log = recordingLogger();
      const feed = startChangefeed(
        testConfig({
          source: src.url,
          sink: dst.url,
          tables: ['other', 'big'],
          snapshot: { parallelism: 1, chunkRows: 2000 },
        }),
        { logger: log },
      );
      const swappedIn = () => log.lines.some((l) => l.msg === 'online copy swapped in');
      const online = await sampleHold(swappedIn);
      await transfers.stop();
      await feed.stop();
      console.log(
        `longest snapshot held while copying 150k rows under transfers: online ${online} ms, exported snapshot ${exported} ms`,
      );
      expect(exported).toBeGreaterThan(0);
      // A chunk holds its snapshot for milliseconds; the exported snapshot for the whole copy.
      expect(online).toBeLessThan(exported / 3);
    },
  );
});

describe('re-copy at a schema change', () => {
  it(
    'a rewrite with volatile values (and one with a default in the same command) copies the table again, swapped in whole',
    { timeout: 120_000 },
    async () => {
      const src = await freshDatabase('ocr_src');
      const dst = await freshDatabase('ocr_dst');
      await createWallet(src);
      await src.query(`CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)`);
      const log = recordingLogger();
      const feed = startChangefeed(
        testConfig({
          source: src.url,
          sink: dst.url,
          tables: ['wallet', 't'],
          snapshot: { parallelism: 1, chunkRows: 2000 },
          schemaChanges: { recopy: 'copy' },
        }),
        { logger: log },
      );
      await untilCaughtUp(src, dst);
      const transfers = await startTransfers(src, 78);
      const reader = await startReader(dst);
      // Each row gets its own random value: not in the log, not reproducible downstream.
      await src.query(`ALTER TABLE wallet ADD COLUMN r float8 DEFAULT random()`);
      // Was replayed as NULL before the capture-safety fix, then an error; now a re-copy.
      await src.query(`ALTER TABLE t ADD COLUMN d int DEFAULT 5, ALTER COLUMN v TYPE bigint`);
      await src.query(`INSERT INTO t VALUES (2, 2, 6)`);
      await waitFor(
        () => log.lines.filter((l) => l.msg === 'online copy swapped in').length === 2,
        'both re-copies',
      );
      await transfers.stop();
      await untilCaughtUp(src, dst);
      const seen = await reader.stop();
      expect(feed.status().error).toBeNull();
      expect(seen.whole).toBeGreaterThan(0);
      await expectSameTables(src.url, dst.url, ['wallet', 't']);
      await feed.stop();
    },
  );
});

describe('a swap blocked downstream', () => {
  it('by a view someone created over the table: stops with SINK_DEPENDENT_OBJECTS naming it, never retried', async () => {
    const src = await freshDatabase('ocd_src');
    const dst = await freshDatabase('ocd_dst');
    await src.query(
      `CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g`,
    );
    const log = recordingLogger();
    const feed = startChangefeed(
      testConfig({ source: src.url, sink: dst.url, tables: ['t'], schemaChanges: { recopy: 'copy' } }),
      { logger: log },
    );
    await untilCaughtUp(src, dst);
    await dst.query(`CREATE VIEW t_report AS SELECT id, v FROM t`);
    // Rewritten with values the log does not carry: copied again, the swap drops and creates t.
    await src.query(`ALTER TABLE t ALTER COLUMN v TYPE text USING v::text || 'x'`);
    // It ends (never retried), with the error naming the blocking view.
    const error = await failureOf(feed);
    expect(error.code).toBe('SINK_DEPENDENT_OBJECTS');
    expect(error.message).toContain('t_report');
    expect(feed.status().phase).toBe('failed');
    // Downstream as it was: the table whole with its last rows, the view still there.
    expect((await dst.query(`SELECT count(*)::int AS n FROM t_report`)).rows[0]?.n).toBe(100);
    await feed.stop();
  });
});

describe('adding a table on SIGHUP', () => {
  it(
    'start mode reloads its config on SIGHUP: the added table is copied online, the process keeps running',
    { timeout: 200_000 },
    async () => {
      const src = await freshDatabase('ochup_src');
      const dst = await freshDatabase('ochup_dst');
      await src.query(`CREATE TABLE other (id int PRIMARY KEY, v text); INSERT INTO other VALUES (1, 'a')`);
      await createWallet(src);
      const yaml = (tables: string) => cliFeedYaml(tables, 2000);
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const config = writeConfig(yaml('public.other'));
      const p = runCli(['start', '--config', config], { env });
      await untilCaughtUp(src, dst);
      const transfers = await startTransfers(src, 90);
      writeFileSync(config, yaml('public.other, public.wallet'));
      p.child.kill('SIGHUP');
      await waitFor(() => p.output().includes('online copy swapped in'), 'the swap', 150_000).catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${p.output().slice(-4000)}`);
        },
      );
      await src.query(`INSERT INTO other VALUES (2, 'b')`);
      await transfers.stop();
      await untilCaughtUp(src, dst);
      expect(p.output()).toContain('config reloaded');
      p.child.kill('SIGTERM');
      expect(await p.exited, p.output()).toBe(0);
      await expectSameTables(src.url, dst.url, ['other', 'wallet']);
    },
  );
});
