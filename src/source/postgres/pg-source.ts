/**
 * The PostgreSQL source of one changefeed.
 *
 *   prepare()          catalog ─► TableSchema[] ; publication tidemark_<id> made to match
 *   createSnapshot()   CREATE_REPLICATION_SLOT … (SNAPSHOT 'export') ─► consistent point P + snapshot S
 *   readSnapshot(S)    parallel chunked COPY inside S (snapshot-reader.ts)
 *   stream(after C)    START_REPLICATION SLOT … LOGICAL C ─► pgoutput ─► ChangeMessage, commits ≤ C dropped
 *   acknowledge(C)     slot may discard WAL up to C (only ever a checkpoint durable downstream)
 *
 * A heartbeat (`pg_logical_emit_message`, transactional) is written when the stream has been
 * quiet for `heartbeatIntervalMs`, so an idle source still produces commits and the checkpoint —
 * and with it the slot — keeps advancing.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ChangefeedConfig } from '../../runtime/changefeed-config.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { quoteTable } from '../../core/table-schema.ts';
import type { Row } from '../../core/row.ts';
import type { ChangeMessage } from '../../core/change.ts';
import type { SnapshotRows } from '../../core/epoch.ts';
import { describeTables, resolveTables } from './catalog.ts';
import { Lsn } from './lsn.ts';
import { wrapPgError } from './pg-errors.ts';
import { connectPgClient } from './pg-tls.ts';
import { ReplicationConnection } from './replication-connection.ts';
import type { ReplicationEvent } from './pgoutput-messages.ts';
import { readSnapshot } from './snapshot-reader.ts';
import { sessionOptions, SESSION_SETTINGS } from './session-settings.ts';
import { startHeartbeat } from './heartbeat.ts';

export interface PostgresSourceOptions {
  url: string;
  changefeedId: string;
  tables: readonly string[];
  snapshot: { parallelism: number; chunkRows: number };
  heartbeatIntervalMs: number;
}

export interface SlotState {
  readonly exists: boolean;
  readonly confirmedFlush: Lsn | null;
  readonly activePid: number | null;
  readonly invalid: boolean;
}

/** Slot and publication are named after the changefeed: `tidemark_<id>` with `-` as `_`. */
export function sourceObjectName(changefeedId: string): string {
  return `tidemark_${changefeedId.replace(/-/g, '_')}`;
}

export class PostgresSource {
  readonly slotName: string;
  readonly publicationName: string;
  private client: pg.Client | null = null;
  private repl: ReplicationConnection | null = null;
  private tablesByOid = new Map<number, TableSchema>();
  private heartbeat: NodeJS.Timeout | null = null;
  private lastActivityMs = Date.now();
  private closed = false;
  /** The source's WAL end as last seen (keepalive or heartbeat query), for lag in bytes. */
  walEnd: Lsn | null = null;

  /** The source side of a changefeed's config. */
  static forChangefeed(
    cfg: Pick<ChangefeedConfig, 'source' | 'id' | 'tables' | 'snapshot' | 'heartbeatIntervalMs'>,
  ): PostgresSource {
    return new PostgresSource({
      url: cfg.source,
      changefeedId: cfg.id,
      tables: cfg.tables,
      snapshot: cfg.snapshot,
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
    });
  }

  constructor(private readonly options: PostgresSourceOptions) {
    this.slotName = sourceObjectName(options.changefeedId);
    this.publicationName = this.slotName;
  }

  private async sql(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = await connectPgClient(
      this.options.url,
      { options: sessionOptions() },
      { role: 'source', action: 'connecting' },
    );
    c.on('error', () => {}); // surfaced by the next query
    this.client = c;
    return c;
  }

  private async query<R extends pg.QueryResultRow>(text: string, values?: unknown[], action?: string) {
    const c = await this.sql();
    try {
      return await c.query<R>(text, values);
    } catch (err) {
      throw wrapPgError(err, {
        role: 'source',
        uri: this.options.url,
        action: action ?? 'querying the catalog',
      });
    }
  }

  /**
   * Checks the server, resolves the table selection and describes the tables. Creates nothing.
   * `published` is the set of tables the changefeed's publication held before (null: none yet).
   */
  async prepare(
    extraTables: readonly string[] = [],
  ): Promise<{ tables: TableSchema[]; published: Set<string> | null }> {
    const { rows: wal } = await this.query<{ wal_level: string }>(
      `SELECT current_setting('wal_level') AS wal_level`,
    );
    if (wal[0]?.wal_level !== 'logical') {
      throw new TidemarkError('SOURCE_WAL_LEVEL', {
        detail: `wal_level is '${wal[0]?.wal_level}' on the source`,
      });
    }
    const c = await this.sql();
    let tables: TableSchema[];
    try {
      tables = await describeTables(c, await resolveTables(c, [...this.options.tables, ...extraTables]));
    } catch (err) {
      throw wrapPgError(err, { role: 'source', uri: this.options.url, action: 'reading the catalog' });
    }
    for (const t of tables) this.tablesByOid.set(t.relationId, t);
    const { rows: pub } = await this.query<{ tables: string[] | null }>(
      `SELECT (SELECT array_agg(format('%I.%I', schemaname, tablename)) FROM pg_publication_tables WHERE pubname = $1) AS tables,
              EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS exists`,
      [this.publicationName],
    );
    const row = pub[0] as { tables: string[] | null; exists?: boolean } | undefined;
    const published = row?.exists ? new Set(row.tables ?? []) : null;
    return { tables, published };
  }

