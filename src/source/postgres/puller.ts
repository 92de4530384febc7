/**
 * The puller of one source database: one replication slot and one pgoutput decode shared by
 * every changefeed on that database, appending to the local change log; each changefeed reads
 * the log through its own PullerReader, at its own pace.
 *
 *   slot tidemark_src_<hash> ─► pgoutput ─► ChangeLog (LMDB, commit order) ─┬─► reader a.stream(after Ca)
 *   publication = ∪ readers' tables                                        ├─► reader b.stream(after Cb)
 *        ▲                                                                  └─► …
 *        └──── slot flushed to min(Ca, Cb, …) ◄── reader.acknowledge(C) ──── log.clean(min)
 *
 * The slot is only ever flushed to the slowest reader's acknowledged checkpoint (registered
 * readers that are paused count too), so losing the local log costs a re-read from there, never
 * data. Connection loss is retried with backoff; readers keep reading what the log holds.
 * A heartbeat (`pg_logical_emit_message`) is written when the source has been quiet for
 * `heartbeatIntervalMs`, so every reader's resolved position advances on an idle source.
 */
import { mkdirSync } from 'node:fs';
import type pg from 'pg';
import { quoteTable, qualifiedName } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { ChangeLog, type ChangeLogOptions } from '../../log/change-log.ts';
import { DEFAULT_READER_QUOTA_BYTES } from '../../log/change-log-reader.ts';
import { backoffMs } from '../../runtime/backoff.ts';
import { Lsn } from './lsn.ts';
import { wrapPgError } from './pg-errors.ts';
import { connectPgClient } from './pg-tls.ts';
import type { ReplicationEvent } from './pgoutput-messages.ts';
import { pullerObjectName } from './puller-names.ts';
import { PullerReader, type PullerReaderHost } from './puller-reader.ts';
import { PullerSchemas } from './puller-schemas.ts';
import { ReplicationConnection } from './replication-connection.ts';
import { SESSION_SETTINGS, sessionOptions } from './session-settings.ts';
import { startHeartbeat } from './heartbeat.ts';

export interface PullerOptions {
  /** Source database URI (credentials are never shown). */
  readonly url: string;
  /** Directory of this database's change log; created when missing. */
  readonly logDir: string;
  readonly heartbeatIntervalMs: number;
  /** Default `memoryQuotaBytes` of readers that give none. */
  readonly readerMemoryQuotaBytes?: number;
  readonly logOptions?: Pick<ChangeLogOptions, 'writeBatchBytes' | 'maxDiskBytes' | 'fsync'>;
  /** Every error the pump meets, retried or not (logs, metrics); must not throw. */
  readonly onError?: (e: TidemarkError, info: { retrying: boolean }) => void;
}

export interface AddReaderOptions {
  /** The changefeed id; its acknowledged position is kept in the log under it. */
  readonly id: string;
  readonly tables: readonly { schema: string; name: string }[];
  /** The changefeed's checkpoint (its sink's): held in the log until it acknowledges more. */
  readonly checkpoint: Lsn;
  readonly memoryQuotaBytes?: number;
}

export interface PullerStats {
  /** Replication messages received from the source since start (keepalives excluded). */
  readonly messagesFromSource: number;
  /** The log's last complete transaction. */
  readonly logCommitted: Lsn | null;
  /** The log holds every transaction after this position. */
  readonly logCoveredFrom: Lsn | null;
  readonly logDiskBytes: number;
  /** What the slot was last told it may release (the slowest reader). */
  readonly slotFlushed: Lsn | null;
  readonly readers: number;
  /** True when the log was missing and rebuilt by re-reading the slot from its confirmed position. */
  readonly logRecreated: boolean;
  /** START_REPLICATION commands sent (1 + reconnects), and the position the last one resumed after. */
  readonly replicationStarts: number;
  readonly lastReplicationStart: Lsn | null;
}

export class Puller implements PullerReaderHost {
  readonly slotName: string;
  readonly publicationName: string;
  readonly log: ChangeLog;
  /** Resolves when stopped; rejects with the error that stopped the pump for good. */
  readonly done: Promise<void>;
  walEnd: Lsn | null = null;
  failure: Error | null = null;
  private readonly readers = new Map<string, PullerReader>();
  private repl: ReplicationConnection | null = null;
  private streaming = false;
  private flushed: Lsn | null = null;
  private stopping = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastActivityMs = Date.now();
  private messages = 0;
  private starts = 0;
  private publishing: Promise<void> = Promise.resolve();
  private lastStart: Lsn | null = null;
  private wakeStop: () => void = () => {};

