/**
 * `node --import tsx bench/profile-catchup.ts [--rows N] [--txn-rows N] [--updates] [--cpu-profile FILE]`:
 * the catch-up path alone, for profiling. A changefeed into a PostgreSQL sink is started once (empty
 * snapshot) and stopped; `rows` inserts commit in transactions of `txn-rows` (default 1M in 100 ×
 * 10k; `--updates` then updates 10k hot keys `rows` times more); the changefeed is started again and
 * timed until it has committed every change. With `--cpu-profile`, the V8 CPU profile of the catch-up
 * alone (not the workload) is written there (open in Chrome DevTools, or summarise with
 * `node bench/profile-summary.mjs FILE`).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import pg from 'pg';
import { defineChangefeed } from '../src/runtime/changefeed-config.ts';
import { closeBenchEngines } from './bench-engine.ts';
import { createDatabase, startBenchCluster, withClient } from './bench-cluster.ts';
import { watchFeed } from './replication-consumers.ts';
import { peakRssBytes, resetPeakRss } from './peak-rss.ts';
import { ITEMS_DDL } from './replication-workload.ts';
import { mib } from './peak-rss.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const rows = Number(arg('--rows') ?? 1_000_000);
const txnRows = Number(arg('--txn-rows') ?? 10_000);
const updates = process.argv.includes('--updates');
const profileFile = arg('--cpu-profile');

const cluster = await startBenchCluster();
try {
  const srcUrl = await createDatabase(cluster, 'prof_src');
  const dstUrl = await createDatabase(cluster, 'prof_dst');
  await withClient(srcUrl, (c) => c.query(ITEMS_DDL));
  const cfg = defineChangefeed({ id: 'prof', source: srcUrl, sink: dstUrl, tables: ['public.items'] });
  const first = await watchFeed(cfg);
  await first.streaming;
  await first.feed.stop();
  const src = new pg.Client({ connectionString: srcUrl });
  await src.connect();
  const w0 = Date.now();
  for (let lo = 1; lo <= rows; lo += txnRows) {
    await src.query(
      'INSERT INTO public.items SELECT g, 0, md5(g::text) FROM generate_series($1::bigint, $2::bigint) g',
      [lo, Math.min(rows, lo + txnRows - 1)],
    );
  }
  let changes = rows;
  if (updates) {
    for (let done = 0; done < rows; done += txnRows) {
      const lo = (done % 10_000) + 1;
      await src.query(`UPDATE public.items SET grp = grp + 1 WHERE id BETWEEN $1::bigint AND $2::bigint`, [
        lo,
        lo + Math.min(txnRows, 10_000) - 1,
      ]);
    }
    changes += rows;
  }
  const endLsn = (await src.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l;
  console.log(`workload: ${changes} changes written in ${Date.now() - w0} ms`);
  const session = new Session();
  if (profileFile) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
  }
  resetPeakRss();
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  const w = await watchFeed(cfg);
  let sentMs: number | null = null;
  let polling = false;
  const sentPoll = setInterval(() => {
    if (polling || sentMs !== null) return;
    polling = true;
    void src
      .query<{ done: boolean }>(
        `SELECT coalesce(bool_or(sent_lsn >= $1::pg_lsn), false) AS done FROM pg_stat_replication`,
        [endLsn],
      )
      .then(
        (q) => {
          if (sentMs === null && q.rows[0]?.done) sentMs = Date.now() - t0;
        },
        () => {},
      )
      .finally(() => (polling = false));
  }, 20);
  await w.streaming;
  const streamingMs = Date.now() - t0;
  await w.untilChanges(changes);
  const ms = Date.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sentPoll);
  await src.end();
  console.log(`walsender sent everything after ${sentMs} ms`);
  await w.feed.stop();
  console.log(
    `node CPU during catch-up: user ${(cpu.user / 1e3).toFixed(0)} ms, system ${(cpu.system / 1e3).toFixed(0)} ms = ${((cpu.user + cpu.system) / changes).toFixed(1)} µs per change`,
  );
  const commitMs = w.epochs.reduce((a, e) => a + e.commitMs, 0);
  const r = {
    ms,
    peakRssBytes: peakRssBytes(),
    epochs: { count: w.epochs.length, maxChanges: Math.max(...w.epochs.map((e) => e.changes)) },
  };
  console.log(
    `start → streaming ${streamingMs} ms; → first epoch committed ${(w.epochs[0]?.at ?? 0) - t0} ms; sink commit time (sum over epochs): ${commitMs} ms`,
  );
  if (profileFile) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(profileFile, JSON.stringify(profile));
    session.disconnect();
  }
  const n = await withClient(dstUrl, (c) =>
    c.query<{ n: string }>('SELECT count(*)::text AS n FROM public.items'),
  );
  console.log(
    `catch-up: ${changes} changes in ${r.ms} ms = ${Math.round((changes * 1000) / r.ms)} rows/s; ` +
      `peak RSS ${mib(r.peakRssBytes).toFixed(0)} MiB; ${r.epochs?.count} epochs (largest ${r.epochs?.maxChanges}); sink rows ${n.rows[0]!.n}`,
  );
} finally {
  await closeBenchEngines().catch(() => {});
  await cluster.stop();
}
