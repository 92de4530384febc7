/**
 * A keyless table's copy lands in one epoch: its rows (and the changes held while it was read) go
 * downstream as chunks of the epoch's open transaction, since the table may not fit in memory. The
 * epoch timer fires meanwhile; it must not cut between those chunks. Before, a cut committed the
 * epoch on the writer a chunk was still using and the changefeed stopped with INTERNAL ("commit on
 * a writer that is busy with another call"): CI's online-copy-memory waited for a swap from a
 * process that had died. The changes the stream brings while the table is read are held (past a
 * sixteenth of the quota, on disk) and applied after its rows: inserts and deletes of copied rows.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, testConfig } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { expectNoShadowLeft, recordingLogger, untilCaughtUp, waitFor } from '../support/wallet.ts';
import type { Changefeed } from '../../src/runtime/changefeed.ts';

const KiB = 1024;

/**
 * A source with `other (id, v)` streaming downstream and a keyless `events` of `rows` rows (~200
 * bytes each) not yet selected: starting with both tables copies `events` online.
 */
async function keylessBeside(name: string, rows: number) {
  const src = await freshDatabase(`${name}_src`);
  const dst = await freshDatabase(`${name}_dst`);
  await src.query(`
    CREATE TABLE other (id int PRIMARY KEY, v int);
    INSERT INTO other VALUES (1, 0);
    CREATE TABLE events (at int, payload text);
    ALTER TABLE events REPLICA IDENTITY FULL;
    INSERT INTO events SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, ${rows}) g;`);
  const first = startChangefeed(testConfig({ source: src.url, sink: dst.url, tables: ['other'] }), {
    logger: silentLogger,
  });
  await untilCaughtUp(src, dst);
  await first.stop();
  return { src, dst };
}

describe('online copy of a keyless table applied in chunks', () => {
  it('the epoch timer cuts no epoch between the chunks, under writes', { timeout: 180_000 }, async () => {
    const { src, dst } = await keylessBeside('occ', 30_000);

    // Transactions keep committing, so the timer always finds an epoch due.
    let stop = false;
    let n = 0;
    const writes = (async () => {
      while (!stop) {
        n++;
        // Held while the copy is read: past 64 KiB (1/16 of the quota) they wait on disk.
        await src.query(
          `UPDATE other SET v = v + 1; INSERT INTO events VALUES (${-n}, repeat('late', 500));
           DELETE FROM events WHERE at = ${n}`,
        );
      }
    })();
    const log = recordingLogger();
    // ~6 MB of rows against chunks of a quarter of 1 MiB. A long interval leaves the last commit
    // before the copy lands uncut, so an epoch is due at every tick while the chunks go down.
    const feed = startChangefeed(
      testConfig({
        source: src.url,
        sink: dst.url,
        tables: ['other', 'events'],
        epoch: { intervalMs: 60_000 },
        memoryQuotaBytes: 1024 * KiB,
      }),
      { logger: log },
    );
    feed.done.catch(() => {});
    try {
      await waitFor(
        () => feed.status().error !== null || log.lines.some((l) => l.msg === 'online copy swapped in'),
        'the swap',
        150_000,
      );
      expect(feed.status().error).toBeNull();
    } finally {
      stop = true;
      await writes;
    }
    await untilCaughtUp(src, dst);
    expect(feed.status().error).toBeNull();
    await feed.stop();
    expect(log.lines.some((l) => l.msg === 'epoch too large for memory: applying it in chunks')).toBe(true);
    const held = log.lines.find(
      (l) => l.msg === 'online copy: the changes held during the read were kept on disk',
    );
    expect(held?.fields.changes).toBeGreaterThan(0);
    await expectSameTables(src.url, dst.url, ['other', 'events']);
  });

  it(
    'a stop while the copy lands is honoured between its chunks; the next start copies it whole',
    { timeout: 180_000 },
    async () => {
      const { src, dst } = await keylessBeside('occs', 100_000);

      const cfg = testConfig({
        source: src.url,
        sink: dst.url,
        tables: ['other', 'events'],
        memoryQuotaBytes: 1024 * KiB,
      });
      // ~20 MB of rows land in chunks of 256 KiB: the stop comes with the first one.
      const log = recordingLogger();
      let feed: Changefeed | null = null;
      let stopped: Promise<void> | null = null;
      const info = log.info.bind(log);
      log.info = (msg, fields) => {
        info(msg, fields);
        if (msg === 'epoch too large for memory: applying it in chunks') stopped ??= feed!.stop();
      };
      feed = startChangefeed(cfg, { logger: log });
      await waitFor(() => stopped !== null, 'the copy landing');
      await stopped;
      expect(feed.status().phase).toBe('stopped');
      // Before, the stop waited for the whole table and committed its swap.
      expect(log.lines.some((l) => l.msg === 'online copy swapped in')).toBe(false);
      const tables = await dst.query(`SELECT to_regclass('public.events') AS t`);
      expect(tables.rows[0]?.t).toBeNull();

      const again = startChangefeed(cfg, { logger: silentLogger });
      await untilCaughtUp(src, dst);
      await waitFor(
        async () => (await dst.query(`SELECT to_regclass('public.events') AS t`)).rows[0]?.t !== null,
        'the swap',
      );
      expect(again.status().error).toBeNull();
      await again.stop();
      await expectSameTables(src.url, dst.url, ['other', 'events']);
      await expectNoShadowLeft(dst);
    },
  );
});
