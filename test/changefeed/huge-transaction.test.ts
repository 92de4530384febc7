/**
 * One source transaction of 5M rows (~1 GB of changes) commits downstream atomically, in one
 * downstream transaction, while the Tidemark process (the real CLI) stays under 512 MB of RSS:
 * the change log keeps the transaction on disk, and the epoch goes downstream in ordered chunks
 * of one open transaction. VmRSS is sampled from /proc during the whole run; a reader checks
 * that the downstream only ever shows none or all of the transaction.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { waitForCatchUp, withClient } from '../support/changefeed.ts';

const ROWS = 5_000_000;
const RSS_LIMIT_BYTES = 512 * 1024 * 1024;

/** VmRSS and its parts (anonymous, file-mapped) from /proc, in bytes; null once the process is gone. */
function rss(pid: number): { vm: number; anon: number; file: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { vm: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return null;
  }
}

describe('huge transaction', () => {
  it(
    '5M rows in one source transaction: one downstream transaction, peak RSS under 512 MB',
    { timeout: 900_000 },
    async () => {
      const src = await freshDatabase('src');
      const dst = await freshDatabase('dst');
      await src.query(`
      CREATE TABLE big (id bigint PRIMARY KEY, grp int NOT NULL, pad text NOT NULL);
      CREATE TABLE small (id int PRIMARY KEY, v int NOT NULL);
      INSERT INTO small SELECT g, 0 FROM generate_series(1, 100) g;
    `);
      const config = writeConfig(`
changefeeds:
  - id: huge
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.big, public.small]
    heartbeatIntervalMs: 200
`);
      const p = runCli(['start', '--config', config], { env: { SRC_URL: src.url, DST_URL: dst.url } });
      const pid = p.child.pid!;
      let peakRss = 0;
      let atPeak = { vm: 0, anon: 0, file: 0 };
      const sampler = setInterval(() => {
        const r = rss(pid);
        if (r !== null && r.vm > peakRss) {
          peakRss = r.vm;
          atPeak = r;
        }
      }, 50);
      // Downstream reader: the big table is empty or complete, never in between.
      const seen = new Set<number>();
      let reading = true;
      const reader = (async () => {
        const c = await dst.connect();
        while (reading) {
          const r = await c.query(`SELECT to_regclass('public.big') IS NOT NULL AS ok`);
          if (r.rows[0].ok)
            seen.add((await c.query('SELECT count(*)::int AS n FROM big')).rows[0].n as number);
          await new Promise((res) => setTimeout(res, 250));
        }
      })();
      try {
        await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'huge', timeoutMs: 120_000 });
        const started = Date.now();
        // Small transactions before and after, so the huge one shares its epochs with others.
        await src.query('UPDATE small SET v = v + 1 WHERE id <= 50');
        await src.query(
          `INSERT INTO big SELECT g, g % 1000, repeat(md5(g::text), 5) FROM generate_series(1, ${ROWS}) g`,
        );
        await src.query('UPDATE small SET v = v + 1 WHERE id > 50');
        await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'huge', timeoutMs: 800_000 });
        const seconds = (Date.now() - started) / 1000;
        reading = false;
        await reader;
        const agg =
          'SELECT count(*)::bigint AS n, sum(id)::text AS s, sum(grp)::text AS g, sum(length(pad))::text AS l FROM big';
        const [a, b] = await Promise.all([
          withClient(src.url, (c) => c.query(agg)),
          withClient(dst.url, (c) => c.query(agg)),
        ]);
        expect(b.rows[0]).toEqual(a.rows[0]);
        expect(Number(b.rows[0].n)).toBe(ROWS);
        const small = await withClient(dst.url, (c) => c.query('SELECT sum(v)::int AS v FROM small'));
        expect(small.rows[0].v).toBe(100);
        expect([...seen].every((n) => n === 0 || n === ROWS)).toBe(true);
        expect(p.output()).toMatch(/applying it in chunks/);
        console.log(
          `huge transaction: ${ROWS} rows in ${seconds.toFixed(1)} s, peak VmRSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (anon ${(atPeak.anon / 2 ** 20).toFixed(0)}, file ${(atPeak.file / 2 ** 20).toFixed(0)})`,
        );
        expect(peakRss).toBeGreaterThan(0);
        expect(peakRss).toBeLessThan(RSS_LIMIT_BYTES);
      } finally {
        reading = false;
        clearInterval(sampler);
        p.child.kill('SIGTERM');
        await p.exited;
        await reader.catch(() => {});
      }
    },
  );
});
