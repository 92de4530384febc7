/**
 * The MariaDB source connector (`mysql://`, `mariadb://`).
 *
 *   check()        settings (log_bin, ROW, FULL image, FULL metadata, server_id, GTID) + grants
 *   describe(sel)  information_schema ─► TableSchema (ids from the TableRegistry)
 *   capture(t)     follow these tables (the binlog carries every table; nothing to change)
 *   snapshot(t)    START TRANSACTION WITH CONSISTENT SNAPSHOT at binlog (file, pos) → GTID list P
 *   replicate(P)   binlog dump from GTID state P ─► decode ─► assemble ─► SourceEvent batches
 *
 * The registry is the connector's memory of table ids and shapes; it is seeded from the log's
 * `knownTables` by `replicate`, and moved forward by the stream (DDL, table maps).
 */
import { randomInt } from 'node:crypto';
import type { Connection } from 'mysql2/promise';
import type {
  CheckResult,
  DescribedSelection,
  DescribeOptions,
  ReplicateOptions,
  ReplicationSession,
  SnapshotOptions,
  SourceConnector,
  SourceProgress,
  SourceSnapshot,
} from '../connector.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import type { ErrorCode } from '../../errors/codes.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { openBinlogDump, type BinlogDump } from './binlog-dump.ts';
import { BinlogPosition, BinlogPositionCodec } from './binlog-position.ts';
import { describeShapes, listTables, resolveSelection } from './catalog.ts';
import { CollationTable } from './charsets.ts';
import { runChecks } from './checks.ts';
import type { MysqlType } from './column-types.ts';
import { GtidList } from './gtid.ts';
import { MysqlReplicationSession } from './replication-session.ts';
import { openSnapshot, readSnapshot } from './snapshot-reader.ts';
import { wrapMysqlError } from './mysql-errors.ts';
import { connectSource, parseSourceUri, sourceKeyOf, type SourceUri } from './source-uri.ts';
import { TableRegistry } from './table-registry.ts';
import { sameColumns, type Shape } from './table-shapes.ts';
import { TransactionAssembler } from './transaction-assembler.ts';

export interface MysqlConnectorOptions {
  /** `mysql://user:password@host:port/database`. */
  readonly uri: string;
  /** The replica server id announced to the source (default: random in 2^30…2^31). */
  readonly serverId?: number;
  /** Heartbeat period of the binlog dump (default 1000 ms). */
  readonly heartbeatMs?: number;
}

/** Check ids whose failure stops replication, and the error each one raises. */
const BLOCKING_CODES: Readonly<Record<string, ErrorCode>> = {
  server: 'SOURCE_GTID_UNAVAILABLE',
  log_bin: 'SOURCE_BINLOG_OFF',
  binlog_format: 'SOURCE_BINLOG_FORMAT',
  binlog_row_image: 'SOURCE_BINLOG_ROW_IMAGE',
  binlog_row_metadata: 'SOURCE_BINLOG_ROW_METADATA',
  server_id: 'SOURCE_SERVER_ID',
  gtid: 'SOURCE_GTID_UNAVAILABLE',
};

export class MysqlConnector implements SourceConnector<BinlogPosition> {
  readonly kind = 'mysql';
  readonly sourceKey: string;
  readonly positions = new BinlogPositionCodec();
  readonly registry = new TableRegistry();
  /** MariaDB's binlog carries DDL in commit order and full row images: nothing is degraded. */
  readonly limitations: readonly string[] = [];
  private readonly source: SourceUri;
  private catalog: Promise<Connection> | null = null;
  private session: MysqlReplicationSession | null = null;
  private lastSizesMs = 0;
  /** The last position the hub acknowledged in this process (retainedBytes measures from it). */
  private acknowledged: BinlogPosition | null = null;

  constructor(private readonly options: MysqlConnectorOptions) {
    this.source = parseSourceUri(options.uri);
    this.sourceKey = sourceKeyOf(this.source);
  }

  async check(tables: readonly TableSchema[] = []): Promise<CheckResult[]> {
    return this.io('checking the source', async (c) => runChecks(c, tables));
  }

