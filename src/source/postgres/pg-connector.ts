/**
 * The PostgreSQL connector (`source/connector.ts`).
 *
 *   check()            wal_level, version, privileges, slot headroom
 *   describe(sel)      catalog.ts: tables with stable ids (OIDs), what cannot be replicated refused or left out
 *   capture(tables)    publication tidemark_src_<hash> (publish_via_partition_root) ∪= tables; DDL capture installed
 *   replicate(after)   pg-replication.ts: slot tidemark_src_<hash> ─► pgoutput ─► ChangeEvents
 *   snapshot(tables)   TEMPORARY slot with an exported snapshot ─► parallel chunked COPY (snapshot-reader.ts)
 *
 * One slot and one publication per source database, shared by every changefeed of the engine;
 * named from host, port and database (source-names.ts), so every process finds the same ones.
 */
import { PgChunkReader } from './chunk-reader.ts';
import type pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { EnumType, TableSchema } from '../../core/table-schema.ts';
import { quoteTable } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { maskUri } from '../../errors/mask.ts';
import type {
  CheckResult,
  DescribedSelection,
  ReplicateOptions,
  SnapshotOptions,
  SourceConnector,
  SourceProgress,
  SourceSnapshot,
} from '../connector.ts';
import { describeSelection, describeTables } from './catalog.ts';
import { installSql, likePatterns, uninstallSql, DDL_CAPTURE_VERSION } from './ddl-capture.ts';
import { isTablePattern, splitTablePattern } from '../../core/selection.ts';
import { Lsn, LSN_CODEC } from './lsn.ts';
import { PgReplication } from './pg-replication.ts';
import type { CatalogLookup } from './pg-schemas.ts';
import { ENUM_OID_SQL, portableTypeSql, typeJoinsSql } from './portable-type.ts';
import { ReplicationConnection } from './replication-connection.ts';
import { SESSION_SETTINGS } from './session-settings.ts';
import { readInKeyOrder, readSnapshot } from './snapshot-reader.ts';
import { openPgSourceRead } from './verify-read.ts';
import type { SourceReadSession } from '../../core/table-read.ts';
import { SourceSql } from './source-sql.ts';
import { sourceObjectName } from './source-names.ts';

export interface PostgresConnectorOptions {
  /** Source database URI (credentials are never shown). */
  readonly url: string;
  readonly heartbeatIntervalMs: number;
  /**
   * How long a snapshot (or the shared slot's creation) may wait for the transactions running on
   * the source to finish before it fails with SOURCE_SNAPSHOT_BLOCKED naming them (retried).
   */
  readonly snapshotStartTimeoutMs?: number;
  /** Things an operator should know (capture degraded, …); must not throw. */
  readonly onWarning?: (message: string, fields: Record<string, unknown>) => void;
  /**
   * The slot and publication name (default `tidemark_src_<hash>` from host, port and database,
   * shared by every changefeed of the source). A connector of its own name has a slot of its own:
   * the benchmarks' one-slot-per-changefeed baseline.
   */
  readonly objectName?: string;
}

/**
 * Minor releases that fixed the loss of changes when tables join a publication while a walsender
 * decodes it (the 2025-05 releases). Tidemark adds tables to a live publication whenever a
 * changefeed starts, so older minors are refused.
 */
const FIXED_MINOR: Readonly<Record<number, number>> = { 13: 21, 14: 18, 15: 13, 16: 9, 17: 5 };

export type SchemaCapture = 'ddl-trigger' | 'relation-messages';

export class PostgresConnector implements SourceConnector<Lsn> {
  readonly kind = 'postgres';
  readonly sourceKey: string;
  readonly positions = LSN_CODEC;
  readonly slotName: string;
  readonly publicationName: string;
  /** How schema changes are seen: known after the first `capture`. */
  schemaCapture: SchemaCapture | null = null;

  get limitations(): readonly string[] {
    return this.schemaCapture === 'relation-messages'
      ? [
          'schema changes are seen only through Relation messages (the source user is not a superuser, so no event trigger captures DDL): a renamed column arrives as a dropped and an added one (its values are lost downstream until the rows are updated), an added column takes the value the catalog holds when the change arrives, a rewrite with volatile values goes unnoticed, and tables created later are not captured',
        ]
      : [];
  }
  private readonly sql: SourceSql;
  private capturing: Promise<void> = Promise.resolve();
  private checked = false;
  private publicationReady = false;