  private constructor(
    private readonly options: PullerOptions,
    private readonly client: pg.Client,
    log: ChangeLog,
    private readonly logRecreated: boolean,
  ) {
    this.slotName = pullerObjectName(options.url);
    this.publicationName = this.slotName;
    this.log = log;
    this.done = this.run();
    this.done.catch(() => {});
  }

  /**
   * Checks the source, makes the publication and the slot when missing, opens the log and
   * starts pulling. A new slot starts the log at its consistent point; an existing slot resumes
   * after the log's last complete transaction (or, if the log was lost, at the slot's
   * confirmed position). Throws SOURCE_SLOT_LOST / SOURCE_SLOT_AHEAD when the log cannot be
   * continued without a gap.
   */
  static async start(options: PullerOptions): Promise<Puller> {
    const name = pullerObjectName(options.url);
    const client = await connectPgClient(
      options.url,
      { options: sessionOptions() },
      { role: 'source', action: 'connecting' },
    );
    client.on('error', () => {}); // surfaced by the next query
    const q = async <R extends pg.QueryResultRow>(sql: string, values: unknown[], action: string) => {
      try {
        return await client.query<R>(sql, values);
      } catch (err) {
        throw wrapPgError(err, { role: 'source', uri: options.url, action });
      }
    };
    let log: ChangeLog | null = null;
    try {
      const { rows: wal } = await q<{ w: string }>(
        `SELECT current_setting('wal_level') AS w`,
        [],
        'checking wal_level',
      );
      if (wal[0]?.w !== 'logical')
        throw new TidemarkError('SOURCE_WAL_LEVEL', { detail: `wal_level is '${wal[0]?.w}'` });
      const { rows: pubs } = await q(
        `SELECT 1 FROM pg_publication WHERE pubname = $1`,
        [name],
        'reading publications',
      );
      if (pubs.length === 0) await q(`CREATE PUBLICATION "${name}"`, [], 'creating the publication');
      mkdirSync(options.logDir, { recursive: true });
      log = ChangeLog.open({ path: options.logDir, ...options.logOptions });
      const { rows: slots } = await q<{ confirmed: string | null; status: string | null }>(
        `SELECT confirmed_flush_lsn::text AS confirmed, wal_status AS status FROM pg_replication_slots WHERE slot_name = $1`,
        [name],
        'reading the slot',
      );
      const slot = slots[0];
      const resume = log.resumePosition();
      let recreated = false;
      if (!slot) {
        if (log.committed) {
          throw new TidemarkError('SOURCE_SLOT_LOST', {
            detail: `slot ${name} is missing but the change log at ${options.logDir} continues it from ${log.committed}`,
            hint: 'The slot was dropped behind our back: changes since are lost. Delete the log directory and reset the changefeeds on this source.',
          });
        }
        const conn = await ReplicationConnection.connect({
          url: options.url,
          applicationName: `tidemark:puller`,
        });
        try {
          const made = await conn.createLogicalSlot({ slotName: name, snapshot: 'nothing' });
          // Commits whose record starts exactly at the consistent point are streamed too (see
          // PostgresSource.createSnapshot), so the log covers everything after P − 1.
          log.startAt(Lsn.fromBigInt(made.consistentPoint.value - 1n));
        } finally {
          await conn.close();
        }
      } else {
        const confirmed = slot.confirmed ? Lsn.parse(slot.confirmed) : null;
        if (slot.status === 'lost' || !confirmed) {
          throw new TidemarkError('SOURCE_SLOT_LOST', {
            detail: `slot ${name} is invalidated (wal_status lost)`,
          });
        }
        if (resume === null) {
          recreated = true;
          log.startAt(confirmed);
        } else if (confirmed.minus(resume) > 1n) {
          // One byte ahead is the start: a new log covers after the consistent point − 1.
          throw new TidemarkError('SOURCE_SLOT_AHEAD', {
            detail: `slot ${name} confirmed ${confirmed} but the change log ends at ${resume}`,
          });
        }
      }
      return new Puller(options, client, log, recreated);
    } catch (err) {
      await log?.close();
      await client.end().catch(() => {});
      throw err;
    }
  }

  /**
   * Attaches a changefeed: its tables join the publication (changes committed from now on are
   * decoded), its checkpoint is registered so the log keeps what it still needs. Does not
   * disturb other readers. A reader with the same id replaces (closes) the previous one.
   */
  async addReader(opts: AddReaderOptions): Promise<PullerReader> {
    this.readers.get(opts.id)?.close();
    await this.publish(opts.tables);
    this.log.registerReader(opts.id, opts.checkpoint);
    const reader = new PullerReader(
      opts.id,
      opts.tables,
      this,
      opts.memoryQuotaBytes ?? this.options.readerMemoryQuotaBytes ?? DEFAULT_READER_QUOTA_BYTES,
    );
    this.readers.set(opts.id, reader);
    return reader;
  }

