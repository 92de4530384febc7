/**
 * Preflight of a PostgreSQL source against its catalog, read-only: every prerequisite of a
 * changefeed, each reported with a fix (`tidemark doctor`, the server before a create). The
 * runtime can reuse the individual checks (exported) where it refuses to start.
 *
 *   reachable + TLS ─► version (the minors the connector refuses) ─► wal_level ─► replication
 *   privilege ─► schema-change capture (superuser) ─► slots / wal senders headroom ─► existing
 *   slots and the WAL they hold ─► prepared transactions ─► selected tables: found, SELECT
 *   privilege, and what the connector's catalog refuses (catalog.ts) ─► publication rights
 */
import type pg from 'pg';
import type { DoctorCheck } from '../../core/doctor-check.ts';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { describeTables, resolveTables } from './catalog.ts';
import { DDL_CAPTURE_VERSION } from './ddl-capture.ts';
import { versionProblem } from './pg-connector.ts';
import { sourceObjectName } from './source-names.ts';
import { connectPgClient, pgTlsPlan } from './pg-tls.ts';
import { formatBytes } from '../../core/units.ts';

export interface SourceDoctorOptions {
  uri: string;
  /** The changefeed's `tables` (names and patterns). */
  tables: readonly string[];
  /** An idle slot holding more WAL than this is a warning; default 1 GiB. */
  retainedWalWarnBytes?: number;
}

/** Every check, in order; never throws (an unreachable source is one failed check). */
export async function checkPostgresSource(opts: SourceDoctorOptions): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  let client: pg.Client;
  try {
    const plan = pgTlsPlan(opts.uri);
    client = await connectPgClient(
      opts.uri,
      { application_name: 'tidemark doctor', connectionTimeoutMillis: 10_000 },
      { role: 'source', action: 'connecting' },
    );
    const tls = await client.query<{ ssl: boolean; version: string | null }>(
      'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    const row = tls.rows[0];
    checks.push({
      id: 'source.reachable',
      status: 'ok',
      detail: `connected to ${maskUri(opts.uri)}, ${row?.ssl ? `TLS ${row.version ?? ''}`.trim() : 'no TLS'} (sslmode=${plan.mode}${plan.verify === 'none' ? '' : `, certificate verified: ${plan.verify === 'full' ? 'chain and host name' : 'chain'}`})`,
      ...(row?.ssl || plan.mode === 'disable'
        ? {}
        : { fix: 'The connection is not encrypted: turn TLS on at the server and use sslmode=verify-full.' }),
    });
  } catch (err) {
    const e = err instanceof TidemarkError ? err : new TidemarkError('INTERNAL', { detail: String(err) });
    checks.push({ id: 'source.reachable', status: 'fail', detail: e.message, fix: e.hint });
    return checks;
  }
  try {
    checks.push(await checkVersion(client));
    checks.push(await checkWalLevel(client));
    checks.push(await checkReplicationPrivilege(client));
    checks.push(await checkSchemaCapture(client));
    checks.push(...(await checkSlotHeadroom(client, sourceObjectName(opts.uri))));
    checks.push(...(await checkExistingSlots(client, opts.retainedWalWarnBytes ?? 1024 ** 3)));
    checks.push(await checkPreparedTransactions(client));
    checks.push(...(await checkTables(client, opts.tables)));
    checks.push(await checkPublicationRights(client, sourceObjectName(opts.uri)));
  } catch (err) {
    const e = err instanceof TidemarkError ? err : new TidemarkError('INTERNAL', { detail: String(err) });
    checks.push({ id: 'source.catalog', status: 'fail', detail: e.message, fix: e.hint });
  } finally {
    await client.end().catch(() => {});
  }
  return checks;
}

/** The server version against the minor releases the connector refuses (`versionProblem`). */
export async function checkVersion(client: pg.ClientBase): Promise<DoctorCheck> {
  const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  const num = Number(rows[0]?.v ?? 0);
  const problem = versionProblem(num);
  return problem === null
    ? { id: 'source.version', status: 'ok', detail: `PostgreSQL ${Math.floor(num / 10_000)}.${num % 10_000}` }
    : {
        id: 'source.version',
        status: 'fail',
        detail: problem,
        fix: 'Upgrade to the latest minor release of your major version (a minor upgrade needs only a restart).',
      };
}

