import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { wrapPgError } from '../../source/postgres/pg-errors.ts';
import { defineChangefeed } from '../../runtime/changefeed-config.ts';
import { LiveStatus } from '../../runtime/changefeed-status.ts';
import { createLogger } from '../../runtime/logger.ts';
import type { CliContext } from '../cli-context.ts';
import { runChangefeeds } from '../commands/start.ts';
import { startDemoPostgres } from './demo-postgres.ts';
import { DEMO_TABLES, setUpDemoSchema } from './demo-schema.ts';
import { startWorkload } from './workload.ts';

/**
 * `tidemark demo`:
 *
 *   embedded PostgreSQL ─┬─ app      ◄── workload (orders, items, transfers; ~300 changes/s)
 *   (dataDir/pg)         │    │
 *                        │    └── changefeed "demo" (4 tables) ──► replica  (or dataDir/replica.db)
 *
 * Ctrl-C stops the workload, then the changefeed (gracefully), then PostgreSQL.
 */
export interface DemoOptions {
  sink: 'postgres' | 'sqlite';
  /** Absolute; PostgreSQL's data goes in `pg/` under it, the SQLite replica in `replica.db`. */
  dataDir: string;
  port: number;
  changesPerSec: number;
  seed: number;
}

export async function runDemo(opts: DemoOptions, ctx: CliContext): Promise<number> {
  const live = new LiveStatus({ out: ctx.stdout });
  const logger = createLogger({ stream: live.interleave(ctx.stderr) });
  mkdirSync(opts.dataDir, { recursive: true });
  const server = await startDemoPostgres({ dataDir: join(opts.dataDir, 'pg'), port: opts.port, logger });
  let workload: ReturnType<typeof startWorkload> | undefined;
  try {
    await prepareDatabases(server.url('postgres'), server.url('app'));
    const runtime = await ctx.loadRuntime();
    workload = startWorkload({
      url: server.url('app'),
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
    const sink =
      opts.sink === 'sqlite'
        ? `sqlite://${pathToFileURL(join(opts.dataDir, 'replica.db')).pathname}`
        : server.url('replica');
    // One changefeed (and slot) per sink kind: each sink's checkpoint must match its own slot.
    const id = opts.sink === 'sqlite' ? 'demo-sqlite' : 'demo';
    const cfg = defineChangefeed({ id, source: server.url('app'), sink, tables: [...DEMO_TABLES] });
    logger.info('demo running: press Ctrl-C to stop', { sink: cfg.sink });
    return await runChangefeeds([cfg], {
      runtime,
      logger,
      live,
      shutdown: stop.signal,
      stderr: ctx.stderr,
      dataDir: opts.dataDir,
    });
  } finally {
    await workload?.stop();
    if (workload) logger.info('demo workload stopped', { ...workload.stats() });
    await server.stop();
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
