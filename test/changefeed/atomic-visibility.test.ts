/**
 * Atomic visibility: money moves between two tables (checking → savings) in one source
 * transaction; a reader polls the downstream in one snapshot and fails on any read where the
 * total differs — which would happen if a source transaction, or the two tables, became visible
 * downstream in parts.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { testConfig, waitForCatchUp, expectSameTables } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

describe('atomic visibility', () => {
  it('a downstream reader never sees a transfer half-applied', async () => {
    const src = await freshDatabase('atom_src');
    const dst = await freshDatabase('atom_dst');
    const N = 500;
    await src.query(`
      CREATE TABLE checking (id int PRIMARY KEY, balance bigint NOT NULL);
      CREATE TABLE savings (id int PRIMARY KEY, balance bigint NOT NULL);
      INSERT INTO checking SELECT g, 1000 FROM generate_series(1, ${N}) g;
      INSERT INTO savings SELECT g, 1000 FROM generate_series(1, ${N}) g;
    `);
    const total = 2 * N * 1000;
    const feed = startChangefeed(
      testConfig({
        source: src.url,
        sink: dst.url,
        tables: ['checking', 'savings'],
        epoch: { intervalMs: 10 },
      }),
      {
        logger: silentLogger,
      },
    );
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test' });
    const writers = await Promise.all([src.connect(), src.connect()]);
    const reader = await dst.connect();
    let stop = false;
    let transfers = 0;
    const write = async (w: (typeof writers)[number], seed: number) => {
      let i = seed;
      while (!stop) {
        i = (i * 1103515245 + 12345) % 2 ** 31;
        const from = (i % N) + 1;
        const to = ((i >> 8) % N) + 1;
        const amt = (i % 97) + 1;
        await w.query('BEGIN');
        // Deletes and re-inserts too, so the reader also sees rows move, not only change.
        await w.query('UPDATE checking SET balance = balance - $2 WHERE id = $1', [from, amt]);
        await w.query('UPDATE savings SET balance = balance + $2 WHERE id = $1', [to, amt]);
        await w.query('COMMIT');
        transfers++;
      }
    };
    const writing = Promise.all(writers.map((w, k) => write(w, k + 1)));
    let reads = 0;
    const bad: string[] = [];
    // A count of reads and transfers, not a time: how many fit in a second depends on the machine's
    // load (under the parallel suite on 2 cores, 4 s held 75 of one of them).
    while (reads < 200 || transfers < 200) {
      const r = await reader.query(
        `SELECT (SELECT sum(balance) FROM checking)::bigint + (SELECT sum(balance) FROM savings)::bigint AS total,
                (SELECT position FROM tidemark.checkpoints WHERE changefeed = 'test') AS pos`,
      );
      reads++;
      if (Number(r.rows[0].total) !== total) bad.push(`${r.rows[0].total} at ${r.rows[0].pos}`);
    }
    stop = true;
    await writing;
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test' });
    await feed.stop();
    expect(bad).toEqual([]);
    await expectSameTables(src.url, dst.url, ['checking', 'savings']);
  });
});