  /**
   * Where a changefeed about to take its snapshot registers first: the log's end. Registering
   * there keeps every later transaction in the log while the snapshot is read (its consistent
   * point, being later, is what the changefeed then reads after).
   */
  holdPosition(): Lsn {
    return this.log.committed ?? this.log.coveredFrom ?? Lsn.ZERO;
  }

  /**
   * Removes a changefeed for good: its stream ends and its position no longer holds back the
   * log or the slot. (To pause one, close its reader instead: its position stays registered.)
   */
  removeReader(id: string): void {
    this.readers.get(id)?.close();
    this.readers.delete(id);
    this.log.removeReader(id);
    this.advance();
  }

  /**
   * Moves reader `id`'s registered position back to `position` (its sink lost acknowledged
   * commits). Only valid while the log still covers `position`; nothing is cleaned meanwhile.
   */
  rewindReader(id: string, position: Lsn): void {
    this.log.removeReader(id);
    this.log.registerReader(id, position);
  }

  /** For PullerReader.acknowledge. */
  onAcknowledge(id: string, position: Lsn): void {
    this.log.acknowledge(id, position);
    this.advance();
  }

  stats(): PullerStats {
    return {
      messagesFromSource: this.messages,
      logCommitted: this.log.committed,
      logCoveredFrom: this.log.coveredFrom,
      logDiskBytes: this.log.diskBytes(),
      slotFlushed: this.flushed,
      readers: this.readers.size,
      logRecreated: this.logRecreated,
      replicationStarts: this.starts,
      lastReplicationStart: this.lastStart,
    };
  }

  /** WAL the source retains for the slot (current WAL − restart_lsn), in bytes; null without a slot. */
  async retainedWalBytes(): Promise<bigint | null> {
    const { rows } = await this.client
      .query<{ b: string | null }>(
        `SELECT (pg_current_wal_lsn() - restart_lsn)::text AS b FROM pg_replication_slots WHERE slot_name = $1`,
        [this.slotName],
      )
      .catch((err: unknown) => {
        throw wrapPgError(err, { role: 'source', uri: this.options.url, action: 'reading the slot' });
      });
    const b = rows[0]?.b;
    return b == null ? null : BigInt(b.split('.')[0]!);
  }