  async describe(selection: readonly string[], options: DescribeOptions = {}): Promise<DescribedSelection> {
    for (const t of options.knownTables ?? []) this.registry.remember(t.schema, t.name, t.relationId);
    return this.io('describing tables', async (c) => {
      const { tables: chosen, named } = resolveSelection(
        await listTables(c),
        selection,
        this.source.database,
      );
      const idOf = (s: string, n: string) => this.registry.idFor(s, n);
      const tables: TableSchema[] = [];
      const leftOut: DescribedSelection['leftOut'][number][] = [];
      // One query for all; per table only when one of them has a type Tidemark cannot carry.
      const all = await describeShapes(c, chosen, idOf).catch((err: unknown) => {
        if (err instanceof TidemarkError && err.code === 'SOURCE_UNSUPPORTED_TYPE') return null;
        throw err;
      });
      if (all) return { tables: all.map((s) => s.table), leftOut };
      for (const t of chosen) {
        try {
          const [s] = await describeShapes(c, [t], idOf);
          if (s) tables.push(s.table);
        } catch (err) {
          if (!(err instanceof TidemarkError && err.code === 'SOURCE_UNSUPPORTED_TYPE')) throw err;
          if (named.has(`${t.schema}\0${t.name}`)) throw err;
          leftOut.push({ schema: t.schema, name: t.name, reason: err });
        }
      }
      if (tables.length === 0) throw leftOut[0]!.reason;
      return { tables, leftOut };
    });
  }

  async describeAll(): Promise<TableSchema[]> {
    return this.io('describing tables', async (c) => {
      const out: TableSchema[] = [];
      for (const t of await listTables(c)) {
        try {
          const [s] = await describeShapes(c, [t], (sc, n) => this.registry.idFor(sc, n));
          if (s) out.push(s.table);
        } catch (err) {
          if (!(err instanceof TidemarkError && err.code === 'SOURCE_UNSUPPORTED_TYPE')) throw err;
        }
      }
      return out;
    });
  }

  async capture(tables: readonly TableSchema[]): Promise<void> {
    const shapes = await this.shapesOf(tables);
    for (const s of shapes) if (!this.registry.get(s.table.relationId)) this.registry.track(s);
  }

  async replicate(options: ReplicateOptions<BinlogPosition>): Promise<ReplicationSession<BinlogPosition>> {
    if (this.session)
      throw new TidemarkError('INTERNAL', {
        detail: 'a MySQL connector runs one replication session at a time',
      });
    await this.requireSettings();
    const { collations, from } = await this.io('preparing replication', async (c) => {
      const [rows] = await c.query(CollationTable.QUERY);
      const collations = new CollationTable(rows as { id: number; charset: string; maxBytes: number }[]);
      await this.seed(options.knownTables);
      await this.noteBinlogs(c);
      if (options.after !== null) return { collations, from: options.after };
      const [g] = await c.query('SELECT @@global.gtid_binlog_pos AS g');
      const text = String((g as { g: string }[])[0]?.g ?? '');
      return { collations, from: new BinlogPosition(GtidList.parse(text)) };
    });
    const opened = await this.openDump(from, options);
    const assembler = new TransactionAssembler({
      registry: this.registry,
      collations,
      from: opened.from.gtids,
      delivered: opened.from.gtids,
    });
    const { dump, first } = opened;
    const session = new MysqlReplicationSession({
      start: opened.from,
      dump,
      assembler,
      first,
      onHeartbeat: () => this.onHeartbeat(),
      onAcknowledge: (p) => (this.acknowledged = p),
      learn: (tables) => this.learnNow(tables),
    });
    this.session = session;
    const close = session.close.bind(session);
    session.close = async () => {
      this.session = null;
      await close();
    };
    return session;
  }

