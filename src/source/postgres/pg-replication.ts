/**
 * One replication session of the PostgreSQL connector: the source's shared slot streamed with
 * pgoutput, decoded into the core model's events.
 *
 *   slot tidemark_src_<hash> ─ START_REPLICATION after P ─► pgoutput ─► PgSchemaTracker ─► ChangeEvent[]
 *        ▲                                                  (Relation + DDL messages → shapes, barriers)
 *        └── setFlushed(C) ◄── acknowledge(C): the hub's slowest durable subscriber
 *
 * A heartbeat (`pg_logical_emit_message`, transactional) is written when the source has been
 * quiet for `heartbeatIntervalMs`, so an idle source still produces commits and every
 * subscriber's resolved position — and with it the slot — keeps advancing.
 */
import type { ChangeEvent } from '../../core/change.ts';
import { PackedDelete, PackedInsert, PackedUpdate } from '../../core/packed-cells.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { ReplicateOptions, ReplicationSession } from '../connector.ts';
import { DDL_MESSAGE_PREFIX, parseDdlMessage } from './ddl-capture.ts';
import { startHeartbeat } from './heartbeat.ts';
import { Lsn } from './lsn.ts';
import { PgSchemaTracker, type CatalogLookup } from './pg-schemas.ts';
import type { ReplicationEvent } from './pgoutput-messages.ts';
import { ReplicationConnection } from './replication-connection.ts';
import { SESSION_SETTINGS } from './session-settings.ts';
import type { SourceSql } from './source-sql.ts';

export interface PgReplicationOptions extends ReplicateOptions<Lsn> {
  readonly url: string;
  readonly slotName: string;
  readonly publicationName: string;
  readonly heartbeatIntervalMs: number;
  readonly sql: SourceSql;
  readonly lookup: CatalogLookup;
  /** Creates the shared slot (a new source); resolves with its consistent point. */
  readonly createSlot: () => Promise<Lsn>;
  /** The transactions a slot being created waits for, named for an error's detail. */
  readonly blockers: () => Promise<string>;
}

export class PgReplication implements ReplicationSession<Lsn> {
  readonly events: AsyncIterable<readonly ChangeEvent<Lsn>[]>;
  sourceEnd: Lsn | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly tracker: PgSchemaTracker;
  private lastActivityMs = Date.now();
  private closed = false;

  private constructor(
    readonly start: Lsn,
    private readonly conn: ReplicationConnection,
    private readonly options: PgReplicationOptions,
  ) {
    const tracker = new PgSchemaTracker(options.knownTables, options.lookup);
    this.tracker = tracker;
    const raw = conn.startReplication({
      slotName: options.slotName,
      startLsn: start,
      publicationNames: [options.publicationName],
      messages: true,
    });
    this.events = this.decode(raw, tracker);
    this.heartbeat = startHeartbeat({
      intervalMs: options.heartbeatIntervalMs,
      lastActivityMs: () => this.lastActivityMs,
      query: (sql) => options.sql.query<{ lsn: string }>(sql, [], 'writing a heartbeat'),
      onWalPosition: (l) => this.seeEnd(l),
      stopped: () => this.closed,
    });
  }

  /**
   * Checks the slot against `options.after` and opens the stream there. A missing slot is made
   * (new source), or — when the log continues it — SOURCE_SLOT_LOST unless no subscriber needs
   * what it lost; a slot confirmed past `after` (it discarded what is between) starts there when
   * `acceptStartAfter` agrees, else SOURCE_SLOT_AHEAD.
   */
  static async open(options: PgReplicationOptions): Promise<PgReplication> {
    const { rows } = await options.sql.query<{
      confirmed: string | null;
      status: string | null;
      pid: number | null;
    }>(
      `SELECT confirmed_flush_lsn::text AS confirmed, wal_status AS status, active_pid AS pid
         FROM pg_replication_slots WHERE slot_name = $1`,
      [options.slotName],
      'reading the slot',
    );
    const slot = rows[0];
    let start: Lsn;
    if (!slot) {
      // Commits whose record starts exactly at the consistent point are streamed too (see
      // PostgresConnector.snapshot), so a new slot covers everything after P − 1.
      const consistent = await options.createSlot();
      const earliest = Lsn.fromBigInt(consistent.value - 1n);
      if (options.after !== null && !options.acceptStartAfter(earliest)) {
        throw new TidemarkError('SOURCE_SLOT_LOST', {
          detail: `slot ${options.slotName} was missing (dropped behind Tidemark's back) while the change log continues it from ${options.after}: the changes between are lost`,
          hint: 'Reset the changefeeds of this source (each takes a new snapshot); a new slot now holds everything from here on.',
        });
      }
      start = options.after !== null && options.after.compare(earliest) > 0 ? options.after : earliest;
    } else {
      const confirmed = slot.confirmed ? Lsn.parse(slot.confirmed) : null;
      if (slot.status !== 'lost' && !confirmed) {
        // Still being created by another session (another process starting on this source):
        // creating a slot waits for the transactions running on the source. Retried; never "lost".
        const waitingFor = await options.blockers().catch(() => 'transactions that could not be listed');
        throw new TidemarkError('SOURCE_SNAPSHOT_BLOCKED', {
          detail: `slot ${options.slotName} is being created by another session (pid ${String(slot.pid)}), which waits for ${waitingFor}`,
        });
      }
      if (slot.status === 'lost' || !confirmed) {
        throw new TidemarkError('SOURCE_SLOT_LOST', {
          detail: `slot ${options.slotName} is invalidated (wal_status lost): the source removed WAL it still needed`,
          hint: 'Raise max_slot_wal_keep_size (or keep changefeeds running), drop the slot, and reset the changefeeds of this source.',
        });
      }
      if (options.after === null) start = confirmed;
      else if (confirmed.minus(options.after) > 1n) {
        if (!options.acceptStartAfter(confirmed)) {
          throw new TidemarkError('SOURCE_SLOT_AHEAD', {
            detail: `slot ${options.slotName} confirmed ${confirmed}, but a changefeed still needs changes after ${options.after} (the change log ends there)`,
          });
        }
        start = confirmed;
      } else start = options.after;
    }
    const conn = await ReplicationConnection.connect({
      url: options.url,
      applicationName: 'tidemark:hub',
      sessionSettings: { ...SESSION_SETTINGS },
    });
    return new PgReplication(start, conn, options);
  }

