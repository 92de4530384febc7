/**
 * Benchmark `sinks` (issue 5): rows/s into each sink through the `Sink` API, with epochs built by
 * `EpochBuilder` exactly as the runtime builds them (so per-key collapsing pays off on hot keys),
 * beside a plain batched write loop into the same store with the same client library.
 *
 *   per target, per phase (inserts | updates over hot keys), each into a fresh store:
 *     tidemark  source transactions of 1k rows ─► EpochBuilder ─cut every maxRows─► sink.commitEpoch
 *     baseline  the same 1k-row transactions ─► one batched INSERT / upsert each
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PgCluster } from '../test/support/pg-cluster.ts';
import { startNats, type NatsServer } from '../test/support/nats.ts';
import { freePort } from '../test/support/pg-cluster.ts';
import { EpochBuilder } from '../src/coordinator/epoch-builder.ts';
import { CHANGEFEED_DEFAULTS } from '../src/runtime/changefeed-config.ts';
import { createSink } from '../src/sink/create-sink.ts';
import type { Row } from '../src/core/row.ts';
import type { SnapshotRows } from '../src/core/epoch.ts';
import { Lsn } from '../src/source/postgres/lsn.ts';
import type { BenchFigure, BenchOptions, BenchResult } from './report.ts';
import { createDatabase, startBenchCluster } from './bench-cluster.ts';
import { ITEMS } from './fixtures.ts';
import { mariaDbInstalled, startMariaDb, type MariaDb } from '../test/support/mariadb.ts';
import {
  fileBaseline,
  mysqlBaseline,
  natsBaseline,
  postgresBaseline,
  sqliteBaseline,
  type BaselineWriter,
} from './sink-baselines.ts';

const DEFAULT_ROWS = 200_000;
const TXN_ROWS = 1000;
const HOT_KEYS = 10_000;
const EPOCH_ROWS = CHANGEFEED_DEFAULTS.epoch.maxRows;

type Phase = 'inserts' | 'updates';

/** The k-th change of a phase: inserts of ids 1..n, or updates cycling over the hot keys. */
function changeRow(phase: Phase, k: number): Row {
  if (phase === 'inserts') return [String(k + 1), '0', `payload-${k + 1}`.padEnd(32, '.')];
  const id = (k % HOT_KEYS) + 1;
  const version = Math.floor(k / HOT_KEYS) + 1;
  return [String(id), String(version), `payload-${id}-${version}`.padEnd(32, '.')];
}

interface Target {
  readonly name: string;
  sinkUri(store: string): Promise<string>;
  baseline(store: string): Promise<BaselineWriter>;
}

async function* noRows(): AsyncGenerator<SnapshotRows> {}

async function driveSink(uri: string, phase: Phase, rows: number): Promise<number> {
  const sink = await createSink(uri, { changefeedId: 'bench' });
  try {
    if ((await sink.open()) !== null) throw new Error(`${uri}: store not fresh`);
    let lsn = 0x1000n;
    await sink.writeSnapshot([ITEMS], noRows(), { position: Lsn.fromBigInt(lsn).toString(), epoch: 0 });
    const t0 = performance.now();
    const builder = new EpochBuilder();
    let epoch = 0;
    for (let k = 0; k < rows;) {
      builder.beginTransaction();
      for (const end = Math.min(rows, k + TXN_ROWS); k < end; k++) {
        const row = changeRow(phase, k);
        if (phase === 'inserts') builder.insert(ITEMS, row);
        else builder.update(ITEMS, row, null, false);
      }
      lsn += 0x100n;
      builder.commitTransaction(Lsn.fromBigInt(lsn), Date.now());
      if (builder.changes >= EPOCH_ROWS || k >= rows) await sink.commitEpoch(builder.cut(++epoch)!);
    }
    return performance.now() - t0;
  } finally {
    await sink.close();
  }
}

