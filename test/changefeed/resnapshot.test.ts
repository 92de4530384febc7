/**
 * Re-copy on demand (issue 12): a replicated table copied again online — by the changefeed's
 * `resnapshot` (the server's API and CLI call it) or by a `resnapshot` request in the config of
 * `tidemark start` — while writes flow and other tables stream. Downstream the table keeps its
 * last rows until the copy replaces it whole, in one epoch; a reader checks in every snapshot that
 * `wallet` is whole and consistent. The downstream is damaged first (an operator's mistake: notes
 * overwritten, which the transfers never touch), so only a real copy makes it equal again.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { expectSameTables, testConfig } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import {
  createWallet,
  recordingLogger,
  startReader,
  startTransfers,
  untilCaughtUp,
  waitFor,
  expectNoShadowLeft,
  finishCopyUnderLoad,
} from '../support/wallet.ts';

async function damageNotes(dst: TestDatabase): Promise<number> {
  const r = await dst.query(`UPDATE wallet SET note = 'damaged' WHERE note IS NOT NULL`);
  return r.rowCount ?? 0;
}

async function damagedNotes(dst: TestDatabase): Promise<number> {
  return (await dst.query(`SELECT count(*)::int AS n FROM wallet WHERE note = 'damaged'`)).rows[0]!
    .n as number;
}

describe('resnapshot', () => {
  it('a replicated table copied again on request under load replaces its rows whole; names that select nothing are refused', async () => {
    const src = await freshDatabase('rs_src');
    const dst = await freshDatabase('rs_dst');
    await src.query(`CREATE TABLE other (id int PRIMARY KEY, v text); INSERT INTO other VALUES (1, 'a')`);
    await createWallet(src);
    const log = recordingLogger();
    const cfg = testConfig({
      source: src.url,
      sink: dst.url,
      tables: ['other', 'wallet'],
      snapshot: { parallelism: 1, chunkRows: 1000 },
    });
    const feed = startChangefeed(cfg, { logger: log });
    await untilCaughtUp(src, dst);
    expect(await damageNotes(dst)).toBeGreaterThan(100);

    const refused = await feed.resnapshot(['public.nosuch', 'other', 'wall*']).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TidemarkError);
    expect((refused as TidemarkError).code).toBe('RESNAPSHOT_REFUSED');
    expect((refused as TidemarkError).message).toContain('public.nosuch');
    expect(log.lines.some((l) => l.msg === 'table copied again online, as asked')).toBe(false);

    const transfers = await startTransfers(src, 56);
    const reader = await startReader(dst);
    const result = await feed.resnapshot(['wall*']);
    expect(result).toEqual({ started: ['public.wallet'], alreadyCopying: [] });
    // Asked again while it copies: not started twice.
    expect(await feed.resnapshot(['public.wallet'])).toEqual({
      started: [],
      alreadyCopying: ['public.wallet'],
    });
    await src.query(`INSERT INTO other VALUES (2, 'b')`);
    const { seen } = await finishCopyUnderLoad({ src, dst, log, feed, transfers, reader });
    // Present and whole in every snapshot read, before, during and after the copy.
    expect(seen.absent).toBe(0);
    expect(seen.whole).toBeGreaterThan(0);
    expect(await damagedNotes(dst)).toBe(0);
    await expectSameTables(src.url, dst.url, ['other', 'wallet']);
    await expectNoShadowLeft(dst);
  });

  it('a request to a changefeed that failed is answered at once, never left waiting', async () => {
    const dst = await freshDatabase('rsf_dst');
    const missing = new URL(dst.url);
    missing.pathname = '/no_such_database_here';
    const feed = startChangefeed(testConfig({ source: missing.toString(), sink: dst.url, tables: ['t'] }), {
      logger: recordingLogger(),
    });
    await expect(feed.done).rejects.toMatchObject({ code: 'DATABASE_NOT_FOUND' });
    // Hung before: the failed runner was not stopping, so the request was queued for good.
    await expect(feed.resnapshot(['t'])).rejects.toMatchObject({ code: 'RESNAPSHOT_NOT_TAKEN' });
  });

  it(
    'tidemark start: a resnapshot request in the config is taken once, across restarts; a new request copies again',
    { timeout: 200_000 },
    async () => {
      const src = await freshDatabase('rsc_src');
      const dst = await freshDatabase('rsc_dst');
      await createWallet(src);
      const yaml = (request: string) => `
changefeeds:
  - id: test
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.wallet]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 1, chunkRows: 2000 }
    resnapshot:
      - { table: wallet, request: '${request}' }
`;
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const run = async (config: string, expectCopy: boolean, afterSwap?: () => Promise<unknown>) => {
        const p = runCli(['start', '--config', config], { env });
        if (expectCopy) {
          await waitFor(() => p.output().includes('online copy swapped in'), 'the swap', 120_000).catch(
            (e: unknown) => {
              throw new Error(`${String(e)}\n${p.output().slice(-6000)}`);
            },
          );
        }
        await afterSwap?.();
        await untilCaughtUp(src, dst);
        // An epoch after the start: what the start decided is committed.
        await src.query(`UPDATE wallet SET balance = balance WHERE id = 1`);
        await untilCaughtUp(src, dst);
        p.child.kill('SIGTERM');
        expect(await p.exited, p.output()).toBe(0);
        return p.output();
      };
      // The initial snapshot satisfies the request: no copy right after it.
      const first = await run(writeConfig(yaml('r1')), false);
      expect(first).not.toContain('table copied again online');
      expect(await damageNotes(dst)).toBeGreaterThan(100);
      // The same request on a restart: not copied again (the damage stays, as it would after any restart).
      const same = await run(writeConfig(yaml('r1')), false);
      expect(same).not.toContain('table copied again online');
      expect(await damagedNotes(dst)).toBeGreaterThan(100);
      // A new request: copied again under writes; readers see the table whole throughout.
      const transfers = await startTransfers(src, 78);
      const reader = await startReader(dst);
      let seen = { absent: -1, whole: 0 };
      const next = await run(writeConfig(yaml('r2')), true, async () => {
        await transfers.stop();
        await untilCaughtUp(src, dst);
        seen = await reader.stop();
      });
      expect(next).toContain('table copied again online, as asked');
      expect(seen.absent).toBe(0);
      expect(await damagedNotes(dst)).toBe(0);
      await expectSameTables(src.url, dst.url, ['wallet']);
      // And it is taken: restarting with r2 copies nothing.
      const again = await run(writeConfig(yaml('r2')), false);
      expect(again).not.toContain('table copied again online');
    },
  );
});