  learn(tables: readonly TableSchema[]): void {
    this.tracker.learn(tables);
  }

  acknowledge(position: Lsn): void {
    if (!this.closed) this.conn.setFlushed(position);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    await this.conn.close().catch(() => {});
  }

  private seeEnd(lsn: Lsn): void {
    if (!this.sourceEnd || lsn.compare(this.sourceEnd) > 0) this.sourceEnd = lsn;
  }

  /** pgoutput events → the core model, dropping transactions committed at or before `start`. */
  private async *decode(
    raw: AsyncIterable<ReplicationEvent[]>,
    tracker: PgSchemaTracker,
  ): AsyncGenerator<ChangeEvent<Lsn>[]> {
    let skipping = false;
    let inTxn = false;
    const known = (id: number): TableSchema => tracker.known(id);
    for await (const batch of raw) {
      const out: ChangeEvent<Lsn>[] = [];
      for (const ev of batch) {
        switch (ev.tag) {
          case 'keepalive':
            this.seeEnd(ev.walEnd);
            break;
          case 'begin':
            this.lastActivityMs = Date.now();
            skipping = ev.finalLsn.compare(this.start) <= 0;
            inTxn = true;
            if (!skipping) out.push({ tag: 'begin', commitTimeMs: ev.commitTimeMs, txn: ev.xid });
            break;
          case 'commit':
            tracker.endTransaction();
            if (!skipping) out.push({ tag: 'commit', position: ev.commitLsn, commitTimeMs: ev.commitTimeMs });
            skipping = false;
            inTxn = false;
            break;
          case 'relation': {
            const change = await tracker.onRelation(ev);
            if (change && !skipping && inTxn) out.push({ tag: 'schema', change });
            break;
          }
          case 'message': {
            if (!ev.transactional || ev.prefix !== DDL_MESSAGE_PREFIX) break;
            const msg = parseDdlMessage(ev.content);
            if (msg === null) break;
            for (const change of tracker.onDdl(msg)) if (!skipping) out.push({ tag: 'schema', change });
            break;
          }
          // Packed rows stay packed (core/packed-cells.ts): the hub copies their bytes to its log.
          case 'insert':
            if (skipping) break;
            if (ev.packedRow) out.push(new PackedInsert(known(ev.relationId), ev.packedRow));
            else out.push({ tag: 'insert', table: known(ev.relationId), row: ev.row });
            break;
          case 'update':
            if (skipping) break;
            if (ev.packedRow) {
              const old = ev.packedOld ?? null;
              out.push(new PackedUpdate(known(ev.relationId), ev.packedRow, old, ev.oldKind === 'full'));
            } else {
              out.push({
                tag: 'update',
                table: known(ev.relationId),
                row: ev.row,
                old: ev.old as (string | null)[] | null,
                oldIsFull: ev.oldKind === 'full',
              });
            }
            break;
          case 'delete':
            if (skipping) break;
            if (ev.packedOld) out.push(new PackedDelete(known(ev.relationId), ev.packedOld));
            else out.push({ tag: 'delete', table: known(ev.relationId), old: ev.old });
            break;
          case 'truncate':
            if (!skipping) out.push({ tag: 'truncate', tables: ev.relationIds.map(known) });
            break;
          case 'origin':
          case 'type':
            break;
        }
      }
      if (out.length > 0) yield out;
    }
    if (!this.closed)
      throw new TidemarkError('SOURCE_STREAM_ENDED', { detail: `slot ${this.options.slotName}` });
  }
}
