/**
 * Exactly-once across crashes: the changefeed process is SIGKILLed at random moments (during the
 * snapshot, mid-epoch, mid-commit) while a workload writes, and restarted each time. At the end
 * the downstream equals the source row for row, and an append-only table WITHOUT a key (so a
 * replayed epoch would show up as duplicate rows) has exactly the source's rows.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, sinkCheckpoint, waitForCatchUp } from '../support/changefeed.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { mulberry32 as rng } from '../../src/cli/demo/workload.ts';
import { createTransferTables, startTransferWriter } from '../support/transfer-workload.ts';

const KILLS = 20;

describe('crash recovery', () => {
  it(`SIGKILL ${KILLS} times under load: no loss, no duplicates`, { timeout: 300_000 }, async () => {
    const src = await freshDatabase('crash_src');
    const dst = await freshDatabase('crash_dst');
    await createTransferTables(src, { accounts: 20000 });
    const random = rng(20261122); // kill timing
    const writer = await startTransferWriter(src, { seed: 20261121, accounts: 20000 });
    const config = writeConfig(`
changefeeds:
  - id: crash
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.accounts, public.ledger]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 2, chunkRows: 2000 }
`);
    const env = { SRC_URL: src.url, DST_URL: dst.url };
    const epochsSeen = new Set<number>();
    for (let i = 0; i < KILLS; i++) {
      const before = (await sinkCheckpoint(dst.url, 'crash'))?.epoch ?? null;
      const p = runCli(['start', '--config', config], { env });
      // Early kills may land in the snapshot (which then starts over); the later half waits until
      // this process has committed an epoch of its own, so that kills land in the stream at
      // different epochs however slowly a loaded machine starts the process.
      if (i >= KILLS / 2) {
        const deadline = Date.now() + 120_000;
        for (;;) {
          const cp = await sinkCheckpoint(dst.url, 'crash');
          if (cp && (before === null || cp.epoch > before)) break;
          if (p.child.exitCode !== null || Date.now() > deadline)
            throw new Error(`no new epoch:\n${p.output()}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await new Promise((r) => setTimeout(r, 700 + Math.floor(random() * 2300)));
      p.child.kill('SIGKILL');
      expect(await p.exited).toBe('SIGKILL');
      const cp = await sinkCheckpoint(dst.url, 'crash');
      if (cp) epochsSeen.add(cp.epoch);
    }
    const txns = await writer.stop();
    const last = runCli(['start', '--config', config], { env });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'crash', timeoutMs: 120_000 });
    last.child.kill('SIGTERM');
    expect(await last.exited, last.output()).toBe(0);
    // The kills landed at different points of the stream, not all before the first commit.
    expect(epochsSeen.size).toBeGreaterThan(5);
    expect(txns).toBeGreaterThan(100);
    await expectSameTables(src.url, dst.url, ['accounts', 'ledger']);
    const dup = await dst.query(
      'SELECT count(*)::int AS n FROM (SELECT txn, account FROM ledger GROUP BY 1, 2 HAVING count(*) > 1) d',
    );
    expect(dup.rows[0]?.n).toBe(0);
  });
});