/**
 * Schema changes in commit order need the event triggers of ddl-capture.ts, which only a
 * superuser can create: installed already (by an earlier superuser run) or installable now is
 * ok; otherwise the changefeed runs degraded (the connector's status warning), so a warning.
 */
export async function checkSchemaCapture(client: pg.ClientBase): Promise<DoctorCheck> {
  const { rows } = await client.query<{
    name: string;
    su: boolean;
    installed: string | null;
    triggers: number;
  }>(
    `SELECT r.rolname AS name, r.rolsuper AS su,
            (SELECT obj_description(n.oid, 'pg_namespace') FROM pg_namespace n WHERE n.nspname = '_tidemark') AS installed,
            (SELECT count(*)::int FROM pg_event_trigger
              WHERE evtname IN ('tidemark_ddl', 'tidemark_drop', 'tidemark_rewrite') AND evtenabled <> 'D') AS triggers
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const r = rows[0];
  const current = (r?.installed?.includes(`(version ${DDL_CAPTURE_VERSION})`) ?? false) && r?.triggers === 3;
  if (current)
    return {
      id: 'source.schema_capture',
      status: 'ok',
      detail: 'schema-change capture installed (event triggers in schema _tidemark)',
    };
  if (r?.su)
    return {
      id: 'source.schema_capture',
      status: 'ok',
      detail: `role ${r.name} is a superuser: the schema-change capture (event triggers in schema _tidemark) is installed on start`,
    };
  return {
    id: 'source.schema_capture',
    status: 'warn',
    detail: `role ${r?.name ?? '?'} is not a superuser and the schema-change capture is not installed: schema changes are seen only through Relation messages (a renamed column arrives as a drop and an add, an added column takes the value the catalog holds when the change arrives, tables created later are not captured)`,
    fix: 'Start Tidemark once with a superuser on this database (it installs its event triggers in schema _tidemark; later runs may use this role), or accept the degraded mode.',
  };
}

export async function checkWalLevel(client: pg.ClientBase): Promise<DoctorCheck> {
  const { rows } = await client.query<{ w: string }>(`SELECT current_setting('wal_level') AS w`);
  const w = rows[0]?.w ?? '?';
  return w === 'logical'
    ? { id: 'source.wal_level', status: 'ok', detail: 'wal_level = logical' }
    : {
        id: 'source.wal_level',
        status: 'fail',
        detail: `wal_level = ${w}`,
        fix: 'ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL.',
      };
}

export async function checkReplicationPrivilege(client: pg.ClientBase): Promise<DoctorCheck> {
  const { rows } = await client.query<{ name: string; repl: boolean; su: boolean }>(
    `SELECT rolname AS name, rolreplication AS repl, rolsuper AS su FROM pg_roles WHERE rolname = current_user`,
  );
  const r = rows[0];
  if (r?.repl || r?.su)
    return {
      id: 'source.replication_privilege',
      status: 'ok',
      detail: `role ${r.name} has ${r.su ? 'SUPERUSER' : 'REPLICATION'}`,
    };
  return {
    id: 'source.replication_privilege',
    status: 'fail',
    detail: `role ${r?.name ?? '?'} has neither REPLICATION nor SUPERUSER`,
    fix: `ALTER ROLE ${quote(r?.name ?? 'tidemark')} WITH REPLICATION;`,
  };
}

/** One slot for the source's puller (unless it exists) and a temporary one per snapshot. */
export async function checkSlotHeadroom(client: pg.ClientBase, slotName: string): Promise<DoctorCheck[]> {
  const { rows } = await client.query<{
    slots: number;
    max_slots: number;
    senders: number;
    max_senders: number;
    ours: boolean;
  }>(
    `SELECT (SELECT count(*) FROM pg_replication_slots)::int AS slots,
            current_setting('max_replication_slots')::int AS max_slots,
            (SELECT count(*) FROM pg_stat_replication)::int AS senders,
            current_setting('max_wal_senders')::int AS max_senders,
            EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS ours`,
    [slotName],
  );
  const r = rows[0];
  if (!r) return [];
  const needSlots = (r.ours ? 0 : 1) + 1;
  const freeSlots = r.max_slots - r.slots;
  const freeSenders = r.max_senders - r.senders;
  return [
    freeSlots >= needSlots
      ? {
          id: 'source.max_replication_slots',
          status: 'ok',
          detail: `${r.slots} of ${r.max_slots} replication slots used; Tidemark needs ${needSlots} more (its slot${r.ours ? ' exists' : ''}, one temporary per snapshot)`,
        }
      : {
          id: 'source.max_replication_slots',
          status: 'fail',
          detail: `${r.slots} of ${r.max_slots} replication slots used; Tidemark needs ${needSlots} more`,
          fix: `Raise max_replication_slots (ALTER SYSTEM SET max_replication_slots = ${r.slots + needSlots + 2}; restart), or drop unused slots (see source.slots).`,
        },
    freeSenders >= 2
      ? {
          id: 'source.max_wal_senders',
          status: 'ok',
          detail: `${r.senders} of ${r.max_senders} WAL senders busy; Tidemark needs 2 (streaming, snapshot)`,
        }
      : {
          id: 'source.max_wal_senders',
          status: 'fail',
          detail: `${r.senders} of ${r.max_senders} WAL senders busy; Tidemark needs 2 (streaming, snapshot)`,
          fix: `Raise max_wal_senders (ALTER SYSTEM SET max_wal_senders = ${r.senders + 4}; restart).`,
        },
  ];
}

/** Every slot on the server and the WAL it holds back; idle ones holding much are warnings. */
export async function checkExistingSlots(client: pg.ClientBase, warnBytes: number): Promise<DoctorCheck[]> {
  const { rows } = await client.query<{
    name: string;
    active: boolean;
    status: string | null;
    retained: string | null;
  }>(
    `SELECT slot_name AS name, active, wal_status AS status,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained
       FROM pg_replication_slots ORDER BY slot_name`,
  );
  if (rows.length === 0) return [{ id: 'source.slots', status: 'ok', detail: 'no replication slots yet' }];
  return rows.map((r) => {
    const bytes = Number(r.retained ?? 0);
    const held = `${r.name}: ${r.active ? 'active' : 'inactive'}, holds ${formatBytes(bytes)} of WAL${r.status ? ` (${r.status})` : ''}`;
    if (r.status === 'lost')
      return {
        id: 'source.slots',
        status: 'warn',
        detail: `${held}: the slot lost WAL it needed`,
        fix: `If nothing uses it: SELECT pg_drop_replication_slot('${r.name}');`,
      };
    if (!r.active && bytes > warnBytes)
      return {
        id: 'source.slots',
        status: 'warn',
        detail: held,
        fix: `An idle slot keeps WAL on the source's disk. If nothing will resume it: SELECT pg_drop_replication_slot('${r.name}');`,
      };
    return { id: 'source.slots', status: 'ok', detail: held };
  });
}

