/**
 * Views over a table copied again online (issue 12: "views over it switch in the same epoch"):
 * the table downstream keeps its last rows until the copy replaces it whole in one epoch, and a
 * view reading it keeps the rows derived from those until that same epoch, where it takes the
 * copy's. A reader checks in every snapshot that the view equals its query over the table
 * downstream — so a view switching an epoch early or late, or half, fails it. Two copies: one
 * asked for (nothing differs), one forced by a rewrite the log does not carry (every note
 * differs: the view's state only becomes right through the copy).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { expectSameTables, testConfig } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { runCli, testDataDir, writeConfig } from '../support/cli-process.ts';
import {
  ACCOUNTS,
  cliFeedYaml,
  createWallet,
  expectNoShadowLeft,
  logFields,
  readInSnapshots,
  recordingLogger,
  startTransfers,
  untilCaughtUp,
  waitFor,
} from '../support/wallet.ts';

const SUMMARY = `SELECT count(*) AS n, sum(balance) AS total, count(note) AS notes,
  sum(CASE WHEN note LIKE 'v2%' THEN 1 ELSE 0 END) AS rewritten FROM wallet`;

const TEXT = `n::text AS n, total::text AS total, notes::text AS notes, rewritten::text AS rewritten`;

/** The summary as PostgreSQL computes it over `wallet` in `db`. */
async function summaryOf(db: { query: TestDatabase['query'] }): Promise<Record<string, string>> {
  const r = await db.query(`SELECT ${TEXT} FROM (${SUMMARY}) s`);
  return r.rows[0] as Record<string, string>;
}

/** A view of every row and column: reshaped when the table gains a column. */
const ALL = 'SELECT * FROM wallet';

/** Rows and a digest of every row's text, in key order. */
const digest = (table: string) =>
  `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY id), '')) AS d FROM ${table} x`;

/**
 * Reads the sink in repeatable-read snapshots: each view always equals its query over `wallet`
 * (`all`: also `wallet_all`, row for row).
 */
async function startViewReader(dst: TestDatabase, accounts = ACCOUNTS, all = false) {
  const seen = { reads: 0, rewritten: 0, rewrittenUnder: 0 };
  const reader = await readInSnapshots(dst, async (c) => {
    const view = (await c.query(`SELECT ${TEXT} FROM wallet_summary`)).rows;
    const table = await summaryOf(c);
    if (table.n === '0') {
      // The retype's swap drops and creates the table: a snapshot older than that commit sees
      // it empty, as PostgreSQL shows any table rewritten by ALTER TABLE (target-tables.ts).
      seen.rewrittenUnder++;
      return;
    }
    expect(table.n, 'wallet downstream is whole').toBe(String(accounts));
    expect(view, 'the view equals its query over the table in the same snapshot').toEqual([table]);
    if (all) {
      const every = (await c.query(digest('wallet_all'))).rows[0] as { n: string };
      // Reshaped (dropped and created) at a swap: empty to a snapshot older than that commit.
      if (every.n !== '0')
        expect(every, 'wallet_all equals wallet in the same snapshot').toEqual(
          (await c.query(digest('wallet'))).rows[0],
        );
    }
    seen.reads++;
    if (table.rewritten === String(accounts)) seen.rewritten++;
  });
  return {
    async stop() {
      await reader.stop();
      return seen;
    },
  };
}

describe('views over a table copied again', () => {
  it(
    'switch in the epoch of its swap: asked for, and forced by a rewrite the log does not carry',
    { timeout: 180_000 },
    async () => {
      const src = await freshDatabase('rv_src');
      const dst = await freshDatabase('rv_dst');
      await createWallet(src);
      const log = recordingLogger();
      const feed = startChangefeed(
        testConfig({
          source: src.url,
          sink: dst.url,
          tables: ['wallet'],
          views: [
            { name: 'wallet_summary', sql: SUMMARY },
            { name: 'wallet_all', sql: ALL },
          ],
          snapshot: { parallelism: 1, chunkRows: 2000 },
          schemaChanges: { recopy: 'copy' },
        }),
        { logger: log },
      );
      await untilCaughtUp(src, dst);
      expect(await summaryOf(dst)).toEqual(await summaryOf(src));
      const transfers = await startTransfers(src, 61);
      const reader = await startViewReader(dst, ACCOUNTS, true);
      const swaps = () => log.lines.filter((l) => l.msg === 'online copy swapped in').length;

      // Asked for: refused before views could follow a copy.
      expect(await feed.resnapshot(['wallet'])).toEqual({ started: ['public.wallet'], alreadyCopying: [] });
      await waitFor(() => swaps() === 1, 'the first swap');

      // A retype with USING: every row's note rewritten by the source, nothing of it in the log.
      await src.query(
        `ALTER TABLE wallet ALTER COLUMN note TYPE varchar(20000) USING 'v2' || coalesce(note, '')`,
      );
      await waitFor(() => swaps() === 2, 'the second swap');
      // A column with a value per row (volatile): a view of every column takes it with the copy.
      await src.query(`ALTER TABLE wallet ADD COLUMN r int DEFAULT (random() * 1000)::int`);
      await waitFor(() => swaps() === 3, 'the third swap');
      await new Promise((r) => setTimeout(r, 300));
      await transfers.stop();
      await untilCaughtUp(src, dst);
      const seen = await reader.stop();
      expect(feed.status().error).toBeNull();
      await feed.stop();

      expect(seen.reads).toBeGreaterThan(0);
      expect(seen.rewritten).toBeGreaterThan(0);
      const view = (await dst.query(`SELECT ${TEXT} FROM wallet_summary`)).rows;
      expect(view).toEqual([await summaryOf(src)]);
      expect(view[0]?.rewritten).toBe(String(ACCOUNTS));
      await expectSameTables(src.url, dst.url, ['wallet']);
      expect((await dst.query(digest('wallet_all'))).rows).toEqual((await src.query(digest('wallet'))).rows);
      await expectNoShadowLeft(dst);
    },
  );
});

