import type { Socket } from 'node:net';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { maskUri } from '../../errors/mask.ts';
import { Lsn } from './lsn.ts';
import { wrapPgError } from './pg-errors.ts';
import { demandsTls, openPgSocket, pgTlsPlan, type PgTlsPlan } from './pg-tls.ts';
import type { ReplicationEvent } from './pgoutput-messages.ts';
import { BackendFrameDecoder, type BackendFrame } from './wire/backend-frame-decoder.ts';
import { Backend, PgServerErrorResponse, parseParameterStatus } from './wire/backend-messages.ts';
import type { Finish, FrameHandler } from './wire/frame-handler.ts';
import { encodeQuery, encodeStartup, encodeTerminate } from './wire/frontend-messages.ts';
import { simpleQueryCollector, type QueryResult } from './wire/simple-query.ts';
import { startupHandshake } from './wire/startup-handshake.ts';
import { ReplicationStream, type ReplicationStreamStats } from './wire/replication-stream.ts';

/**
 * Our own client for PostgreSQL's replication protocol (node-postgres stays in use for plain SQL
 * connections elsewhere). It speaks TLS as libpq's sslmode says (pg-tls.ts), the startup
 * handshake (trust, cleartext, md5, SCRAM-SHA-256),
 * the simple query protocol, and the CopyBoth stream of START_REPLICATION with back-pressure:
 *
 *   connect() ─► identifySystem() / createLogicalSlot() / query()* ─► startReplication() ─► close()
 *
 * One request at a time (calls queue behind each other). Once streaming starts the connection
 * belongs to the stream; when the stream ends, the connection is closed. Server errors become
 * TidemarkErrors through wrapPgError (role `source`): wrong password AUTH_FAILED, missing database
 * DATABASE_NOT_FOUND, refused port CONNECT_REFUSED, slot active elsewhere SOURCE_SLOT_IN_USE.
 */
export class ReplicationConnection {
  private readonly decoder = new BackendFrameDecoder();
  private readonly frames: BackendFrame[] = [];
  private handler: FrameHandler | null = null;
  private stream: ReplicationStream | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closing = false;
  private closed: Promise<void>;
  /** ParameterStatus values reported by the server (server_version, client_encoding, …). */
  readonly parameters = new Map<string, string>();