  /**
   * The binlog dump from `from`, its first events read (the server refuses a purged position only
   * then). Purged: the changes after `from` are gone; if the caller agrees (`acceptStartAfter`:
   * nobody needs them), the dump starts from the oldest binlog kept instead, else
   * SOURCE_BINLOG_PURGED names both positions.
   */
  private async openDump(
    from: BinlogPosition,
    options: ReplicateOptions<BinlogPosition>,
  ): Promise<{ from: BinlogPosition; dump: BinlogDump; first: Buffer[] }> {
    const open = async (at: BinlogPosition) => {
      const dump = await openBinlogDump({
        source: this.source,
        from: at.connectState(),
        serverId: this.options.serverId ?? randomInt(2 ** 30, 2 ** 31),
        heartbeatMs: this.options.heartbeatMs ?? 1000,
      });
      try {
        return { from: at, dump, first: await dump.next() };
      } catch (err) {
        dump.close();
        throw err;
      }
    };
    try {
      return await open(from);
    } catch (err) {
      if (!(err instanceof TidemarkError && err.code === 'SOURCE_BINLOG_PURGED') || options.after === null)
        throw err;
      const oldest = await this.io('reading the oldest binlog kept', (c) => oldestKept(c));
      if (oldest && oldest.position.compare(from) > 0 && options.acceptStartAfter(oldest.position))
        return open(oldest.position);
      const [expire] = await this.io('reading binlog retention', (c) =>
        c.query('SELECT @@global.binlog_expire_logs_seconds AS s'),
      );
      const seconds = Number((expire as { s: number | string }[])[0]?.s ?? 0);
      throw new TidemarkError('SOURCE_BINLOG_PURGED', {
        detail: `source ${this.source.host}:${this.source.port}: the changefeed continues from GTID ${from.connectState()}, but the oldest binary log kept (${oldest ? `${oldest.file}, from GTID ${oldest.position}` : 'none'}) starts after it: the changes in between were purged`,
        hint: `Changes in between are lost to the changefeeds of this source: reset them (drop their sink tables and checkpoint rows) to take a new snapshot, and keep binary logs longer than Tidemark may be down (binlog_expire_logs_seconds is ${seconds}${seconds === 0 ? ', i.e. no expiry; a PURGE BINARY LOGS removed them' : ''}).`,
        cause: err,
      });
    }
  }

  async snapshot(
    tables: readonly TableSchema[],
    options: SnapshotOptions,
  ): Promise<SourceSnapshot<BinlogPosition>> {
    await this.requireSettings();
    const shapes = await this.shapesOf(tables);
    const opened = await openSnapshot(this.source, options.parallelism);
    // The tables were described before the snapshot opened: a DDL committed in between would
    // give rows of another shape than the one the sink creates. information_schema is read
    // after the snapshot opened (a DDL after it makes MariaDB refuse the read: ER_TABLE_DEF_CHANGED).
    try {
      const now = await this.io('describing tables', (c) =>
        describeShapes(
          c,
          tables.map((t) => ({ schema: t.schema, name: t.name })),
          () => 0,
        ),
      );
      const changed = tables.filter((t, i) => !now[i] || !sameColumns(now[i].table, t));
      if (changed.length > 0) {
        throw new TidemarkError('SOURCE_SNAPSHOT_SCHEMA_MOVED', {
          detail: `source ${this.source.host}:${this.source.port}: ${changed.map((t) => `${t.schema}.${t.name}`).join(', ')} changed shape between describing and snapshotting`,
        });
      }
    } catch (err) {
      await Promise.all(opened.readers.map((r) => r.end().catch(() => {})));
      throw err;
    }
    let released = false;
    return {
      position: opened.position,
      rows: readSnapshot(this.source, opened, shapes, { chunkRows: options.chunkRows }),
      release: async () => {
        if (released) return;
        released = true;
        await Promise.all(opened.readers.map((r) => r.end().catch(() => {})));
      },
    };
  }