  /**
   * Every user table of the source, described without requiring a key: the catalog views are
   * planned against (the tables they read are then selected, and checked, by `prepare`).
   */
  async describeAll(): Promise<TableSchema[]> {
    const c = await this.sql();
    try {
      return await describeTables(c, await resolveTables(c, ['*.*']), { requireKey: false });
    } catch (err) {
      throw wrapPgError(err, { role: 'source', uri: this.options.url, action: 'reading the catalog' });
    }
  }

  /** Creates or alters the publication to publish exactly `tables` (with truncates). */
  async syncPublication(tables: readonly TableSchema[], published: Set<string> | null): Promise<void> {
    const list = tables.map(quoteTable).join(', ');
    const name = `"${this.publicationName}"`;
    const wanted = new Set(tables.map((t) => `${t.schema}.${t.name}`));
    const same =
      published !== null && published.size === wanted.size && [...wanted].every((t) => published.has(t));
    if (same) return;
    const sql =
      published === null
        ? `CREATE PUBLICATION ${name} FOR TABLE ${list}`
        : `ALTER PUBLICATION ${name} SET TABLE ${list}`;
    await this.query(sql, undefined, 'creating the publication');
  }

  async slotState(): Promise<SlotState> {
    const { rows } = await this.query<{
      confirmed: string | null;
      pid: number | null;
      status: string | null;
    }>(
      `SELECT confirmed_flush_lsn::text AS confirmed, active_pid AS pid, wal_status AS status
         FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`,
      [this.slotName],
    );
    const r = rows[0];
    if (!r) return { exists: false, confirmedFlush: null, activePid: null, invalid: false };
    return {
      exists: true,
      confirmedFlush: r.confirmed ? Lsn.parse(r.confirmed) : null,
      activePid: r.pid,
      invalid: r.status === 'lost',
    };
  }