describe('a view input copied again across SIGKILL', () => {
  it(
    'resumes from its committed chunks with what the views collected of it; the view still switches at the swap',
    { timeout: 300_000 },
    async () => {
      const accounts = 120_000;
      const src = await freshDatabase('rvk_src');
      const dst = await freshDatabase('rvk_dst');
      await src.query(`
        CREATE TABLE wallet (id int PRIMARY KEY, balance bigint NOT NULL, note text);
        INSERT INTO wallet SELECT g, 100, CASE WHEN g % 7 = 0 THEN 'n' || g END FROM generate_series(1, ${accounts}) g;`);
      const id = (await src.query(`SELECT 'wallet'::regclass::oid::int AS oid`)).rows[0]!.oid as number;
      const yaml = (extra: string) =>
        `${cliFeedYaml('public.wallet', 2000)}    views:\n      - name: wallet_summary\n        sql: "${SUMMARY.replace(/\s+/g, ' ')}"\n${extra}`;
      const config = writeConfig(yaml(''));
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const first = runCli(['start', '--config', config], { env });
      await untilCaughtUp(src, dst);
      expect(await summaryOf(dst)).toEqual(await summaryOf(src));
      first.child.kill('SIGTERM');
      expect(await first.exited, first.output()).toBe(0);

      const transfers = await startTransfers(src, 33, [{ name: 'wallet', accounts }]);
      const reader = await startViewReader(dst, accounts);
      writeFileSync(config, yaml(`    resnapshot: [{ table: public.wallet, request: r1 }]\n`));
      const progressFile = join(testDataDir(), 'copies', 'test.json');
      const committedChunks = async (): Promise<number> => {
        if (!existsSync(progressFile)) return 0;
        const cp = await dst.query(`SELECT epoch FROM tidemark.checkpoints WHERE changefeed = 'test'`);
        const epoch = Number(cp.rows[0]?.epoch ?? -1);
        const raw = JSON.parse(readFileSync(progressFile, 'utf8')) as {
          tables: Record<string, { epoch: number; progress: { chunks: number } }[]>;
        };
        const mine = (raw.tables[String(id)] ?? []).filter((e) => e.epoch <= epoch);
        return mine.at(-1)?.progress.chunks ?? 0;
      };
      // Killed twice while the copy runs, each time once more chunks committed.
      for (const atLeast of [5, 15]) {
        const run = runCli(['start', '--config', config], { env });
        let exited = false;
        void run.exited.then(() => (exited = true));
        await waitFor(
          async () => exited || (await committedChunks()) >= atLeast,
          `${atLeast} chunks committed`,
        );
        expect(exited, run.output()).toBe(false);
        run.child.kill('SIGKILL');
        expect(await run.exited).toBe('SIGKILL');
      }
      const before = await committedChunks();
      const last = runCli(['start', '--config', config], { env });
      await waitFor(() => last.output().includes('online copy swapped in'), 'the swap', 150_000).catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${last.output().slice(-6000)}`);
        },
      );
      await transfers.stop();
      await untilCaughtUp(src, dst);
      const seen = await reader.stop();
      last.child.kill('SIGTERM');
      expect(await last.exited, last.output()).toBe(0);
      const resumed = logFields(last.output(), 'online copy resumed');
      expect(resumed.chunks as number).toBeGreaterThanOrEqual(before);
      const swapped = logFields(last.output(), 'online copy swapped in');
      expect(swapped.reads as number).toBeLessThanOrEqual((swapped.chunks as number) - before + 1);
      expect(seen.reads).toBeGreaterThan(0);
      expect((await dst.query(`SELECT ${TEXT} FROM wallet_summary`)).rows).toEqual([await summaryOf(src)]);
      await expectSameTables(src.url, dst.url, ['wallet']);
      await expectNoShadowLeft(dst);
    },
  );
});