  async progress(): Promise<SourceProgress<BinlogPosition>> {
    return this.io('reading the binlog position', async (c) => {
      const [g] = await c.query('SELECT @@global.gtid_binlog_pos AS g');
      const [dumps] = await c.query(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%' AND USER = CURRENT_USER()",
      );
      return {
        end: new BinlogPosition(GtidList.parse(String((g as { g: string }[])[0]?.g ?? ''))),
        // MariaDB keeps no record of a replica's acknowledgements: only this process knows.
        acknowledged: this.acknowledged,
        streaming: Number((dumps as { n: number | string }[])[0]?.n ?? 0) > 0,
      };
    });
  }

  /**
   * Binlog bytes after the last acknowledged position (what a restart would read again); null
   * before the first acknowledgement. MariaDB purges by its own settings, not for Tidemark.
   */
  async retainedBytes(): Promise<number | null> {
    const from = this.acknowledged;
    if (from?.coordinate == null) return null;
    try {
      const c = await this.conn();
      await this.noteBinlogs(c);
      const [rows] = await c.query('SHOW MASTER STATUS');
      const r = (rows as { File: string; Position: number | string }[])[0];
      if (!r) return null;
      const end = new BinlogPosition(from.gtids, null, { file: r.File, offset: Number(r.Position) });
      return this.positions.distanceBytes(from, end);
    } catch {
      return null;
    }
  }

  /** Nothing to remove: following the binlog creates nothing on the source. */
  async dropSourceObjects(): Promise<void> {}

  async close(): Promise<void> {
    await this.session?.close();
    const c = this.catalog;
    this.catalog = null;
    if (c) await (await c.catch(() => null))?.end().catch(() => {});
  }

  /** Tables captured while a session runs: `capture` tracked them; shapes known are kept. */
  private learnNow(tables: readonly TableSchema[]): void {
    const fresh = tables.filter((t) => !this.registry.get(t.relationId));
    if (fresh.length > 0)
      this.registry.seed(fresh, (t) => ({ types: t.columns.map(typeFromPivot), exact: false }));
  }

  /** Refuses to replicate from a server whose settings would lose or misread changes. */
  private async requireSettings(): Promise<void> {
    for (const r of await this.check()) {
      if (r.ok || !r.blocking) continue;
      const code: ErrorCode = BLOCKING_CODES[r.id] ?? 'PERMISSION_DENIED';
      throw new TidemarkError(code, {
        detail: `source ${this.source.host}:${this.source.port}: ${r.detail}`,
        ...(r.fix ? { hint: r.fix } : {}),
      });
    }
  }

  /**
   * Shapes of `tables` with their ids: the registry's, or the catalog's now. A registry shape with
   * approximated types (`TableRegistry.seed`) gets the catalog's types when its columns are still
   * the same: a snapshot decodes its cells by them (YEAR 0 is `0`, GEOMETRY loses its SRID).
   */
  private async shapesOf(tables: readonly TableSchema[]): Promise<Shape[]> {
    const missing = tables.filter(
      (t) => !this.registry.get(t.relationId) || this.registry.isApproximate(t.relationId),
    );
    const described =
      missing.length === 0
        ? []
        : await this.io('describing tables', (c) =>
            describeShapes(
              c,
              missing.map((t) => ({ schema: t.schema, name: t.name })),
              (s, n) =>
                missing.find((t) => t.schema === s && t.name === n)?.relationId ?? this.registry.idFor(s, n),
            ),
          );
    for (const d of described) {
      const had = this.registry.get(d.table.relationId);
      if (had && this.registry.isApproximate(d.table.relationId) && sameColumns(had.table, d.table))
        this.registry.track({ table: had.table, types: d.types });
    }
    return tables.map(
      (t) => this.registry.get(t.relationId) ?? described.find((d) => d.table.relationId === t.relationId)!,
    );
  }

  /** Seeds the registry with the log's shapes; MySQL types from the catalog when it still agrees. */
  private async seed(known: readonly TableSchema[]): Promise<void> {
    const fresh = known.filter((t) => !this.registry.get(t.relationId));
    if (fresh.length === 0) return;
    let now: Shape[] = [];
    try {
      now = await this.io('describing tables', (c) =>
        describeShapes(
          c,
          fresh.map((t) => ({ schema: t.schema, name: t.name })),
          () => 0,
        ),
      );
    } catch {
      // A table the log knows may be gone by now: its types are approximated below.
    }
    this.registry.seed(fresh, (t) => {
      const same = now.find(
        (s) => s.table.schema === t.schema && s.table.name === t.name && sameColumns(s.table, t),
      );
      return same
        ? { types: same.types, exact: true }
        : { types: t.columns.map(typeFromPivot), exact: false };
    });
  }