  /** Stops pulling, ends every reader's stream and closes the log. Idempotent. */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.wakeStop();
      for (const r of this.readers.values()) r.close();
      if (this.heartbeat) clearInterval(this.heartbeat);
      await this.repl?.close().catch(() => {});
    }
    await this.done.catch(() => {});
    await this.log.close();
    await this.client.end().catch(() => {});
  }

  private advance(): void {
    const min = this.log.minAcknowledged();
    if (!min || (this.flushed && min.compare(this.flushed) <= 0)) return;
    this.flushed = min;
    if (this.streaming) this.repl?.setFlushed(min);
    this.log.clean(min);
  }

  /** Adds tables to the shared publication; one at a time, so concurrent readers never race. */
  private publish(tables: readonly { schema: string; name: string }[]): Promise<void> {
    const next = this.publishing.then(() => this.publishNow(tables));
    this.publishing = next.catch(() => {});
    return next;
  }

  private async publishNow(tables: readonly { schema: string; name: string }[]): Promise<void> {
    const { rows } = await this.client
      .query<{ t: string }>(
        `SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1`,
        [this.publicationName],
      )
      .catch((err: unknown) => {
        throw wrapPgError(err, { role: 'source', uri: this.options.url, action: 'reading the publication' });
      });
    const have = new Set(rows.map((r) => r.t));
    const missing = tables.filter((t) => !have.has(qualifiedName(t)));
    if (missing.length === 0) return;
    await this.client
      .query(`ALTER PUBLICATION "${this.publicationName}" ADD TABLE ${missing.map(quoteTable).join(', ')}`)
      .catch((err: unknown) => {
        throw wrapPgError(err, {
          role: 'source',
          uri: this.options.url,
          action: 'adding tables to the publication',
        });
      });
  }

  private async run(): Promise<void> {
    this.startHeartbeats();
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        await this.pump(() => (attempt = 0));
      } catch (err) {
        this.log.abort();
        const e =
          err instanceof TidemarkError
            ? err
            : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
        if (this.stopping) return;
        const retrying = e.retriable;
        this.options.onError?.(e, { retrying });
        if (!retrying) {
          this.failure = e;
          this.log.wakeReaders();
          throw e;
        }
        const stopped = new Promise<void>((r) => (this.wakeStop = r));
        await Promise.race([new Promise((r) => setTimeout(r, backoffMs(attempt))), stopped]);
      }
    }
  }

  /** One replication connection's lifetime: stream into the log until stopped or broken. */
  private async pump(onProgress: () => void): Promise<void> {
    const schemas = new PullerSchemas(() => Promise.resolve(this.client), this.options.url);
    const conn = await ReplicationConnection.connect({
      url: this.options.url,
      applicationName: 'tidemark:puller',
      sessionSettings: { ...SESSION_SETTINGS },
    });
    this.repl = conn;
    if (this.stopping) return conn.close();
    const start = this.log.resumePosition() ?? Lsn.ZERO;
    this.starts++;
    this.lastStart = start;
    const events = conn.startReplication({
      slotName: this.slotName,
      startLsn: start,
      publicationNames: [this.publicationName],
      messages: true,
    });
    this.streaming = true;
    if (this.flushed) conn.setFlushed(this.flushed);
    let skipping = false;
    try {
      for await (const batch of events) {
        onProgress();
        for (const ev of batch) {
          if (ev.tag === 'relation') {
            this.messages++;
            const table = await schemas.onRelation(ev);
            if (!skipping) this.log.append({ tag: 'relation', table });
          } else skipping = this.onEvent(ev, schemas, skipping);
        }
      }
    } catch (err) {
      throw await this.explain(err);
    } finally {
      this.streaming = false;
      this.repl = null;
      await conn.close().catch(() => {});
    }
    if (!this.stopping) throw new TidemarkError('SOURCE_STREAM_ENDED', { detail: `slot ${this.slotName}` });
  }

  /** Appends one event to the log; returns whether the rest of its transaction is skipped. */
  private onEvent(
    ev: Exclude<ReplicationEvent, { tag: 'relation' }>,
    schemas: PullerSchemas,
    skipping: boolean,
  ): boolean {
    if (ev.tag === 'keepalive') {
      if (!this.walEnd || ev.walEnd.compare(this.walEnd) > 0) this.walEnd = ev.walEnd;
      return skipping;
    }
    this.messages++;
    const log = this.log;
    switch (ev.tag) {
      case 'begin': {
        this.lastActivityMs = Date.now();
        const done = log.committed !== null && ev.finalLsn.compare(log.committed) <= 0;
        if (!done) log.begin(ev.finalLsn, ev.commitTimeMs);
        return done;
      }
      case 'commit':
        if (!skipping) log.commit(ev.commitTimeMs);
        return false;
      case 'insert':
        if (!skipping) log.append({ tag: 'insert', table: schemas.known(ev.relationId), row: ev.row });
        return skipping;
      case 'update':
        if (!skipping) {
          log.append({
            tag: 'update',
            table: schemas.known(ev.relationId),
            row: ev.row,
            old: ev.old as (string | null)[] | null,
            oldIsFull: ev.oldKind === 'full',
          });
        }
        return skipping;
      case 'delete':
        if (!skipping) log.append({ tag: 'delete', table: schemas.known(ev.relationId), old: ev.old });
        return skipping;
      case 'truncate':
        if (!skipping) log.append({ tag: 'truncate', tables: ev.relationIds.map((id) => schemas.known(id)) });
        return skipping;
      case 'origin':
      case 'type':
      case 'message':
        return skipping;
    }
  }

  /** A stream error, made precise when the cause is the slot itself (dropped or invalidated). */
  private async explain(err: unknown): Promise<TidemarkError> {
    const e =
      err instanceof TidemarkError ? err : wrapPgError(err, { role: 'source', uri: this.options.url });
    if (this.stopping || e.code === 'CHANGELOG_DISK_FULL' || e.code === 'CHANGELOG_CORRUPT') return e;
    const slot = await this.client
      .query<{ status: string | null }>(
        `SELECT wal_status AS status FROM pg_replication_slots WHERE slot_name = $1`,
        [this.slotName],
      )
      .catch(() => null);
    if (slot && (slot.rows.length === 0 || slot.rows[0]?.status === 'lost')) {
      return new TidemarkError('SOURCE_SLOT_LOST', {
        detail: `slot ${this.slotName} is ${slot.rows.length === 0 ? 'gone' : 'invalidated'}`,
        cause: err,
      });
    }
    return e;
  }

  private startHeartbeats(): void {
    this.heartbeat = startHeartbeat({
      intervalMs: this.options.heartbeatIntervalMs,
      lastActivityMs: () => this.lastActivityMs,
      query: (sql) => this.client.query<{ lsn: string }>(sql),
      onWalPosition: (l) => {
        if (!this.walEnd || l.compare(this.walEnd) > 0) this.walEnd = l;
      },
      stopped: () => this.stopping,
    });
  }
}
