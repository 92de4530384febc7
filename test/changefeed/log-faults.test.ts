/**
 * Faults of the local change log and of the source slot, each answered by a clear error, the
 * changefeed held (retrying or failed, never acknowledging past what the downstream holds), and
 * exact data after recovery.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { expectSameTables, sinkCheckpoint, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { type Changefeed } from '../../src/runtime/changefeed.ts';
import { failureOf, hubDirOf, hubStatsOf, startChangefeed } from '../support/engine.ts';
import type { ChangefeedConfig } from '../../src/runtime/changefeed-config.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { sourceObjectName } from '../../src/source/postgres/source-names.ts';
import { Lsn, LSN_CODEC } from '../../src/source/postgres/lsn.ts';
import { ChangeLog } from '../../src/log/change-log.ts';

async function setup(): Promise<{
  src: TestDatabase;
  dst: TestDatabase;
  write: (rows: number) => Promise<void>;
}> {
  const src = await freshDatabase('src');
  const dst = await freshDatabase('dst');
  await src.query(`
    CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
    CREATE TABLE ledger (account int NOT NULL, amount bigint NOT NULL, note text);
    ALTER TABLE ledger REPLICA IDENTITY FULL;
    INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 200) g;
  `);
  let n = 0;
  const write = async (txns: number) => {
    for (let i = 0; i < txns; i++) {
      n++;
      await src.query(
        `BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = ${(n % 200) + 1};
         INSERT INTO ledger VALUES (${(n % 200) + 1}, -1, repeat('x', 200)); COMMIT;`,
      );
    }
  };
  return { src, dst, write };
}

async function expectEqual(src: TestDatabase, dst: TestDatabase, id: string): Promise<void> {
  await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id, timeoutMs: 90_000 });
  await expectSameTables(src.url, dst.url, ['accounts', 'ledger']);
}

async function slotConfirmed(src: TestDatabase): Promise<Lsn | null> {
  const r = await src.query(
    `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = $1`,
    [sourceObjectName(src.url)],
  );
  return r.rows[0]?.c ? Lsn.parse(r.rows[0].c as string) : null;
}

/** The slot is never confirmed past what the downstream durably holds. */
async function expectNothingAckedPastSink(src: TestDatabase, dst: TestDatabase, id: string): Promise<void> {
  const cp = await sinkCheckpoint(dst.url, id);
  const confirmed = await slotConfirmed(src);
  if (cp && confirmed) expect(confirmed.compare(Lsn.parse(cp.position))).toBeLessThanOrEqual(0);
}

async function run(cfg: ChangefeedConfig, body: (feed: Changefeed) => Promise<void>): Promise<void> {
  const feed = startChangefeed(cfg, { logger: silentLogger });
  try {
    await body(feed);
  } finally {
    await feed.stop();
  }
}

