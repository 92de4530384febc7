/**
 * Views over the hostile world's awkward inputs copied again online while writes flow: a keyless
 * table replicated by REPLICA IDENTITY FULL (duplicate rows, NULLs, numeric) and a partitioned
 * table whose updates move rows between partitions. A reader checks in every snapshot of the
 * target that each view equals its query over the tables downstream, so a view that switches to
 * the copy an epoch early or late, or counts a duplicate row once, fails it.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { expectSameTables, testConfig } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { readInSnapshots, recordingLogger, untilCaughtUp, waitFor } from '../support/wallet.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';

const LEDGER =
  'SELECT count(*) AS n, sum(amount) AS total, count(amount) AS amounts, count(DISTINCT at) AS ats FROM ledger';
const EVENTS = 'SELECT at, count(*) AS n, max(v) AS top, sum(id) AS ids FROM events GROUP BY at';

const ledgerText = 'SELECT n::text, total::text, amounts::text, ats::text FROM';
const eventsText = 'SELECT at::text, n::text, top, ids::text FROM';

async function expected(c: { query: TestDatabase['query'] }) {
  return {
    ledger: (await c.query(`${ledgerText} (${LEDGER}) q`)).rows,
    events: (await c.query(`${eventsText} (${EVENTS}) q ORDER BY 1`)).rows,
  };
}

async function views(c: { query: TestDatabase['query'] }) {
  return {
    ledger: (await c.query(`${ledgerText} ledger_summary`)).rows,
    events: (await c.query(`${eventsText} events_by_day ORDER BY 1`)).rows,
  };
}

/** Inserts, duplicates, updates and deletes in both tables, moving events across partitions. */
async function startWrites(src: TestDatabase, seed: number) {
  const random = mulberry32(seed);
  const c = await src.connect();
  let stopped = false;
  let n = 0;
  const running = (async () => {
    while (!stopped) {
      const id = 1 + Math.floor(random() * 400);
      const day = `'202${5 + Math.floor(random() * 2)}-0${1 + Math.floor(random() * 9)}-1${Math.floor(random() * 9)}'`;
      const amount = random() < 0.2 ? 'NULL' : (random() * 1000 - 200).toFixed(2);
      const step = random();
      await c.query('BEGIN');
      if (step < 0.3)
        await c.query(`INSERT INTO ledger SELECT at, amount FROM ledger ORDER BY random() LIMIT 1`);
      else if (step < 0.5) await c.query(`INSERT INTO ledger VALUES (now(), ${amount})`);
      else if (step < 0.65)
        await c.query(`DELETE FROM ledger WHERE ctid = (SELECT ctid FROM ledger ORDER BY random() LIMIT 1)`);
      else if (step < 0.75)
        await c.query(`INSERT INTO events VALUES (${id + 1000 * n}, ${day}, 'e${n}') ON CONFLICT DO NOTHING`);
      else if (step < 0.9) await c.query(`UPDATE events SET at = ${day}, v = 'm${n}' WHERE id = ${id}`);
      else await c.query(`DELETE FROM events WHERE id = ${id}`);
      await c.query('COMMIT');
      n++;
    }
  })();
  return {
    async stop() {
      stopped = true;
      await running;
      await c.end();
      return n;
    },
  };
}

describe('views over keyless and partitioned inputs copied again online', () => {
  it(
    'equal their queries in every snapshot of the target, across the swaps',
    { timeout: 180_000 },
    async () => {
      const src = await freshDatabase('rvh_src');
      const dst = await freshDatabase('rvh_dst');
      await src.query(`
      CREATE TABLE ledger (at timestamptz, amount numeric);
      ALTER TABLE ledger REPLICA IDENTITY FULL;
      INSERT INTO ledger SELECT '2026-01-01'::timestamptz + (g % 50) * interval '1 hour',
        CASE WHEN g % 9 = 0 THEN NULL ELSE (g % 300) - 50.25 END FROM generate_series(1, 20000) g;
      INSERT INTO ledger SELECT at, amount FROM ledger LIMIT 500;
      CREATE TABLE events (id bigint, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
      CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      INSERT INTO events SELECT g, '2025-01-01'::date + (g % 600), CASE WHEN g % 11 = 0 THEN NULL ELSE 'v' || g END
        FROM generate_series(1, 20000) g;`);
      const log = recordingLogger();
      const feed = startChangefeed(
        testConfig({
          source: src.url,
          sink: dst.url,
          tables: ['ledger', 'events'],
          views: [
            { name: 'ledger_summary', sql: LEDGER },
            { name: 'events_by_day', sql: EVENTS },
          ],
          snapshot: { parallelism: 1, chunkRows: 2000 },
        }),
        { logger: log },
      );
      await untilCaughtUp(src, dst);
      expect(await views(dst)).toEqual(await expected(src));
      const writes = await startWrites(src, 77);
      let reads = 0;
      const reader = await readInSnapshots(dst, async (c) => {
        expect(await views(c), 'the views equal their queries over the tables downstream').toEqual(
          await expected(c),
        );
        reads++;
      });
      const swaps = () => log.lines.filter((l) => l.msg === 'online copy swapped in').length;
      expect(await feed.resnapshot(['ledger', 'events'])).toEqual({
        started: ['public.ledger', 'public.events'],
        alreadyCopying: [],
      });
      await waitFor(() => swaps() === 2, 'both swaps');
      await new Promise((r) => setTimeout(r, 300));
      const made = await writes.stop();
      await untilCaughtUp(src, dst);
      await reader.stop();
      expect(feed.status().error).toBeNull();
      await feed.stop();
      expect(made).toBeGreaterThan(20);
      expect(reads).toBeGreaterThan(0);
      expect(await views(dst)).toEqual(await expected(src));
      await expectSameTables(src.url, dst.url, ['events']);
      const ledger =
        'SELECT count(*)::text AS n, sum(amount)::text AS s, count(DISTINCT (at, amount))::text AS d FROM ledger';
      expect((await dst.query(ledger)).rows).toEqual((await src.query(ledger)).rows);
    },
  );
});