/** A prepared transaction left open blocks creating a slot (the snapshot would wait forever). */
export async function checkPreparedTransactions(client: pg.ClientBase): Promise<DoctorCheck> {
  const { rows } = await client.query<{ gid: string; age: string }>(
    `SELECT gid, (now() - prepared)::text AS age FROM pg_prepared_xacts ORDER BY prepared LIMIT 5`,
  );
  if (rows.length === 0)
    return { id: 'source.prepared_transactions', status: 'ok', detail: 'no prepared transactions open' };
  return {
    id: 'source.prepared_transactions',
    status: 'warn',
    detail: `prepared transactions open: ${rows.map((r) => `${r.gid} (${r.age})`).join(', ')}; creating a slot waits for them`,
    fix: "COMMIT PREPARED 'gid' or ROLLBACK PREPARED 'gid' for each one its owner has abandoned.",
  };
}

interface TableFacts {
  oid: number;
  replident: string;
  relkind: string;
  has_pk: boolean;
  can_select: boolean;
}

/**
 * The selected tables: found, readable, and what the connector refuses (catalog.ts decides:
 * unlogged, REPLICA IDENTITY NOTHING, no key without FULL, a partition that would break the
 * source's UPDATEs), each with the connector's own message and hint. A table named in `tables`
 * fails; one only a pattern matched is left out by the connector, so a warning.
 */