  private onHeartbeat(): void {
    if (Date.now() - this.lastSizesMs < 10_000) return;
    this.lastSizesMs = Date.now();
    void this.conn()
      .then((c) => this.noteBinlogs(c))
      .catch(() => {});
  }

  private async noteBinlogs(c: Connection): Promise<void> {
    const [rows] = await c.query('SHOW BINARY LOGS');
    this.positions.noteBinlogs(
      (rows as { Log_name: string; File_size: number | string }[]).map((r) => ({
        file: r.Log_name,
        size: Number(r.File_size),
      })),
    );
    this.lastSizesMs = Date.now();
  }

  private conn(): Promise<Connection> {
    if (this.catalog === null) {
      const p = connectSource(this.source);
      this.catalog = p;
      p.then(
        (c) =>
          c.on('error', () => {
            if (this.catalog === p) this.catalog = null;
          }),
        () => {
          if (this.catalog === p) this.catalog = null;
        },
      );
    }
    return this.catalog;
  }

  private async io<T>(action: string, f: (c: Connection) => Promise<T>): Promise<T> {
    try {
      return await f(await this.conn());
    } catch (err) {
      throw wrapMysqlError(err, { role: 'source', uri: this.source.uri, action });
    }
  }
}

/**
 * The first binlog file kept and the GTID state at its start (what a dump from there delivers
 * after); null if the server keeps none.
 */
async function oldestKept(c: Connection): Promise<{ file: string; position: BinlogPosition } | null> {
  const [logs] = await c.query('SHOW BINARY LOGS');
  const file = (logs as { Log_name: string }[])[0]?.Log_name;
  if (file === undefined) return null;
  const [rows] = await c.query('SELECT BINLOG_GTID_POS(?, 4) AS g', [file]);
  const g = (rows as { g: string | null }[])[0]?.g;
  if (g == null) return null;
  return { file, position: new BinlogPosition(GtidList.parse(g)) };
}

/** A MySQL type good enough to judge widenings and fills, from a pivot column the log recorded. */
function typeFromPivot(c: { typeName: string }): MysqlType {
  const n = c.typeName;
  let m: RegExpExecArray | null;
  if (n === 'smallint') return { kind: 'int', bytes: 2, unsigned: false };
  if (n === 'integer') return { kind: 'int', bytes: 4, unsigned: false };
  if (n === 'bigint') return { kind: 'int', bytes: 8, unsigned: false };
  if (n === 'numeric(20,0)') return { kind: 'int', bytes: 8, unsigned: true };
  if ((m = /^numeric\((\d+),(\d+)\)$/.exec(n)))
    return { kind: 'decimal', precision: Number(m[1]), scale: Number(m[2]) };
  if (n === 'real') return { kind: 'float' };
  if (n === 'double precision') return { kind: 'double' };
  if (n === 'date') return { kind: 'date' };
  if (n === 'interval') return { kind: 'time', fsp: 6 };
  if ((m = /^timestamp\((\d)\) without/.exec(n))) return { kind: 'datetime', fsp: Number(m[1]) };
  if ((m = /^timestamp\((\d)\) with/.exec(n))) return { kind: 'timestamp', fsp: Number(m[1]) };
  if ((m = /^character varying\((\d+)\)$/.exec(n)))
    return { kind: 'string', varying: true, length: Number(m[1]), binary: false };
  if ((m = /^bit\((\d+)\)$/.exec(n))) return { kind: 'bit', bits: Number(m[1]) };
  if (n === 'json') return { kind: 'json' };
  if (n === 'bytea') return { kind: 'blob', binary: true };
  return { kind: 'blob', binary: false };
}
