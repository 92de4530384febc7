import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

describe('PostgreSQL → PostgreSQL changefeed', () => {
  it('snapshot then stream with a concurrent writer: downstream equals the source', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await src.query(`
      CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(14,2) NOT NULL);
      CREATE TABLE events (k1 text, k2 uuid, seq bigint, payload jsonb, PRIMARY KEY (k1, k2, seq));
      CREATE TABLE nokey (a int, b text);
      ALTER TABLE nokey REPLICA IDENTITY FULL;
      INSERT INTO accounts SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 5000) g;
      INSERT INTO events SELECT 'k' || (g % 7), md5(g::text)::uuid, g, jsonb_build_object('g', g) FROM generate_series(1, 3000) g;
      INSERT INTO nokey SELECT g % 10, 'dup' FROM generate_series(1, 200) g;
    `);
    // A writer that runs before, during and after the snapshot.
    const writer = await src.connect();
    let stop = false;
    let n = 0;
    const writing = (async () => {
      while (!stop) {
        n++;
        await writer.query('BEGIN');
        await writer.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', [(n % 5000) + 1]);
        await writer.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [((n * 7) % 5000) + 1]);
        await writer.query(`INSERT INTO events VALUES ('w', gen_random_uuid(), $1, '{"w":true}')`, [n]);
        if (n % 5 === 0) await writer.query('DELETE FROM accounts WHERE id = $1', [((n * 13) % 5000) + 1]);
        if (n % 3 === 0) await writer.query(`INSERT INTO nokey VALUES ($1, 'dup')`, [n % 4]);
        if (n % 11 === 0)
          await writer.query(`DELETE FROM nokey WHERE ctid = (SELECT ctid FROM nokey WHERE a = $1 LIMIT 1)`, [
            n % 4,
          ]);
        await writer.query('COMMIT');
      }
    })();
    // Counted in transactions, not time (under the parallel suite on 2 cores, 1.7 s held 7):
    // some before the changefeed starts, and ten more once it streams.
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise((r) => setTimeout(r, 20));
    };
    await until(() => n >= 5);
    const cfg = testConfig({
      source: src.url,
      sink: dst.url,
      tables: ['public.accounts', 'events', 'public.nokey'],
    });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    await until(() => feed.status().phase !== 'starting' && feed.status().phase !== 'snapshot');
    expect(feed.status().phase).toBe('streaming');
    const streamingFrom = n;
    await until(() => n >= streamingFrom + 10);
    stop = true;
    await writing;
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
    expect(feed.status().phase).toBe('streaming');
    await feed.stop();
    await feed.done;
    await expectSameTables(src.url, dst.url, ['accounts', 'events', 'nokey']);
  });
});
