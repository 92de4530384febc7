/**
 * A new changefeed's initial snapshot killed (SIGKILL) part-way under write load, then restarted
 * (issue 12, "resumable"). The snapshot commits table by table: the tables that committed are kept
 * and never read again; the unfinished one is copied online (shadow, chunks, swap) from the sink's
 * checkpoint, and a second kill during that copy costs at most the chunk in flight. A reader of
 * the target never sees a table partial: each `w<i>` downstream is absent, or holds every account
 * with the constant total (transfers move money, never make it).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, waitForCatchUp } from '../support/changefeed.ts';
import { runCli, testDataDir, writeConfig } from '../support/cli-process.ts';
import { expectNoShadowLeft, startReader, startTransfers } from '../support/wallet.ts';

/** Accounts per table: the last table is large so that the kill lands while it is read. */
const ACCOUNTS = [3000, 3000, 120_000] as const;
const NAMES = ['w1', 'w2', 'w3'] as const;
const WALLETS = NAMES.map((name, i) => ({ name, accounts: ACCOUNTS[i]! }));

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every JSON log line with message `msg` in a CLI's output. */
function logLines(output: string, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const l = JSON.parse(line) as Record<string, unknown>;
      if (l.msg === msg) out.push(l);
    } catch {
      continue;
    }
  }
  return out;
}

describe('initial snapshot across SIGKILL', () => {
  it(
    'keeps the tables that committed, copies the rest online from the checkpoint; readers never see a partial table',
    { timeout: 300_000 },
    async () => {
      const src = await freshDatabase('snr_src');
      const dst = await freshDatabase('snr_dst');
      for (const [i, name] of NAMES.entries()) {
        await src.query(`
          CREATE TABLE ${name} (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
          INSERT INTO ${name} SELECT g, 100, repeat('x', 40) FROM generate_series(1, ${ACCOUNTS[i]}) g;`);
      }
      // Empty, never written: left unfinished by the kill, its copy has no chunk and no change
      // to make its shadow; the swap failed on the missing shadow before (42P01, not retriable).
      await src.query(`CREATE TABLE w4 (id int PRIMARY KEY, v text)`);
      const w3 = (await src.query(`SELECT 'w3'::regclass::oid::int AS oid`)).rows[0]!.oid as number;
      const config = writeConfig(`
changefeeds:
  - id: test
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.w1, public.w2, public.w3, public.w4]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 1, chunkRows: 2000 }
`);
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const exists = async (name: string) =>
        (await dst.query(`SELECT to_regclass('public.${name}') IS NOT NULL AS e`)).rows[0]!.e as boolean;
      const transfers = await startTransfers(src, 12, WALLETS);
      const reader = await startReader(dst, WALLETS);

      // Run 1: killed after w1 and w2 committed, while w3 is read in the exported snapshot.
      const first = runCli(['start', '--config', config], { env });
      let exited = false;
      void first.exited.then(() => (exited = true));
      await waitFor(async () => exited || (await exists('w2')), 'w2 committed downstream');
      expect(exited, first.output()).toBe(false);
      expect(await exists('w3')).toBe(false);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      expect(await exists('w3'), 'w3 committed before the kill: the test did not interrupt it').toBe(false);
      // w2's log line comes after its commit, which the kill may beat: w1's is there, w3's never.
      const committed = logLines(first.output(), 'snapshot table committed').map((l) => l.table);
      expect(committed[0]).toBe('public.w1');
      expect(committed).not.toContain('public.w3');

      // Run 2: w1 and w2 kept, w3 copied online; killed once some of its chunks committed.
      const progressFile = join(testDataDir(), 'copies', 'test.json');
      const committedChunks = async (): Promise<number> => {
        if (!existsSync(progressFile)) return 0;
        const cp = await dst.query(`SELECT epoch FROM tidemark.checkpoints WHERE changefeed = 'test'`);
        const epoch = Number(cp.rows[0]?.epoch ?? -1);
        const raw = JSON.parse(readFileSync(progressFile, 'utf8')) as {
          tables: Record<string, { epoch: number; progress: { chunks: number } }[]>;
        };
        const mine = (raw.tables[String(w3)] ?? []).filter((e) => e.epoch <= epoch);
        return mine.at(-1)?.progress.chunks ?? 0;
      };
      const second = runCli(['start', '--config', config], { env });
      exited = false;
      void second.exited.then(() => (exited = true));
      await waitFor(async () => exited || (await committedChunks()) >= 5, 'five chunks of w3 committed');
      expect(exited, second.output()).toBe(false);
      const before = await committedChunks();
      second.child.kill('SIGKILL');
      expect(await second.exited).toBe('SIGKILL');
      const out2 = second.output();
      expect(out2).not.toContain('"snapshot started"');
      expect(
        logLines(out2, 'online copy resumed')
          .map((l) => l.table as string)
          .sort(),
      ).toEqual(['public.w3', 'public.w4']);
      expect(logLines(out2, 'online copy swapped in').map((l) => l.table)).toEqual(['public.w4']);
      expect(logLines(out2, 'online copy started')).toEqual([]);

      // Run 3: goes on from w3's committed chunks; w1 and w2 are not read again.
      const last = runCli(['start', '--config', config], { env });
      await waitFor(() => last.output().includes('online copy swapped in'), 'the swap').catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${last.output().slice(-6000)}`);
        },
      );
      const made = await transfers.stop();
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test' });
      const seen = await reader.stop();
      last.child.kill('SIGTERM');
      expect(await last.exited, last.output()).toBe(0);
      const out3 = last.output();
      expect(out3).not.toContain('"snapshot started"');
      const resumed = logLines(out3, 'online copy resumed');
      expect(resumed.map((l) => l.table)).toEqual(['public.w3']);
      expect(resumed[0]!.chunks as number).toBeGreaterThanOrEqual(before);
      const swapped = logLines(out3, 'online copy swapped in');
      expect(swapped.map((l) => l.table)).toEqual(['public.w3']);
      // Chunks read by the last run: those left after the committed ones, plus the one in flight.
      const total = swapped[0]!.chunks as number;
      expect(total).toBeGreaterThanOrEqual(ACCOUNTS[2] / 2000);
      expect(swapped[0]!.reads as number).toBeLessThanOrEqual(total - (resumed[0]!.chunks as number) + 1);
      expect(made).toBeGreaterThan(20);
      expect(seen.whole).toBeGreaterThan(0);
      await expectSameTables(src.url, dst.url, [...NAMES, 'w4']);
      await expectNoShadowLeft(dst);
    },
  );
});