  async dropSlot(): Promise<void> {
    await this.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`,
      [this.slotName],
      'dropping the replication slot',
    );
  }

  async dropPublication(): Promise<void> {
    await this.query(
      `DROP PUBLICATION IF EXISTS "${this.publicationName}"`,
      undefined,
      'dropping the publication',
    );
  }

  /**
   * Creates the slot with an exported snapshot and reads the tables inside it. With `temporary`
   * the slot is `<slot>_snap_<random>`, TEMPORARY: it only pins the snapshot's consistent point and goes
   * away with its connection (changes then come from a shared puller). The replication
   * connection that exported the snapshot stays open and idle until the snapshot is read, since
   * the snapshot lives only as long as it does.
   */
  async createSnapshot(
    tables: readonly TableSchema[],
    options: { temporary?: boolean } = {},
  ): Promise<{ position: Lsn; rows: AsyncGenerator<SnapshotRows> }> {
    const conn = await this.replication();
    const slot = await conn.createLogicalSlot({
      // Unique per attempt: a killed process's temporary slot lingers until its walsender notices.
      slotName: options.temporary ? `${this.slotName}_snap_${randomBytes(4).toString('hex')}` : this.slotName,
      snapshot: 'export',
      temporary: options.temporary === true,
    });
    if (!slot.snapshotName)
      throw new TidemarkError('INTERNAL', { detail: 'slot created without an exported snapshot' });
    const inner = readSnapshot({
      url: this.options.url,
      snapshotName: slot.snapshotName,
      tables,
      parallelism: this.options.snapshot.parallelism,
      chunkRows: this.options.snapshot.chunkRows,
    });
    // The consistent point P is where decoding starts (`start_decoding_at`): PostgreSQL streams
    // every commit whose record starts at or after P (SnapBuildXactNeedsSkip: origptr < P is
    // skipped), and the exported snapshot holds exactly the commits before it. A commit record
    // can start exactly at P, so the snapshot's checkpoint is P − 1: "every commit ≤ P − 1".
    const position = Lsn.fromBigInt(slot.consistentPoint.value - 1n);
    return { position, rows: this.releaseAfter(inner) };
  }

  /** Yields the snapshot, then closes the connection that keeps its exported snapshot alive. */
  private async *releaseAfter(rows: AsyncGenerator<SnapshotRows>): AsyncGenerator<SnapshotRows> {
    try {
      yield* rows;
    } finally {
      await this.closeReplication();
    }
  }

  private async replication(): Promise<ReplicationConnection> {
    if (this.repl) return this.repl;
    this.repl = await ReplicationConnection.connect({
      url: this.options.url,
      applicationName: `tidemark:${this.options.changefeedId}`,
      sessionSettings: { ...SESSION_SETTINGS },
    });
    return this.repl;
  }

  private async closeReplication(): Promise<void> {
    const r = this.repl;
    this.repl = null;
    await r?.close();
  }

  /**
   * Streams committed transactions after `after`, in commit order, a batch at a time (whatever
   * arrived together on the socket: one await per batch, not per change). Transactions whose
   * commit position is at or before `after` are dropped here: the sink already holds them.
   */
  async *stream(after: Lsn): AsyncGenerator<ChangeMessage[]> {
    const conn = await this.replication();
    const events = conn.startReplication({
      slotName: this.slotName,
      startLsn: after,
      publicationNames: [this.publicationName],
      messages: true,
    });
    this.startHeartbeats();
    let skipping = false;
    for await (const batch of events) {
      const out: ChangeMessage[] = [];
      for (const ev of batch) {
        switch (ev.tag) {
          case 'keepalive':
            if (!this.walEnd || ev.walEnd.compare(this.walEnd) > 0) this.walEnd = ev.walEnd;
            break;
          case 'begin':
            this.lastActivityMs = Date.now();
            skipping = ev.finalLsn.compare(after) <= 0;
            if (!skipping) out.push({ tag: 'begin', commitTimeMs: ev.commitTimeMs });
            break;
          case 'commit':
            if (!skipping) out.push({ tag: 'commit', position: ev.commitLsn, commitTimeMs: ev.commitTimeMs });
            skipping = false;
            break;
          case 'relation': {
            const table = await this.tableFor(ev);
            if (!skipping) out.push({ tag: 'relation', table });
            break;
          }
          case 'insert':
            if (!skipping) out.push({ tag: 'insert', table: this.known(ev.relationId), row: ev.row });
            break;
          case 'update':
            if (!skipping) {
              out.push({
                tag: 'update',
                table: this.known(ev.relationId),
                row: ev.row,
                old: ev.old as Row | null,
                oldIsFull: ev.oldKind === 'full',
              });
            }
            break;
          case 'delete':
            if (!skipping) out.push({ tag: 'delete', table: this.known(ev.relationId), old: ev.old });
            break;
          case 'truncate':
            if (!skipping) out.push({ tag: 'truncate', tables: ev.relationIds.map((id) => this.known(id)) });
            break;
          case 'origin':
          case 'type':
          case 'message':
            break;
        }
      }
      if (out.length > 0) yield out;
    }
    if (!this.closed) throw new TidemarkError('SOURCE_STREAM_ENDED', { detail: `slot ${this.slotName}` });
  }

  /** The sink holds everything up to `position`: the slot may release WAL before it. */
  acknowledge(position: Lsn): void {
    this.repl?.setFlushed(position);
  }

  private known(relationId: number): TableSchema {
    const t = this.tablesByOid.get(relationId);
    if (!t)
      throw new TidemarkError('SOURCE_PROTOCOL', {
        detail: `change for relation ${relationId} before its Relation message`,
      });
    return t;
  }

  /** The schema for a Relation message: the catalog's when it agrees, else rebuilt from both. */
  private async tableFor(ev: Extract<ReplicationEvent, { tag: 'relation' }>): Promise<TableSchema> {
    const prev = this.tablesByOid.get(ev.relationId);
    const same = (t: TableSchema) =>
      t.schema === ev.schema &&
      t.name === ev.name &&
      t.columns.length === ev.columns.length &&
      t.columns.every(
        (c, i) =>
          c.name === ev.columns[i]!.name &&
          c.typeOid === ev.columns[i]!.typeOid &&
          c.typeMod === ev.columns[i]!.typeMod,
      );
    if (prev && same(prev)) return prev;
    const c = await this.sql();
    const [fresh] = await describeTables(c, [
      { oid: ev.relationId, schema: ev.schema, name: ev.name, replident: ev.replicaIdentity },
    ]).catch((err: unknown) => {
      throw wrapPgError(err, {
        role: 'source',
        uri: this.options.url,
        action: `describing ${ev.schema}.${ev.name}`,
      });
    });
    if (!fresh || !same(fresh)) {
      throw new TidemarkError('SOURCE_SCHEMA_CHANGED', {
        detail: `${ev.schema}.${ev.name} changed again before its earlier change was replicated`,
      });
    }
    this.tablesByOid.set(ev.relationId, fresh);
    return fresh;
  }

  private startHeartbeats(): void {
    if (this.heartbeat) return;
    this.heartbeat = startHeartbeat({
      intervalMs: this.options.heartbeatIntervalMs,
      lastActivityMs: () => this.lastActivityMs,
      query: (sql) => this.query<{ lsn: string }>(sql, undefined, 'writing a heartbeat'),
      onWalPosition: (l) => {
        if (!this.walEnd || l.compare(this.walEnd) > 0) this.walEnd = l;
      },
      stopped: () => this.closed,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    await this.closeReplication().catch(() => {});
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
