import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { ListenAddress } from '../../api/listen-address.ts';
import { wrapPgError } from '../../source/postgres/pg-errors.ts';
import { defineChangefeed } from '../../runtime/changefeed-config.ts';
import { LiveStatus, type ChangefeedStatus } from '../../runtime/changefeed-status.ts';
import { createLogger, type LogFormat } from '../../runtime/logger.ts';
import { runServer } from '../../server/run-server.ts';
import type { CliContext } from '../cli-context.ts';
import { startDemoPostgres } from './demo-postgres.ts';
import { DEMO_TABLES, DEMO_VIEW, setUpDemoSchema, viewCheckQuery } from './demo-schema.ts';
import { startWorkload } from './workload.ts';

/**
 * `tidemark demo`:
 *
 *   embedded PostgreSQL ─┬─ app      ◄── workload (orders, items, transfers; ~300 changes/s)
 *   (dataDir/pg)         │    │
 *                        │    └── changefeed "demo" (4 tables + view revenue_by_status)
 *                        │              │ run by the server (dashboard, API, /metrics)
 *                        └─ replica ◄───┘   (or dataDir/replica.db)
 *
 * Prints the dashboard's link and a `psql` line showing the view equal to its tables at one
 * position. Ctrl-C stops the workload, then the server and its changefeed (gracefully), then
 * PostgreSQL. Exit 1 if the changefeed failed.
 */
export interface DemoOptions {
  sink: 'postgres' | 'sqlite';
  /** Absolute; PostgreSQL's data goes in `pg/` under it, the SQLite replica in `replica.db`. */
  dataDir: string;
  port: number;
  /** The dashboard and API. */
  addr: ListenAddress;
  changesPerSec: number;
  seed: number;
  logFormat?: LogFormat;
}

export async function runDemo(opts: DemoOptions, ctx: CliContext): Promise<number> {
  // Filled once the server runs; the status lines come from its changefeed manager.
  let statuses: () => ChangefeedStatus[] = () => [];
  const live = new LiveStatus({ out: ctx.stdout, poll: () => statuses() });
  const logger = createLogger({
    stream: live.interleave(ctx.stderr),
    ...(opts.logFormat ? { format: opts.logFormat } : {}),
  });
  mkdirSync(opts.dataDir, { recursive: true });
  const pgServer = await startDemoPostgres({ dataDir: join(opts.dataDir, 'pg'), port: opts.port, logger });
  let workload: ReturnType<typeof startWorkload> | undefined;
  try {
    await prepareDatabases(pgServer.url('postgres'), pgServer.url('app'));
    workload = startWorkload({
      url: pgServer.url('app'),
      changesPerSec: opts.changesPerSec,
      seed: opts.seed,
      logger,
    });
    const stop = new AbortController();
    ctx.shutdown.addEventListener('abort', () => stop.abort(), { once: true });
    workload.done.catch((err: unknown) => {
      logger.error('demo workload failed', { error: err });
      stop.abort();
    });
    const replicaFile = join(opts.dataDir, 'replica.db');
    const sink =
      opts.sink === 'sqlite' ? `sqlite://${pathToFileURL(replicaFile).pathname}` : pgServer.url('replica');
    // One changefeed (and slot) per sink kind: each sink's checkpoint must match its own slot.
    const id = opts.sink === 'sqlite' ? 'demo-sqlite' : 'demo';
    const cfg = defineChangefeed({
      id,
      source: pgServer.url('app'),
      sink,
      tables: [...DEMO_TABLES],
      views: [DEMO_VIEW],
    });
    const server = await runServer({
      address: opts.addr,
      dataDir: join(opts.dataDir, 'server'),
      logger,
      seed: [cfg],
    });
    try {
      const check = viewCheckQuery(id, opts.sink);
      const see =
        opts.sink === 'sqlite'
          ? `sqlite3 -header -column '${replicaFile}' "${check}"`
          : `psql "${pgServer.url('replica')}" -c "${check}"`;
      ctx.stdout.write(
        [
          '',
          `Tidemark demo: a live workload on ${pgServer.url('app').replace(/\/\/[^@]*@/, '//')} is replicated to ${opts.sink === 'sqlite' ? replicaFile : 'the database "replica"'}.`,
          `  dashboard: ${server.url}/#token=${server.token ?? ''}`,
          `  The view ${DEMO_VIEW.name} is committed in the same transaction as the tables it reads, so it`,
          '  always equals the same query over the replicated rows, at one source position. See it:',
          '',
          `    ${see}`,
          '',
          'Ctrl-C stops everything; running it again resumes from the checkpoint.',
          '',
          '',
        ].join('\n'),
      );
      statuses = () => server.manager.list().map((v) => v.status);
      live.start();
      logger.info('demo running: press Ctrl-C to stop', { sink: cfg.sink, dashboard: server.url });
      await new Promise<void>((resolve) => {
        if (stop.signal.aborted) resolve();
        stop.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      live.stop();
      return server.manager.list().some((v) => v.state === 'failed') ? 1 : 0;
    } finally {
      await server.close();
    }
  } finally {
    await workload?.stop();
    if (workload) logger.info('demo workload stopped', { ...workload.stats() });
    await pgServer.stop();
    logger.info('demo PostgreSQL stopped');
  }
}

async function prepareDatabases(adminUrl: string, appUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
    for (const db of ['app', 'replica']) {
      const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db]);
      if (rowCount === 0) await admin.query(`CREATE DATABASE ${db}`);
    }
  } catch (err) {
    throw wrapPgError(err, { role: 'source', uri: adminUrl, action: 'creating the demo databases' });
  } finally {
    await admin.end().catch(() => {});
  }
  const app = new pg.Client({ connectionString: appUrl });
  try {
    await app.connect();
    await setUpDemoSchema(app);
  } catch (err) {
    throw wrapPgError(err, { role: 'source', uri: appUrl, action: 'creating the demo schema' });
  } finally {
    await app.end().catch(() => {});
  }
}