  constructor(private readonly options: PostgresConnectorOptions) {
    this.sourceKey = options.objectName ?? sourceObjectName(options.url);
    this.slotName = this.sourceKey;
    this.publicationName = this.sourceKey;
    this.sql = new SourceSql(options.url);
  }

  async check(tables?: readonly TableSchema[]): Promise<CheckResult[]> {
    const { rows } = await this.sql.query<{
      wal: string;
      version: number;
      superuser: boolean;
      replication: boolean;
      slots: number;
      used: number;
      senders: number;
    }>(
      `SELECT current_setting('wal_level') AS wal, current_setting('server_version_num')::int AS version,
              r.rolsuper AS superuser, r.rolreplication AS replication,
              current_setting('max_replication_slots')::int AS slots,
              (SELECT count(*)::int FROM pg_replication_slots) AS used,
              current_setting('max_wal_senders')::int AS senders
         FROM pg_roles r WHERE r.rolname = current_user`,
      [],
      'checking the server',
    );
    const r = rows[0]!;
    const out: CheckResult[] = [];
    out.push({
      id: 'wal_level',
      ok: r.wal === 'logical',
      detail: `wal_level is '${r.wal}'`,
      fix: "ALTER SYSTEM SET wal_level = 'logical', then restart PostgreSQL.",
      blocking: true,
    });
    const version = versionProblem(r.version);
    out.push({
      id: 'version',
      ok: version === null,
      detail: version ?? `PostgreSQL ${formatVersion(r.version)}`,
      fix: 'Upgrade PostgreSQL to the latest minor release of its major version.',
      blocking: true,
    });
    out.push({
      id: 'replication-privilege',
      ok: r.superuser || r.replication,
      detail:
        r.superuser || r.replication
          ? 'the user may replicate'
          : 'the user has neither REPLICATION nor SUPERUSER',
      fix: 'ALTER ROLE <user> REPLICATION (and GRANT SELECT on the selected tables).',
      blocking: true,
    });
    out.push({
      id: 'schema-capture',
      ok: r.superuser,
      detail: r.superuser
        ? 'schema changes are captured in commit order (event trigger)'
        : 'not a superuser: schema changes are seen only through Relation messages (renames look like drop + add; defaults of added columns are read from the catalog when the change arrives)',
      fix: 'Run Tidemark as a superuser once so it can install its event triggers (schema tidemark), or accept the degraded mode.',
      blocking: false,
    });
    out.push({
      id: 'replication-slots',
      ok: r.used < r.slots,
      detail: `${r.used} of max_replication_slots = ${r.slots} in use`,
      fix: 'Raise max_replication_slots (a restart), or drop unused slots.',
      blocking: false,
    });
    void tables; // table shapes are checked by describe(), which refuses what cannot be replicated
    return out;
  }

  async describe(selection: readonly string[]): Promise<DescribedSelection> {
    await this.assertServer();
    return this.sql.exclusive((c) => describeSelection(c, selection), 'reading the catalog');
  }

  async describeAll(): Promise<TableSchema[]> {
    return this.sql.exclusive(async (c) => {
      const rows = await tableRows(
        c,
        `c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tidemark', '_tidemark') AND n.nspname NOT LIKE 'pg\\_%'`,
      );
      const out = await describeTables(c, rows, { requireKey: false });
      return out.filter((t): t is TableSchema => !(t instanceof TidemarkError));
    }, 'reading the catalog');
  }

  /**
   * Adds `tables` to the shared publication (creating it, with `publish_via_partition_root`, when
   * missing) and installs the schema-change capture when the user may. Serialised; a table
   * another call (or process) added meanwhile is fine.
   */
  capture(tables: readonly TableSchema[], selection: readonly string[] = []): Promise<void> {
    const next = this.capturing.then(() => this.captureNow(tables, selection));
    this.capturing = next.catch(() => {});
    return next;
  }