export async function checkTables(
  client: pg.ClientBase,
  selection: readonly string[],
): Promise<DoctorCheck[]> {
  let tables: Awaited<ReturnType<typeof resolveTables>>['rows'];
  let named: Set<number>;
  try {
    ({ rows: tables, named } = await resolveTables(client, selection));
  } catch (err) {
    const e = err as TidemarkError;
    return [{ id: 'source.tables', status: 'fail', detail: e.message, fix: e.hint }];
  }
  const described = await describeTables(client, tables, { requireKey: true });
  const { rows } = await client.query<TableFacts>(
    `SELECT c.oid::int AS oid, c.relreplident AS replident, c.relkind::text AS relkind,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            has_table_privilege(c.oid, 'SELECT') AS can_select
       FROM pg_class c WHERE c.oid = ANY($1::oid[])`,
    [tables.map((t) => t.oid)],
  );
  const facts = new Map(rows.map((r) => [r.oid, r]));
  const out: DoctorCheck[] = [];
  tables.forEach((t, i) => {
    const f = facts.get(t.oid);
    const name = `${quote(t.schema)}.${quote(t.name)}`;
    const problems: { detail: string; fix: string }[] = [];
    if (f && !f.can_select)
      problems.push({ detail: 'no SELECT privilege', fix: `GRANT SELECT ON ${name} TO current role;` });
    const d = described[i];
    if (d instanceof TidemarkError) {
      // "table s.t has no primary key …" → "no primary key …" after the line's "s.t: ".
      const text = (d.detail ?? d.message).replace(/^table \S+ (is |has )?/, '');
      problems.push({ detail: text, fix: d.hint });
    }
    if (problems.length > 0) {
      // A table only a pattern matched is left out by the connector (a status warning), not refused.
      const leftOut = !named.has(t.oid);
      out.push({
        id: 'source.table',
        status: leftOut ? 'warn' : 'fail',
        detail: `${name}: ${leftOut ? 'left out (matched by a pattern): ' : ''}${problems.map((p) => p.detail).join('; ')}`,
        fix: problems.map((p) => p.fix).join(' '),
      });
      return;
    }
    const identity =
      f?.replident === 'f'
        ? `REPLICA IDENTITY FULL${f.has_pk ? '' : ' (no key: duplicates kept)'}`
        : f?.replident === 'i'
          ? 'keyed by its replica identity index'
          : 'primary key';
    const partitioned = f?.relkind === 'p' ? ', partitioned (published as the root)' : '';
    out.push({ id: 'source.table', status: 'ok', detail: `${name}: ${identity}${partitioned}` });
  });
  return out;
}

/** The puller's publication exists (then its owner matters) or the role may create one. */
export async function checkPublicationRights(client: pg.ClientBase, pubName: string): Promise<DoctorCheck> {
  const { rows } = await client.query<{ exists: boolean; owns: boolean; can_create: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS exists,
            EXISTS (SELECT 1 FROM pg_publication p WHERE pubname = $1 AND pg_has_role(p.pubowner, 'USAGE')) AS owns,
            has_database_privilege(current_database(), 'CREATE') AS can_create`,
    [pubName],
  );
  const r = rows[0];
  if (r && (r.exists ? r.owns : r.can_create))
    return {
      id: 'source.publication',
      status: 'ok',
      detail: r.exists ? `publication ${pubName} exists and is ours` : `may create publication ${pubName}`,
    };
  return {
    id: 'source.publication',
    status: 'fail',
    detail: r?.exists
      ? `publication ${pubName} belongs to another role`
      : 'the role may not create publications in this database (needs CREATE on the database)',
    fix: r?.exists
      ? `ALTER PUBLICATION ${pubName} OWNER TO current role;`
      : 'GRANT CREATE ON DATABASE <db> TO <role>;',
  };
}

function quote(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}
