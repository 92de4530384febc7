/**
 * An operator mistake: the data directory is lost (a wiped container, another host) while the
 * initial snapshot was half committed downstream. The sink holds the checkpoint, the data
 * directory no record of which tables were still being copied; taking the selected tables as
 * replicated left one of them missing downstream. Now the restart copies every table again in one
 * transaction, and readers of the target never see a table partial meanwhile; a restart killed
 * before that copy commits leaves it owed (snapshot-owed.ts), not done.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, waitForCatchUp } from '../support/changefeed.ts';
import { runCli, testDataDir, writeConfig } from '../support/cli-process.ts';
import { cliFeedYaml, startReader, startTransfers, waitFor } from '../support/wallet.ts';

const WALLETS = [
  { name: 'w1', accounts: 3000 },
  { name: 'w2', accounts: 150_000 },
] as const;
const CHUNK_ROWS = 2000;

describe('a lost data directory', () => {
  it(
    'after an interrupted initial snapshot: every table is copied again, none is taken as replicated, also after a kill before that copy commits',
    { timeout: 300_000 },
    async () => {
      const src = await freshDatabase('ldd_src');
      const dst = await freshDatabase('ldd_dst');
      for (const { name, accounts } of WALLETS) {
        await src.query(`
          CREATE TABLE ${name} (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
          INSERT INTO ${name} SELECT g, 100, repeat('x', 40) FROM generate_series(1, ${accounts}) g;`);
      }
      const w2 = (await src.query(`SELECT 'w2'::regclass::oid::int AS oid`)).rows[0]!.oid as number;
      const config = writeConfig(cliFeedYaml('public.w1, public.w2', CHUNK_ROWS));
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const exists = async (name: string) =>
        (await dst.query(`SELECT to_regclass('public.${name}') IS NOT NULL AS e`)).rows[0]!.e as boolean;
      const transfers = await startTransfers(src, 21, WALLETS);
      const reader = await startReader(dst, WALLETS);
      const progressFile = join(testDataDir(), 'copies', 'test.json');
      /** Chunks of w2 written to its shadow (committed or not: enough to know the kill lands mid-copy). */
      const chunks = () => {
        if (!existsSync(progressFile)) return 0;
        const raw = JSON.parse(readFileSync(progressFile, 'utf8')) as {
          tables: Record<string, { progress: { chunks: number } }[]>;
        };
        return raw.tables[String(w2)]?.at(-1)?.progress.chunks ?? 0;
      };

      // Run 1: killed once w1 committed and w2 is half copied into its shadow.
      const first = runCli(['start', '--config', config], { env });
      let exited = false;
      void first.exited.then(() => (exited = true));
      await waitFor(async () => exited || (await exists('w2')) || chunks() >= 4, 'chunks of w2 written');
      expect(exited, first.output()).toBe(false);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      expect(await exists('w1')).toBe(true);
      expect(await exists('w2'), 'w2 committed before the kill: the test did not interrupt it').toBe(false);

      // The data directory is lost.
      for (const entry of readdirSync(testDataDir())) rmSync(join(testDataDir(), entry), { recursive: true });

      // Run 2 decides on a new snapshot, records itself in the hub and is killed before that
      // snapshot commits: the record it left must not pass for one of a replicated changefeed.
      const warning = 'no local record of this changefeed, whose sink holds a checkpoint';
      const second = runCli(['start', '--config', config], { env });
      // Its snapshot starts once the hub recorded it (registered at the log's end).
      await waitFor(
        () => second.output().includes(warning) && second.output().includes('"snapshot started"'),
        'the new snapshot started',
      );
      second.child.kill('SIGKILL');
      expect(await second.exited).toBe('SIGKILL');
      expect(await exists('w2'), 'the new snapshot committed before the kill: not interrupted').toBe(false);

      const third = runCli(['start', '--config', config], { env });
      await waitFor(
        async () => (await exists('w2')) || third.output().includes('"level":"error"'),
        'w2 downstream',
        180_000,
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${third.output().slice(-6000)}`);
      });
      const made = await transfers.stop();
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test' });
      const seen = await reader.stop();
      third.child.kill('SIGTERM');
      expect(await third.exited, third.output()).toBe(0);
      expect(third.output()).toContain('the snapshot this decided earlier has not committed');
      expect(made).toBeGreaterThan(10);
      expect(seen.whole).toBeGreaterThan(0);
      await expectSameTables(
        src.url,
        dst.url,
        WALLETS.map((w) => w.name),
      );
    },
  );
});