describe('change log faults', () => {
  it('disk full: a clear retried error while a paused changefeed holds the log; it drains, and the log goes on by itself', async () => {
    const { src, dst, write } = await setup();
    const dstB = await freshDatabase('dstb');
    const a = testConfig({ id: 'feed-a', source: src.url, sink: dst.url, tables: ['accounts', 'ledger'] });
    const b = testConfig({ id: 'feed-b', source: src.url, sink: dstB.url, tables: ['accounts', 'ledger'] });
    const feedB = startChangefeed(b, { logger: silentLogger });
    await run(a, async () => {
      await write(20);
      await expectEqual(src, dst, a.id);
      await expectEqual(src, dstB, b.id);
      await feedB.stop(); // paused: its position holds the log back
    });
    // A limit a little above what the log holds now.
    const log = ChangeLog.open({
      path: join(await hubDirOf(src.url), 'log'),
      codec: LSN_CODEC,
      ifMissing: 'error',
    });
    const limit = log.usedBytes() + 256 * 1024;
    await log.close();

    await run({ ...a, changeLog: { ...a.changeLog, maxDiskBytes: limit } }, async (feedA) => {
      await write(600); // ~300 KB of ledger text: more than the limit leaves
      const deadline = Date.now() + 30_000;
      while (feedA.status().error?.code !== 'CHANGELOG_DISK_FULL') {
        if (Date.now() > deadline) throw new Error(`no disk-full error: ${JSON.stringify(feedA.status())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(feedA.status().error?.message).toMatch(/out of disk space/);
      expect(feedA.status().error?.hint).toMatch(/slow or stopped changefeed holds the log back/);
      expect(feedA.status().phase).toBe('streaming');
      await expectNothingAckedPastSink(src, dst, a.id);
      await expectNothingAckedPastSink(src, dstB, b.id);

      // The paused changefeed resumes and drains; the log is cleaned and the puller goes on.
      const resumedB = startChangefeed(b, { logger: silentLogger });
      try {
        await expectEqual(src, dst, a.id);
        await expectEqual(src, dstB, b.id);
      } finally {
        await resumedB.stop();
      }
    });
  });

  it('corrupt log (a machine crash, a bad disk): moved aside and refilled from the source, which still holds everything after the checkpoint — no loss, no duplicate', async () => {
    const { src, dst, write } = await setup();
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['accounts', 'ledger'] });
    await run(cfg, async () => {
      await write(50);
      await expectEqual(src, dst, cfg.id);
    });
    const dir = join(await hubDirOf(src.url), 'log');
    writeFileSync(join(dir, 'data.mdb'), Buffer.alloc(64 * 1024, 0x5a));
    await write(30); // committed while down: only the source has them now
    await expectNothingAckedPastSink(src, dst, cfg.id);
    await run(cfg, async () => {
      await write(20);
      await expectEqual(src, dst, cfg.id);
      expect((await hubStatsOf(cfg))?.logRefills).toBeGreaterThan(0);
    });
    const aside = readdirSync(dirname(dir)).filter((n) => n.startsWith('log.damaged-'));
    expect(aside).toHaveLength(1);
  });

  it('missing log: recreated from the slot, which was held at the checkpoint — no loss, no duplicate', async () => {
    const { src, dst, write } = await setup();
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['accounts', 'ledger'] });
    await run(cfg, async () => {
      await write(50);
      await expectEqual(src, dst, cfg.id);
    });
    await write(40); // committed while the changefeed is down: only the slot has them
    const dir = join(await hubDirOf(src.url), 'log');
    expect(existsSync(dir)).toBe(true);
    rmSync(dir, { recursive: true, force: true });
    await run(cfg, async () => {
      await write(10);
      await expectEqual(src, dst, cfg.id);
    });
  });

  it('slot dropped behind our back: SOURCE_SLOT_LOST, the changefeed stops; a reset re-snapshots to equality', async () => {
    const { src, dst, write } = await setup();
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['accounts', 'ledger'] });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    await write(30);
    await expectEqual(src, dst, cfg.id);
    const slot = sourceObjectName(src.url);
    // Kill the walsender and drop the slot before the puller reconnects.
    for (let i = 0; i < 100; i++) {
      const r = await src.query(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`,
        [slot],
      );
      try {
        await src.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
        break;
      } catch {
        if (r.rowCount === 0) await new Promise((res) => setTimeout(res, 5));
      }
    }
    await write(10);
    const err = await failureOf(feed);
    expect(err.code).toBe('SOURCE_SLOT_LOST');
    expect(err.message).toContain(slot);
    expect(feed.status().phase).toBe('failed');

    // Reset: the local log and the changefeed's checkpoint go; a new snapshot follows.
    rmSync(await hubDirOf(src.url), { recursive: true, force: true });
    await dst.query(`DELETE FROM tidemark.checkpoints WHERE changefeed = $1`, [cfg.id]);
    await run(cfg, async () => {
      await write(10);
      await expectEqual(src, dst, cfg.id);
    });
  });
});