  private constructor(
    private readonly socket: Socket,
    private readonly url: string,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      const detail = `connection to ${maskUri(url)} failed while streaming`;
      this.fail(
        this.stream
          ? new TidemarkError('SOURCE_STREAM_ENDED', { detail, cause: err })
          : wrapPgError(err, { role: 'source', uri: url }),
      );
    });
    socket.on('close', () => {
      if (!this.closing) {
        const err = new TidemarkError('SOURCE_STREAM_ENDED', {
          detail: `the server closed the connection (${maskUri(url)})`,
        });
        this.fail(err);
        // Also a stream whose START_REPLICATION was still queued when the socket went away.
        this.stream?.end(err);
      }
      this.handler = null;
    });
  }

  /**
   * Opens the connection (TLS as the URI's sslmode says: see pg-tls.ts) and authenticates;
   * resolves when the server is ready for queries.
   */
  static async connect(opts: {
    url: string;
    applicationName: string;
    sessionSettings?: Record<string, string>;
    connectTimeoutMs?: number;
  }): Promise<ReplicationConnection> {
    const plan = pgTlsPlan(opts.url);
    try {
      return await ReplicationConnection.connectOnce(opts, plan, undefined);
    } catch (err) {
      // libpq's `allow`: plain first, TLS when the server refuses an unencrypted connection.
      if (plan.mode === 'allow' && (err as TidemarkError).code === 'TLS_REQUIRED_BY_SERVER')
        return ReplicationConnection.connectOnce(opts, plan, true);
      throw err;
    }
  }

  private static async connectOnce(
    opts: Parameters<typeof ReplicationConnection.connect>[0],
    plan: PgTlsPlan,
    forceTls: boolean | undefined,
  ): Promise<ReplicationConnection> {
    const target = parseTarget(opts.url);
    const timeoutMs = opts.connectTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    let conn: ReplicationConnection | undefined;
    let pending: Socket | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new TidemarkError('CONNECT_REFUSED', {
          detail: `${maskUri(opts.url)}: no answer within ${timeoutMs} ms`,
        });
        conn?.fail(err);
        pending?.destroy();
        reject(err);
      }, timeoutMs);
    });
    try {
      const opened = openPgSocket({
        host: target.host,
        port: target.port,
        plan,
        uri: opts.url,
        ...(forceTls === undefined ? {} : { tls: forceTls }),
      });
      const { socket, encrypted } = await Promise.race([opened, timedOut]);
      pending = socket;
      conn = new ReplicationConnection(socket, opts.url);
      const c = conn;
      await Promise.race([
        c.request('connecting', (finish) => {
          const startup: Record<string, string> = {
            user: target.user,
            database: target.database,
            replication: 'database',
            application_name: opts.applicationName,
            client_encoding: 'UTF8',
          };
          const settings = Object.entries(opts.sessionSettings ?? {});
          if (settings.length > 0)
            startup['options'] = settings.map(([k, v]) => `-c ${escapeOption(`${k}=${v}`)}`).join(' ');
          socket.write(encodeStartup(startup));
          return startupHandshake({
            write: (b) => socket.write(b),
            user: target.user,
            password: target.password,
            // Never a cleartext password over a plain connection when sslmode demands TLS.
            cleartextAllowed: encrypted || !demandsTls(plan.mode),
            finish,
          });
        }),
        timedOut,
      ]);
      return c;
    } catch (err) {
      pending?.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
      timedOut.catch(() => {});
    }
  }

  /** IDENTIFY_SYSTEM. May be called any time before startReplication. */
  async identifySystem(): Promise<{ systemId: string; timeline: number; xlogPos: Lsn; dbName: string }> {
    const { rows } = await this.query('IDENTIFY_SYSTEM');
    const row = rows[0];
    if (!row || row.length < 4)
      throw new TidemarkError('SOURCE_PROTOCOL', { detail: 'IDENTIFY_SYSTEM returned no row' });
    return {
      systemId: row[0] ?? '',
      timeline: Number(row[1]),
      xlogPos: Lsn.parse(row[2] ?? ''),
      dbName: row[3] ?? '',
    };
  }

  /**
   * Runs one statement with the simple query protocol: replication commands, and plain SQL (the
   * connection is opened with replication=database). Values come back in text form.
   * May be called any time before startReplication; calls run one after another.
   */
  query(sql: string): Promise<QueryResult> {
    return this.request(`running ${sql.slice(0, 60)}`, (finish) => {
      this.socket.write(encodeQuery(sql));
      return simpleQueryCollector(finish);
    });
  }

  /**
   * CREATE_REPLICATION_SLOT … LOGICAL pgoutput. With `snapshot: 'export'` the returned snapshot
   * name can be imported (SET TRANSACTION SNAPSHOT) by other connections until this connection
   * runs its next command; `use` requires an open REPEATABLE READ transaction on this connection.
   */
  async createLogicalSlot(opts: {
    slotName: string;
    plugin?: 'pgoutput';
    snapshot: 'export' | 'nothing' | 'use';
    temporary?: boolean;
  }): Promise<{ slotName: string; consistentPoint: Lsn; snapshotName: string | null }> {
    const snapshot = { export: 'EXPORT_SNAPSHOT', nothing: 'NOEXPORT_SNAPSHOT', use: 'USE_SNAPSHOT' }[
      opts.snapshot
    ];
    const temp = opts.temporary ? ' TEMPORARY' : '';
    const sql = `CREATE_REPLICATION_SLOT ${quoteIdent(opts.slotName)}${temp} LOGICAL ${opts.plugin ?? 'pgoutput'} ${snapshot}`;
    const { rows } = await this.query(sql);
    const row = rows[0];
    if (!row)
      throw new TidemarkError('SOURCE_PROTOCOL', { detail: 'CREATE_REPLICATION_SLOT returned no row' });
    return {
      slotName: row[0] ?? opts.slotName,
      consistentPoint: Lsn.parse(row[1] ?? ''),
      snapshotName: row[2] ?? null,
    };
  }

  /**
   * START_REPLICATION with pgoutput protocol version 1. Returns at once; the iterable yields
   * batches of events in stream order (each batch is what arrived since the last pull, bounded by
   * `maxBufferedBytes`, default 16 MiB). Server errors (e.g. SOURCE_SLOT_IN_USE) are thrown from the
   * first pull. The iterable ends cleanly only after close() (or the consumer's `break`, which
   * closes the connection); the server ending the stream throws SOURCE_STREAM_ENDED.
   */
  startReplication(opts: {
    slotName: string;
    startLsn: Lsn;
    publicationNames: string[];
    messages?: boolean;
    statusIntervalMs?: number;
    maxBufferedBytes?: number;
  }): AsyncIterable<ReplicationEvent[]> {
    if (this.stream || this.closing) {
      throw new TidemarkError('INTERNAL', { detail: 'startReplication called twice or after close()' });
    }
    const stream = new ReplicationStream({
      write: (bytes) => {
        if (!this.socket.destroyed) this.socket.write(bytes);
      },
      pause: () => this.socket.pause(),
      resume: () => this.socket.resume(),
      onFinished: () => void this.close(),
      statusIntervalMs: opts.statusIntervalMs ?? 10_000,
      maxBufferedBytes: opts.maxBufferedBytes ?? 16 * 1024 * 1024,
      url: this.url,
    });
    this.stream = stream;
    const publications = opts.publicationNames.map(quoteIdent).join(',');
    const options = [
      `proto_version '1'`,
      `publication_names ${quoteLiteral(publications)}`,
      ...(opts.messages ? [`messages 'true'`] : []),
    ];
    const sql = `START_REPLICATION SLOT ${quoteIdent(opts.slotName)} LOGICAL ${opts.startLsn.toString()} (${options.join(', ')})`;
    // Queued behind earlier requests; from then on every frame belongs to the stream.
    this.queue = this.queue.then(() => {
      if (this.closing) return;
      if (this.socket.destroyed) {
        stream.end(
          new TidemarkError('SOURCE_STREAM_ENDED', { detail: 'the connection closed before streaming' }),
        );
        return;
      }
      this.handler = { onFrame: (f) => stream.onFrame(f), onError: (e) => stream.end(e) };
      this.socket.write(encodeQuery(sql));
    });
    return stream;
  }

  /**
   * Records that everything up to `lsn` is durable downstream. Reported to the server as the
   * write/flush/apply position (never a value beyond one given here), soon after and then every
   * `statusIntervalMs`. Positions never move back; a smaller value is ignored.
   */
  setFlushed(lsn: Lsn): void {
    if (!this.stream) throw new TidemarkError('INTERNAL', { detail: 'setFlushed before startReplication' });
    this.stream.setFlushed(lsn);
  }

  /** Buffered bytes and pauses of the running stream (for metrics), or null before startReplication. */
  streamStats(): (ReplicationStreamStats & { partialFrameBytes: number }) | null {
    return this.stream ? { ...this.stream.stats(), partialFrameBytes: this.decoder.pendingBytes } : null;
  }

  /** Ends the session (Terminate) and the stream, if any; resolves when the socket is closed. */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.stream?.end(null);
      this.handler?.onError(
        new TidemarkError('SOURCE_STREAM_ENDED', { detail: 'the connection was closed' }),
      );
      this.handler = null;
      // Terminate, then drop whatever the server still sends rather than reading a backlog.
      if (!this.socket.destroyed) this.socket.end(encodeTerminate(), () => this.socket.destroy());
    }
    await this.closed;
  }

  private onData(chunk: Buffer): void {
    const frames = this.frames;
    try {
      this.decoder.push(chunk, frames);
      for (let i = 0; i < frames.length; i++) {
        const frame = frames[i]!;
        if (frame.type === Backend.parameterStatus) {
          const p = parseParameterStatus(frame.payload);
          this.parameters.set(p.name, p.value);
        } else if (frame.type === Backend.noticeResponse) {
          // Notices (e.g. "skipping") carry nothing we act on.
        } else if (this.handler) {
          this.handler.onFrame(frame);
        } else {
          throw new TidemarkError('SOURCE_PROTOCOL', {
            detail: `unexpected message 0x${frame.type.toString(16)}`,
          });
        }
      }
    } catch (err) {
      this.fail(wrapPgError(err, { role: 'source', uri: this.url }));
      this.socket.destroy();
    } finally {
      frames.length = 0;
    }
  }

  private fail(err: TidemarkError): void {
    const h = this.handler;
    this.handler = null;
    h?.onError(err);
  }

  /** Runs one request/response exchange after the ones before it. */
  private request<T>(action: string, start: (finish: Finish<T>) => FrameHandler): Promise<T> {
    if (this.stream) {
      return Promise.reject(new TidemarkError('INTERNAL', { detail: `${action} after startReplication` }));
    }
    const run = () =>
      new Promise<T>((resolve, reject) => {
        if (this.closing || this.socket.destroyed) {
          reject(new TidemarkError('SOURCE_STREAM_ENDED', { detail: `${action} on a closed connection` }));
          return;
        }
        const finish: Finish<T> = (err, value) => {
          this.handler = null;
          if (err)
            reject(
              err instanceof PgServerErrorResponse
                ? wrapPgError(err, { role: 'source', uri: this.url, action })
                : err,
            );
          else resolve(value as T);
        };
        this.handler = start(finish);
      });
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }
}

interface Target {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

function parseTarget(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `not a connection URI: ${maskUri(url)}`,
      cause: err,
    });
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new TidemarkError('CONFIG_INVALID', { detail: `${maskUri(url)} is not a postgres:// URI` });
  }
  const user = decodeURIComponent(u.username) || 'postgres';
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 5432,
    user,
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)) || user,
  };
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** Startup `options` are split on spaces; a backslash escapes a space or a backslash. */
function escapeOption(text: string): string {
  return text.replace(/[\\ ]/g, (c) => `\\${c}`);
}
