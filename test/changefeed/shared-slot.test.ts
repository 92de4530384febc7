/**
 * Ten changefeeds on one source database share one replication slot and one decode (the
 * source's puller and its local change log). Each downstream equals the source; pausing one holds
 * back only the slot, not the others; removing one leaves the rest running.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp, withClient } from '../support/changefeed.ts';
import { type Changefeed } from '../../src/runtime/changefeed.ts';
import { startChangefeed, testEngine } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { sourceObjectName } from '../../src/source/postgres/source-names.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';

const FEEDS = 10;

async function slotsOf(
  src: TestDatabase,
): Promise<{ name: string; temporary: boolean; confirmed: string | null }[]> {
  const r = await src.query(
    `SELECT slot_name AS name, temporary, confirmed_flush_lsn::text AS confirmed
       FROM pg_replication_slots WHERE database = current_database() ORDER BY 1`,
  );
  return r.rows as { name: string; temporary: boolean; confirmed: string | null }[];
}

describe('many changefeeds on one source database', () => {
  it('ten changefeeds share one slot; each equals the source; pausing, removing and adding one disturb no other', async () => {
    const src = await freshDatabase('src');
    await src.query(`
      CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, note text);
      CREATE TABLE orders (id bigint PRIMARY KEY, item int NOT NULL, qty int NOT NULL);
      INSERT INTO items SELECT g, g, 'n' || g FROM generate_series(1, 2000) g;
      INSERT INTO orders SELECT g, g % 2000 + 1, g % 7 FROM generate_series(1, 1000) g;
    `);
    const sinks: TestDatabase[] = [];
    for (let i = 0; i < FEEDS; i++) sinks.push(await freshDatabase(`dst${i}`));
    // Alternate selections, so the readers filter one shared log differently.
    const tablesOf = (i: number) =>
      i % 3 === 0 ? ['items'] : i % 3 === 1 ? ['orders'] : ['items', 'orders'];
    const configs = sinks.map((dst, i) =>
      testConfig({ id: `feed-${i}`, source: src.url, sink: dst.url, tables: tablesOf(i) }),
    );

    const writer = await src.connect();
    let stopWriting = false;
    let n = 0;
    const writing = (async () => {
      while (!stopWriting) {
        n++;
        await writer.query('BEGIN');
        await writer.query('UPDATE items SET v = v + 1 WHERE id = $1', [(n % 2000) + 1]);
        await writer.query('INSERT INTO orders VALUES ($1, $2, $3)', [100_000 + n, (n % 2000) + 1, n % 5]);
        if (n % 4 === 0) await writer.query('DELETE FROM items WHERE id = $1', [((n * 7) % 2000) + 1]);
        await writer.query('COMMIT');
        if (n % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const feeds: (Changefeed | null)[] = configs.map((c) => startChangefeed(c, { logger: silentLogger }));
    const catchUpAll = async (which: number[]) => {
      for (const i of which) {
        await waitForCatchUp({
          sourceUrl: src.url,
          sinkUrl: sinks[i]!.url,
          id: configs[i]!.id,
          timeoutMs: 90_000,
        });
      }
    };
    const all = [...Array(FEEDS).keys()];
    await new Promise((r) => setTimeout(r, 1500));
    await catchUpAll(all);

    // One permanent slot for the database (snapshot slots were temporary and are gone).
    const slots = await slotsOf(src);
    expect(slots.map((s) => s.name)).toEqual([sourceObjectName(src.url)]);
    expect(slots[0]!.temporary).toBe(false);

    // Pause feed 0: the others go on; the slot is held at feed 0's checkpoint, no further.
    await feeds[0]!.stop();
    await feeds[0]!.done;
    feeds[0] = null;
    const paused = await withClient(sinks[0]!.url, async (c) =>
      Lsn.parse(
        (await c.query(`SELECT position FROM tidemark.checkpoints WHERE changefeed = 'feed-0'`)).rows[0]
          .position,
      ),
    );
    await new Promise((r) => setTimeout(r, 1000));
    await catchUpAll(all.slice(1));
    const held = Lsn.parse((await slotsOf(src))[0]!.confirmed!);
    expect(held.compare(paused)).toBeLessThanOrEqual(0);

    // Remove feed 1 for good: its position no longer holds anything; the rest keep streaming.
    await feeds[1]!.stop();
    feeds[1] = null;
    await (await testEngine()).removeSubscription(configs[1]!);
    const before = n;
    await new Promise((r) => setTimeout(r, 1000));
    expect(n).toBeGreaterThan(before);
    for (const f of feeds.slice(2)) expect(f!.status().phase).toBe('streaming');

    // Add an eleventh while the others stream: its snapshot goes through a temporary slot, then
    // it reads the shared log from the snapshot's point.
    const extraSink = await freshDatabase('dst10');
    sinks.push(extraSink);
    configs.push(testConfig({ id: 'feed-10', source: src.url, sink: extraSink.url, tables: tablesOf(10) }));
    feeds.push(startChangefeed(configs[10]!, { logger: silentLogger }));

    // Resume feed 0 from its checkpoint (served from the log), then stop writing and compare.
    feeds[0] = startChangefeed(configs[0]!, { logger: silentLogger });
    await new Promise((r) => setTimeout(r, 500));
    stopWriting = true;
    await writing;
    const live = [0, ...all.slice(2), 10];
    await catchUpAll(live);
    for (const i of live) await expectSameTables(src.url, sinks[i]!.url, tablesOf(i));
    for (const f of feeds) await f?.stop();
    for (const f of feeds) await f?.done;
    expect(n).toBeGreaterThan(50);
    // Still one slot, now released to the slowest remaining changefeed's checkpoint.
    expect((await slotsOf(src)).map((s) => s.name)).toEqual([sourceObjectName(src.url)]);
  });
});
