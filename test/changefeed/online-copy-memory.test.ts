/**
 * A table without a key is copied online in one read (its rows cannot be reconciled with the
 * stream chunk by chunk), and such a table — an append-only log, an event table — is often the
 * largest. The real CLI adds one on SIGHUP while writes go on, VmRSS sampled from /proc for the
 * whole copy: the read goes through a cursor onto disk and down in chunks of the epoch, so memory
 * does not grow with the table. Before, the whole table was held as rows in memory (peak RSS
 * grew by the table's size and more).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';
import { expectSameTables } from '../support/changefeed.ts';
import { cliFeedYaml, untilCaughtUp, waitFor } from '../support/wallet.ts';

const LONG = process.env['TIDEMARK_LONG_TESTS'] === '1';
const MiB = 1024 * 1024;
/** ~150 MB of row text by default (~2.5 GB with TIDEMARK_LONG_TESTS=1). */
const ROWS = LONG ? 10_000_000 : 600_000;
const RSS_LIMIT = 320 * MiB;

function rssOf(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return null;
  }
}

/** The copy's rows go down in chunks of its epoch: the quota bounds them, not the table. */
function yaml(tables: string): string {
  return `${cliFeedYaml(tables, 2000)}    memoryQuotaBytes: ${64 * MiB}\n`;
}

describe('online copy of a large table without a key', () => {
  it(
    `${ROWS} rows added on SIGHUP under writes: peak RSS stays under ${RSS_LIMIT / MiB} MiB, the copy equals the source`,
    { timeout: LONG ? 3_600_000 : 600_000 },
    async () => {
      const src = await freshDatabase('ocmem_src');
      const dst = await freshDatabase('ocmem_dst');
      await src.query(`
        CREATE TABLE other (id int PRIMARY KEY, v text);
        INSERT INTO other VALUES (1, 'a');
        CREATE TABLE events (at int, kind text, payload text);
        CREATE INDEX ON events (at);
        ALTER TABLE events REPLICA IDENTITY FULL;
        INSERT INTO events SELECT g, 'k' || (g % 7), repeat(md5(g::text), 7) FROM generate_series(1, ${ROWS}) g;`);
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const config = writeConfig(yaml('public.other'));
      const p = runCli(['start', '--config', config], { env });
      let peak = 0;
      let copyMs = 0;
      const sampler = setInterval(() => {
        const r = p.child.pid === undefined ? null : rssOf(p.child.pid);
        if (r !== null) peak = Math.max(peak, r);
      }, 100);
      try {
        await untilCaughtUp(src, dst);
        writeFileSync(config, yaml('public.other, public.events'));
        p.child.kill('SIGHUP');
        const added = Date.now();
        // Writes during the read: held, then applied after the rows the read's snapshot holds.
        let stop = false;
        const writes = (async () => {
          for (let i = 0; !stop; i++) {
            await src.query(
              `INSERT INTO events VALUES (${-i}, 'late', 'x'); DELETE FROM events WHERE at = ${i + 1}`,
            );
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        // A process that stopped (a failed changefeed) ends the wait, not the timeout.
        const swapped = await waitFor(
          () => p.output().includes('online copy swapped in') || p.child.exitCode !== null,
          'the swap',
          LONG ? 3_000_000 : 500_000,
        ).then(
          () => p.output().includes('online copy swapped in'),
          (e: unknown) => String(e),
        );
        stop = true;
        await writes;
        // What the process did (re-reads, retries, errors) when the copy never swapped in.
        expect(swapped, p.output().slice(-6000)).toBe(true);
        await untilCaughtUp(src, dst);
        copyMs = Date.now() - added;
        p.child.kill('SIGTERM');
        expect(await p.exited, p.output().slice(-3000)).toBe(0);
      } finally {
        clearInterval(sampler);
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
      }
      console.log(
        `online copy of ${ROWS} keyless rows: ${copyMs} ms from SIGHUP to caught up, peak RSS ${(peak / MiB).toFixed(0)} MiB`,
      );
      expect(peak).toBeLessThan(RSS_LIMIT);
      await expectSameTables(src.url, dst.url, ['other', 'events']);
    },
  );
});
