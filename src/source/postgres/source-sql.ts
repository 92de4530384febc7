/**
 * The connector's one ordinary (non-replication) connection to the source: catalog reads,
 * publication changes, heartbeats, slot status. Queries run one after another (node-postgres
 * queues concurrent queries with a deprecation warning, and pg 9 refuses them); the connection is
 * opened on first use and reopened after it broke. Errors are wrapped once, here.
 */
import type pg from 'pg';
import { wrapPgError } from './pg-errors.ts';
import { connectSourceClient } from './session-settings.ts';

export class SourceSql {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly url: string) {}

  /** Runs one statement after every earlier one; `action` names it in errors. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
    action = 'querying the catalog',
  ): Promise<pg.QueryResult<R>> {
    const run = this.queue.then(async () => {
      const c = await this.connection();
      try {
        return await c.query<R>(text, values);
      } catch (err) {
        if (isConnectionError(err)) await this.drop();
        throw wrapPgError(err, { role: 'source', uri: this.url, action });
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Runs `fn` with the connection to itself (several statements, a transaction): nothing else runs
   * on it meanwhile.
   */
  exclusive<T>(fn: (c: pg.Client) => Promise<T>, action: string): Promise<T> {
    const run = this.queue.then(async () => {
      const c = await this.connection();
      try {
        return await fn(c);
      } catch (err) {
        if (isConnectionError(err)) await this.drop();
        throw wrapPgError(err, { role: 'source', uri: this.url, action });
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    await this.drop();
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    if (this.closed)
      throw wrapPgError(new Error('Connection terminated: the connector is closed'), { role: 'source' });
    this.connecting ??= (async () => {
      const c = await connectSourceClient(this.url, { application_name: 'tidemark' }, 'connecting');
      c.on('error', () => {
        // Surfaced by the next query, which reconnects.
        if (this.client === c) this.client = null;
      });
      this.client = c;
      return c;
    })().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async drop(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  const msg = (err as { message?: string })?.message ?? '';
  return /^(ECONN|EPIPE|ETIMEDOUT|57P0|08)/.test(code) || /Connection terminated|not queryable/i.test(msg);
}