  async replicate(options: ReplicateOptions<Lsn>): Promise<PgReplication> {
    await this.assertServer();
    // Before the slot: pgoutput looks the publication up as of each change's position, so one
    // created after the slot's consistent point fails the decoding of everything before it.
    await this.capture([]);
    return PgReplication.open({
      ...options,
      url: this.options.url,
      slotName: this.slotName,
      publicationName: this.publicationName,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      sql: this.sql,
      lookup: this.lookup(),
      blockers: () => this.blockers(),
      createSlot: async () => {
        const conn = await this.replicationConnection('tidemark:hub');
        try {
          return (
            await this.bounded(
              conn.createLogicalSlot({ slotName: this.slotName, snapshot: 'nothing' }),
              conn,
              this.slotName,
            )
          ).consistentPoint;
        } finally {
          await conn.close();
        }
      },
    });
  }

  /**
   * Creates a TEMPORARY slot with an exported snapshot and reads the tables inside it. The slot is
   * named uniquely per attempt (a killed process's temporary slot lingers until its walsender
   * notices) and only pins the snapshot: changes come from the shared slot. Its connection stays
   * open and idle until the rows were read, since the snapshot lives only as long as it does.
   */
  async snapshot(tables: readonly TableSchema[], options: SnapshotOptions): Promise<SourceSnapshot<Lsn>> {
    const conn = await this.replicationConnection('tidemark:snapshot');
    let slot: { consistentPoint: Lsn; snapshotName: string | null };
    try {
      const slotName = `${this.slotName}_snap_${randomBytes(4).toString('hex')}`;
      slot = await this.bounded(
        conn.createLogicalSlot({ slotName, snapshot: 'export', temporary: true }),
        conn,
        slotName,
      );
    } catch (err) {
      await conn.close().catch(() => {});
      throw err;
    }
    if (!slot.snapshotName) {
      await conn.close().catch(() => {});
      throw new TidemarkError('INTERNAL', { detail: 'slot created without an exported snapshot' });
    }
    const snapshotName = slot.snapshotName;
    const read = (of: readonly TableSchema[]) =>
      readSnapshot({
        url: this.options.url,
        snapshotName,
        tables: of,
        parallelism: options.parallelism,
        chunkRows: options.chunkRows,
        ...(options.bufferBytes === undefined ? {} : { bufferBytes: options.bufferBytes }),
      });
    // The consistent point P is where decoding starts (`start_decoding_at`): PostgreSQL streams
    // every commit whose record starts at or after P (SnapBuildXactNeedsSkip: origptr < P is
    // skipped), and the exported snapshot holds exactly the commits before it. A commit record
    // can start exactly at P, so the snapshot's position is P − 1: "every commit ≤ P − 1".
    return {
      position: Lsn.fromBigInt(slot.consistentPoint.value - 1n),
      rows: read(tables),
      // The exported snapshot stays importable while `conn` (the slot's session) is open.
      rowsOf: read,
      rowsInKeyOrder: (table) =>
        readInKeyOrder({
          url: this.options.url,
          snapshotName,
          table,
          ...(options.bufferBytes === undefined ? {} : { bufferBytes: options.bufferBytes }),
        }),
      release: () => conn.close().catch(() => {}),
    };
  }

  openChunkReader(table: TableSchema): PgChunkReader {
    return new PgChunkReader(this.options.url, table);
  }

  /** A read-only snapshot for verify and reconcile (`verify-read.ts`). */
  openRead(): Promise<SourceReadSession> {
    return openPgSourceRead(this.options.url);
  }

  async progress(): Promise<SourceProgress<Lsn>> {
    const { rows } = await this.sql.query<{ wal: string; active: boolean | null; confirmed: string | null }>(
      `SELECT pg_current_wal_lsn()::text AS wal,
              (SELECT active FROM pg_replication_slots WHERE slot_name = $1) AS active,
              (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1) AS confirmed`,
      [this.slotName],
      'reading the slot',
    );
    const r = rows[0]!;
    return {
      end: Lsn.parse(r.wal),
      acknowledged: r.confirmed ? Lsn.parse(r.confirmed) : null,
      streaming: r.active === true,
    };
  }

  /** WAL the source retains for the shared slot (current WAL − restart_lsn), in bytes; null without a slot. */
  async retainedBytes(): Promise<number | null> {
    try {
      const { rows } = await this.sql.query<{ b: string | null }>(
        `SELECT (pg_current_wal_lsn() - restart_lsn)::text AS b FROM pg_replication_slots WHERE slot_name = $1`,
        [this.slotName],
        'reading the slot',
      );
      const b = rows[0]?.b;
      return b == null ? null : Number(b.split('.')[0]);
    } catch {
      return null;
    }
  }

