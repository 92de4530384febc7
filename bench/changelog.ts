/**
 * `npm run bench -- changelog`: total rows/s delivered to 1, 4 and 16 readers of one source
 * database through the shared puller + change log, beside the same work with one slot per reader
 * (a PostgresSource each, reading `stream()`). Same rows, same machine, same run.
 *
 *   puller:    INSERT … (batches) ─► 1 slot ─► ChangeLog ─► n readers (each counts its rows)
 *   baseline:  INSERT … (batches) ─► n slots ─► n PostgresSource.stream()
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Puller } from '../src/source/postgres/puller.ts';
import { PostgresSource } from '../src/source/postgres/pg-source.ts';
import { eachMessage, type ChangeMessage } from '../src/source/source.ts';
import { startBenchCluster } from './bench-cluster.ts';
import type { BenchFigure, BenchResult } from './report.ts';

export interface ChangelogBenchOptions {
  /** A database to create the benchmark's databases beside; a private cluster when absent. */
  readonly pgUrl?: string;
  readonly rows?: number | null;
  readonly log: (line: string) => void;
}

const READERS = [1, 4, 16];
const BATCH_ROWS = 10_000;

export async function run(opts: ChangelogBenchOptions): Promise<BenchResult> {
  const rows = opts.rows ?? 200_000;
  const cluster = opts.pgUrl ? null : await startBenchCluster();
  const adminUrl = opts.pgUrl ?? cluster!.url('postgres');
  const figures: BenchFigure[] = [];
  try {
    for (const n of READERS) {
      const shared = await timed(await database(adminUrl, `cl_puller_${n}`), rows, n, viaPuller);
      const slots = await timed(await database(adminUrl, `cl_slots_${n}`), rows, n, viaSlots);
      opts.log(
        `${n} readers: puller ${fmt(shared)} rows/s, one slot each ${fmt(slots)} rows/s, ratio ${(shared / slots).toFixed(2)}`,
      );
      figures.push({
        metric: `${n} reader${n > 1 ? 's' : ''} rows/s delivered`,
        tidemark: shared,
        baseline: slots,
        baselineName: 'one slot per reader',
        unit: 'rows/s',
        higherIsBetter: true,
      });
    }
  } finally {
    await cluster?.stop();
  }
  return {
    name: 'changelog',
    figures,
    notes: [
      `${rows} rows inserted in transactions of ${BATCH_ROWS}; every reader reads every row (total = rows × readers).`,
    ],
  };
}

type Consumers = (
  url: string,
  n: number,
) => Promise<{ streams: AsyncIterable<ChangeMessage>[]; close: () => Promise<void> }>;

async function viaPuller(url: string, n: number) {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-bench-log-'));
  const puller = await Puller.start({ url, logDir: join(dir, 'log'), heartbeatIntervalMs: 1000 });
  const start = puller.log.coveredFrom!;
  const streams: AsyncIterable<ChangeMessage>[] = [];
  for (let i = 0; i < n; i++) {
    const r = await puller.addReader({
      id: `r${i}`,
      tables: [{ schema: 'public', name: 't' }],
      checkpoint: start,
    });
    streams.push(r.stream(start));
  }
  return {
    streams,
    close: async () => {
      await puller.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function viaSlots(url: string, n: number) {
  const sources: PostgresSource[] = [];
  const streams: AsyncIterable<ChangeMessage>[] = [];
  for (let i = 0; i < n; i++) {
    const src = new PostgresSource({
      url,
      changefeedId: `bench-${n}-${i}`,
      tables: ['t'],
      snapshot: { parallelism: 1, chunkRows: 1000 },
      heartbeatIntervalMs: 1000,
    });
    sources.push(src);
    const { tables, published } = await src.prepare();
    await src.syncPublication(tables, published);
    const snap = await src.createSnapshot(tables);
    for await (const chunk of snap.rows) void chunk;
    streams.push(eachMessage(src.stream(snap.position)));
  }
  return { streams, close: async () => void (await Promise.all(sources.map((s) => s.close()))) };
}

/** Total rows/s delivered: rows × readers over the time from the first insert to the last row read. */
async function timed(url: string, rows: number, n: number, consumers: Consumers): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {}); // surfaced by the next query
  await c.connect();
  const { streams, close } = await consumers(url, n);
  try {
    const t0 = performance.now();
    const reads = streams.map(async (s) => {
      let seen = 0;
      for await (const m of s) if (m.tag === 'insert' && ++seen >= rows) break;
    });
    for (let from = 1; from <= rows; from += BATCH_ROWS) {
      const to = Math.min(rows, from + BATCH_ROWS - 1);
      await c.query(`INSERT INTO t SELECT g, md5(g::text) FROM generate_series(${from}, ${to}) g`);
    }
    await Promise.all(reads);
    return (rows * n * 1000) / (performance.now() - t0);
  } finally {
    await close();
    await c.end();
  }
}

async function database(adminUrl: string, name: string): Promise<string> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await c.query(`CREATE DATABASE "${name}"`);
  } finally {
    await c.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const t = new pg.Client({ connectionString: url });
  await t.connect();
  await t.query(`CREATE TABLE t (id int PRIMARY KEY, v text)`);
  await t.end();
  return url;
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}