async function driveBaseline(w: BaselineWriter, phase: Phase, rows: number): Promise<number> {
  try {
    const t0 = performance.now();
    for (let k = 0; k < rows;) {
      const batch: Row[] = [];
      for (const end = Math.min(rows, k + TXN_ROWS); k < end; k++) batch.push(changeRow(phase, k));
      await w.write(batch, { upsert: phase === 'updates' });
    }
    return performance.now() - t0;
  } finally {
    await w.close();
  }
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const rows = Math.max(HOT_KEYS, options.rows ?? DEFAULT_ROWS);
  const notes = [
    `${rows.toLocaleString('en-US')} inserts, then ${rows.toLocaleString('en-US')} updates over ${HOT_KEYS.toLocaleString('en-US')} hot keys, per sink` +
      (options.rows === null
        ? ' (scaled down from 1,000,000 to keep the run under ~5 min on 2 cores; --rows 1000000 for the full size)'
        : ' (--rows)'),
    `tidemark: source transactions of ${TXN_ROWS} rows into EpochBuilder, an epoch cut every ${EPOCH_ROWS.toLocaleString('en-US')} changes (runtime default maxRows), commitEpoch awaited before the next is built; time includes building`,
    `baseline: one batched statement / transaction per ${TXN_ROWS}-row source transaction, same client library, autocommit, no checkpoint; file baseline fsyncs every ${EPOCH_ROWS.toLocaleString('en-US')} rows; nats baseline publishes each row and awaits the acks of each batch`,
  ];
  const tmp = mkdtempSync(join(tmpdir(), 'tidemark-bench-sinks-'));
  const stops: (() => Promise<void>)[] = [];
  const figures: BenchFigure[] = [];
  try {
    const targets = await startTargets(tmp, stops, notes, options);
    for (const t of targets) {
      for (const phase of ['inserts', 'updates'] as const) {
        options.log(`${t.name} ${phase}: tidemark`);
        const tmMs = await driveSink(await t.sinkUri(`tm_${phase}`), phase, rows);
        options.log(`${t.name} ${phase}: tidemark ${Math.round(tmMs)} ms; baseline`);
        const baseMs = await driveBaseline(await t.baseline(`base_${phase}`), phase, rows);
        options.log(`${t.name} ${phase}: baseline ${Math.round(baseMs)} ms`);
        figures.push({
          metric: `${t.name} ${phase}`,
          unit: 'rows/s',
          tidemark: (rows * 1000) / tmMs,
          baseline: (rows * 1000) / baseMs,
          baselineName: 'batched write loop',
          higherIsBetter: true,
        });
      }
    }
    return { name: 'sinks', figures, notes };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function startTargets(
  tmp: string,
  stops: (() => Promise<void>)[],
  notes: string[],
  options: BenchOptions,
): Promise<Target[]> {
  const cluster: PgCluster = await startBenchCluster();
  stops.push(() => cluster.stop());
  const targets: Target[] = [
    {
      name: 'postgres',
      sinkUri: (store) => createDatabase(cluster, store),
      baseline: async (store) => postgresBaseline(await createDatabase(cluster, store)),
    },
    {
      name: 'sqlite',
      sinkUri: async (store) => `sqlite://${join(tmp, `${store}.db`)}`,
      baseline: (store) => sqliteBaseline(join(tmp, `${store}.db`)),
    },
    {
      name: 'file',
      sinkUri: async (store) => {
        mkdirSync(join(tmp, store));
        return `file://${join(tmp, store)}?format=jsonl`;
      },
      baseline: (store) => fileBaseline(join(tmp, `${store}.jsonl`), EPOCH_ROWS),
    },
  ];
  let maria: MariaDb | null = null;
  try {
    if (mariaDbInstalled()) maria = await startMariaDb({ port: await freePort(55450), bufferPoolMb: 256 });
    else notes.push('mysql skipped: mariadbd is not installed (apt-get install mariadb-server)');
  } catch (err) {
    notes.push(`mysql skipped: MariaDB did not start (${err instanceof Error ? err.message : String(err)})`);
  }
  if (maria) {
    const m = maria;
    stops.push(() => m.stop());
    targets.push({
      name: 'mysql (MariaDB)',
      sinkUri: (store) => m.createDatabase(store),
      baseline: async (store) => mysqlBaseline(await m.createDatabase(store)),
    });
  } else if (!notes.some((n) => n.startsWith('mysql skipped'))) {
    notes.push('mysql skipped: mariadbd is not installed');
  }
  let nats: NatsServer | null = null;
  try {
    nats = await startNats({ port: await freePort(55470) });
  } catch (err) {
    notes.push(
      `nats skipped: nats-server did not start (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  if (nats) {
    const n = nats;
    stops.push(() => n.stop());
    targets.push({
      name: 'nats',
      sinkUri: async (store) => n.url(store),
      baseline: (store) => natsBaseline({ port: n.port, user: n.user, pass: n.password, stream: store }),
    });
  }
  options.log(`targets: ${targets.map((t) => t.name).join(', ')}`);
  return targets;
}