  /**
   * Drops the shared slot, the publication and the schema-change capture (the last changefeed of
   * the source was removed). An active slot (another process streams it) is left alone.
   */
  async dropSourceObjects(): Promise<void> {
    await this.sql.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`,
      [this.slotName],
      'dropping the shared slot',
    );
    await this.sql.query(
      `DROP PUBLICATION IF EXISTS "${this.publicationName}"`,
      [],
      'dropping the publication',
    );
    const { rows } = await this.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_publication WHERE pubname LIKE 'tidemark\\_src\\_%'`,
    );
    if ((rows[0]?.n ?? 0) === 0) {
      await this.sql.query(uninstallSql(), [], 'removing the schema-change capture').catch(() => {});
    }
  }

  async close(): Promise<void> {
    await this.sql.close();
  }

  /** wal_level and version, once per connector (read-only; a bad server creates nothing). */
  private async assertServer(): Promise<void> {
    if (this.checked) return;
    const { rows } = await this.sql.query<{ wal: string; version: number }>(
      `SELECT current_setting('wal_level') AS wal, current_setting('server_version_num')::int AS version`,
      [],
      'checking wal_level',
    );
    const r = rows[0]!;
    if (r.wal !== 'logical')
      throw new TidemarkError('SOURCE_WAL_LEVEL', { detail: `wal_level is '${r.wal}' on the source` });
    const problem = versionProblem(r.version);
    if (problem) throw new TidemarkError('SOURCE_VERSION', { detail: problem });
    this.checked = true;
  }

  private async captureNow(tables: readonly TableSchema[], selection: readonly string[]): Promise<void> {
    await this.assertServer();
    const name = this.publicationName;
    if (tables.length === 0 && selection.length === 0 && this.publicationReady) return;
    const { rows: pubs } = await this.sql.query<{ viaroot: boolean }>(
      `SELECT pubviaroot AS viaroot FROM pg_publication WHERE pubname = $1`,
      [name],
      'reading the publication',
    );
    if (pubs.length === 0) {
      await this.ignoreDuplicate(
        this.sql.query(
          `CREATE PUBLICATION "${name}" WITH (publish_via_partition_root = true)`,
          [],
          'creating the publication',
        ),
      );
    } else if (!pubs[0]!.viaroot) {
      await this.sql.query(
        `ALTER PUBLICATION "${name}" SET (publish_via_partition_root = true)`,
        [],
        'altering the publication',
      );
    }
    const { rows } = await this.sql.query<{ oid: number }>(
      `SELECT prrelid AS oid FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = $1`,
      [name],
      'reading the publication',
    );
    this.publicationReady = true;
    const have = new Set(rows.map((r) => r.oid));
    for (const t of tables) {
      if (have.has(t.relationId)) continue;
      // One table at a time, by OID: a table renamed meanwhile is still the one described, and
      // one added by another process meanwhile is not an error.
      await this.ignoreDuplicate(
        this.sql.query(
          // A table dropped meanwhile (its drop still to be streamed) is left alone.
          `DO $do$ BEGIN IF EXISTS (SELECT 1 FROM pg_class WHERE oid = ${t.relationId}::oid) THEN
             EXECUTE format('ALTER PUBLICATION %I ADD TABLE %s', $q$${name}$q$, ${t.relationId}::oid::regclass);
           END IF; END $do$`,
          [],
          `adding ${quoteTable(t)} to the publication`,
        ),
      );
    }
    await this.installCapture();
    if (this.schemaCapture === 'ddl-trigger' && selection.length > 0) {
      const patterns = selection.map((entry) =>
        likePatterns(splitTablePattern(entry), isTablePattern(entry)),
      );
      await this.sql.query(
        `INSERT INTO _tidemark.capture_patterns (pubname, schema_like, name_like)
         SELECT $1, s, n FROM unnest($2::text[], $3::text[]) AS p(s, n) ON CONFLICT DO NOTHING`,
        [name, patterns.map((p) => p.schema), patterns.map((p) => p.name)],
        'recording the selection for tables created later',
      );
    }
    if (this.schemaCapture === 'ddl-trigger' && tables.length > 0) {
      // The partitions of each partitioned root as they are now: the trigger reports those
      // attached with rows, or detached, against this.
      await this.sql.query(
        `SELECT _tidemark.note_partitions(c.oid) FROM pg_class c
          WHERE c.oid = ANY($1::oid[]) AND c.relkind = 'p'
            AND NOT EXISTS (SELECT 1 FROM _tidemark.partitions p WHERE p.root = c.oid AND p.leaf = 0)`,
        [tables.map((t) => t.relationId)],
        'recording the partitions of partitioned tables',
      );
    }
  }

  private async installCapture(): Promise<void> {
    if (this.schemaCapture !== null) return;
    const { rows } = await this.sql.query<{ superuser: boolean; installed: string | null }>(
      `SELECT r.rolsuper AS superuser,
              (SELECT obj_description(n.oid, 'pg_namespace') FROM pg_namespace n WHERE n.nspname = '_tidemark') AS installed
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    const r = rows[0];
    const current = r?.installed?.includes(`(version ${DDL_CAPTURE_VERSION})`) ?? false;
    const triggers = await this.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_event_trigger WHERE evtname IN ('tidemark_ddl', 'tidemark_drop', 'tidemark_rewrite')`,
    );
    if (current && triggers.rows[0]?.n === 3) {
      this.schemaCapture = 'ddl-trigger';
      return;
    }
    if (!r?.superuser) {
      this.schemaCapture = 'relation-messages';
      this.options.onWarning?.('schema changes are seen only through Relation messages (not a superuser)', {
        source: maskUri(this.options.url),
        lost: 'renames show as a drop and an add; an added column gets the value the catalog holds when the change arrives',
      });
      return;
    }
    await this.sql.query(installSql(), [], 'installing the schema-change capture');
    this.schemaCapture = 'ddl-trigger';
  }

  private async ignoreDuplicate(q: Promise<unknown>): Promise<void> {
    try {
      await q;
    } catch (err) {
      // 42710 duplicate_object: another changefeed or process got there first.
      const cause = (err as { cause?: { code?: string } }).cause;
      if (cause?.code !== '42710') throw err;
    }
  }

  private replicationConnection(applicationName: string): Promise<ReplicationConnection> {
    return ReplicationConnection.connect({
      url: this.options.url,
      applicationName,
      sessionSettings: { ...SESSION_SETTINGS },
    });
  }

  /**
   * Slot creation waits for every transaction running on the source to end (to find a
   * consistent point), prepared ones included. Past the timeout it gives up with the
   * transactions in the way named, and ends its own walsender: closing the socket does not, since
   * a backend waiting on a lock never reads it — the slot would stay half made, held by a session
   * nobody owns, until the blocking transaction ends.
   */
  private async bounded<T>(work: Promise<T>, conn: ReplicationConnection, slotName: string): Promise<T> {
    const timeoutMs = this.options.snapshotStartTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | null = null;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    try {
      const first = await Promise.race([work, timedOut]);
      if (first !== 'timeout') return first;
    } finally {
      if (timer) clearTimeout(timer);
    }
    work.catch(() => {});
    const blockers = await this.blockers().catch(() => 'could not list them');
    // Only the session creating this attempt's slot (still without a confirmed position).
    await this.sql
      .query(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
          WHERE slot_name = $1 AND active_pid IS NOT NULL AND confirmed_flush_lsn IS NULL`,
        [slotName],
        'ending a slot creation that timed out',
      )
      .catch(() => {});
    await conn.close().catch(() => {});
    throw new TidemarkError('SOURCE_SNAPSHOT_BLOCKED', {
      detail: `no consistent point within ${timeoutMs} ms on ${maskUri(this.options.url)}: waiting for ${blockers}`,
    });
  }

  /** The transactions a new slot waits for: prepared ones and open ones, oldest first. */
  private async blockers(): Promise<string> {
    const { rows: prepared } = await this.sql.query<{
      gid: string;
      owner: string;
      database: string;
      age: string;
    }>(
      `SELECT gid, owner, database, (now() - prepared)::text AS age FROM pg_prepared_xacts ORDER BY prepared`,
    );
    const { rows: open } = await this.sql.query<{ pid: number; state: string; age: string; query: string }>(
      `SELECT pid, state, (now() - xact_start)::text AS age, left(query, 80) AS query
         FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 5`,
    );
    const parts = [
      ...prepared.map(
        (p) =>
          `prepared transaction '${p.gid}' (owner ${p.owner}, database ${p.database}, prepared ${p.age} ago)`,
      ),
      ...open.map((o) => `transaction of pid ${o.pid} (${o.state} for ${o.age}: ${o.query})`),
    ];
    return parts.length > 0 ? parts.join('; ') : 'transactions that ended meanwhile';
  }

  private lookup(): CatalogLookup {
    const types = new Map<string, Promise<{ typeName: string; enumType: EnumType | null }>>();
    return {
      type: (oid, typmod) => {
        const key = `${oid}/${typmod}`;
        let hit = types.get(key);
        if (!hit) {
          hit = this.sql
            .query<{ name: string | null; enumoid: number | null }>(
              `SELECT ${portableTypeSql('$2::int')} AS name, ${ENUM_OID_SQL} AS enumoid
                 FROM (SELECT $1::oid AS oid) x ${typeJoinsSql('x.oid')}`,
              [oid, typmod],
              'reading a type',
            )
            .then(async ({ rows }) => {
              const r = rows[0];
              if (!r?.name) return { typeName: 'text', enumType: null };
              if (r.enumoid === null) return { typeName: r.name, enumType: null };
              const e = await this.sql.query<{ schema: string; name: string; labels: string[] }>(
                `SELECT n.nspname AS schema, t.typname AS name,
                        array(SELECT enumlabel::text FROM pg_enum WHERE enumtypid = t.oid ORDER BY enumsortorder) AS labels
                   FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1`,
                [r.enumoid],
              );
              const en = e.rows[0];
              return {
                typeName: r.name,
                enumType: en ? { schema: en.schema, name: en.name, labels: en.labels } : null,
              };
            });
          hit.catch(() => types.delete(key));
          types.set(key, hit);
        }
        return hit;
      },
      table: (oid) =>
        this.sql.exclusive(async (c) => {
          const rows = await tableRows(c, 'c.oid = $1', [oid]);
          if (rows.length === 0) return null;
          const [t] = await describeTables(c, rows, { requireKey: false });
          return t instanceof TidemarkError || t === undefined ? null : t;
        }, 'describing a table'),
      missingValue: async (oid, column) => {
        const { rows } = await this.sql.query<{ v: string | null }>(
          `SELECT CASE WHEN atthasmissing THEN (attmissingval::text::text[])[1] END AS v
             FROM pg_attribute WHERE attrelid = $1 AND attname = $2 AND NOT attisdropped`,
          [oid, column],
        );
        return rows[0]?.v ?? null;
      },
    };
  }
}

/** Why this server version cannot be used, or null. */
/** The catalog rows `describeTables` reads, for the relations matching `where` (over `c`, `n`). */
async function tableRows(c: pg.Client, where: string, params: unknown[] = []): Promise<CatalogRelation[]> {
  const { rows } = await c.query<CatalogRelation>(
    `SELECT c.oid AS oid, n.nspname AS schema, c.relname AS name, c.relreplident AS replident,
            c.relkind::text AS relkind, c.relpersistence::text AS persistence
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${where} ORDER BY 2, 3`,
    params,
  );
  return rows;
}

interface CatalogRelation {
  oid: number;
  schema: string;
  name: string;
  replident: string;
  relkind: string;
  persistence: string;
}

export function versionProblem(num: number): string | null {
  const major = Math.floor(num / 10000);
  const minor = num % 10000;
  if (major < 14)
    return `PostgreSQL ${formatVersion(num)} is not supported (14 or later is needed: pgoutput's logical messages carry schema changes)`;
  const fixed = FIXED_MINOR[major];
  if (fixed !== undefined && minor < fixed) {
    return `PostgreSQL ${formatVersion(num)} can lose changes when tables join a publication that is being decoded (fixed in ${major}.${fixed})`;
  }
  return null;
}

function formatVersion(num: number): string {
  return `${Math.floor(num / 10000)}.${num % 10000}`;
}
