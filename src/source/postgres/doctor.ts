/**
 * Preflight of a PostgreSQL source against its catalog, read-only: every prerequisite of a
 * changefeed, each reported with a fix (`tidemark doctor`, the server before a create). The
 * runtime can reuse the individual checks (exported) where it refuses to start.
 *
 *   reachable + TLS ─► version (known logical-replication bugs) ─► wal_level ─► replication privilege
 *   ─► slots / wal senders headroom ─► existing slots and the WAL they hold ─► prepared transactions
 *   ─► selected tables: found, SELECT privilege, replica identity, key, partitioned ─► publication rights
 */
import type pg from 'pg';
import type { DoctorCheck } from '../../core/doctor-check.ts';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { resolveTables } from './catalog.ts';
import { sourceObjectName } from './source-names.ts';
import { connectPgClient, pgTlsPlan } from './pg-tls.ts';

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

/**
 * Minor releases before these lose changes when tables join a publication while it is streamed
 * (fixed in 15.13, 16.9, 17.5); 14 and older lack what Tidemark uses. `[major, first good minor]`.
 */
const FIXED_IN: readonly [number, number][] = [
  [15, 13],
  [16, 9],
  [17, 5],
];

/** `server_version_num` → ok, or the reason this version must not be used. */
export function versionVerdict(versionNum: number): { ok: boolean; text: string } {
  const major = Math.floor(versionNum / 10_000);
  const minor = versionNum % 10_000;
  const text = `PostgreSQL ${major}.${minor}`;
  if (major < 15) return { ok: false, text: `${text}: Tidemark needs PostgreSQL 15 or later` };
  const fixed = FIXED_IN.find(([m]) => m === major);
  if (fixed && minor < fixed[1]) {
    return {
      ok: false,
      text: `${text} can lose changes when tables join a publication that is being streamed (fixed in ${major}.${fixed[1]})`,
    };
  }
  return { ok: true, text };
}

export async function checkVersion(client: pg.ClientBase): Promise<DoctorCheck> {
  const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  const verdict = versionVerdict(Number(rows[0]?.v ?? 0));
  return verdict.ok
    ? { id: 'source.version', status: 'ok', detail: verdict.text }
    : {
        id: 'source.version',
        status: 'fail',
        detail: verdict.text,
        fix: 'Upgrade to the latest minor release of your major version (a minor upgrade needs only a restart).',
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
  schema: string;
  name: string;
  replident: string;
  relkind: string;
  has_pk: boolean;
  can_select: boolean;
  index_is_key: boolean | null;
}

/** The selected tables: found, readable, replica identity usable, a key or FULL, not partitioned. */
export async function checkTables(
  client: pg.ClientBase,
  selection: readonly string[],
): Promise<DoctorCheck[]> {
  let tables: { oid: number }[];
  try {
    tables = (await resolveTables(client, selection)).rows;
  } catch (err) {
    const e = err as TidemarkError;
    return [{ id: 'source.tables', status: 'fail', detail: e.message, fix: e.hint }];
  }
  const { rows } = await client.query<TableFacts>(
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relreplident AS replident,
            c.relkind::text AS relkind,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            has_table_privilege(c.oid, 'SELECT') AS can_select,
            (SELECT i.indisprimary FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) AS index_is_key
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = ANY($1::oid[])
      ORDER BY n.nspname, c.relname`,
    [tables.map((t) => t.oid)],
  );
  const out: DoctorCheck[] = [];
  for (const t of rows) {
    const name = `${quote(t.schema)}.${quote(t.name)}`;
    const id = `source.table`;
    const problems: { detail: string; fix: string }[] = [];
    if (!t.can_select)
      problems.push({ detail: 'no SELECT privilege', fix: `GRANT SELECT ON ${name} TO current role;` });
    if (t.relkind === 'p')
      problems.push({
        detail: 'partitioned: its changes arrive under the partitions’ names and are not replicated yet',
        fix: 'List the partitions in tables: instead (each with a key), until partitioned tables are replicated as their root.',
      });
    if (t.replident === 'n')
      problems.push({
        detail: 'REPLICA IDENTITY NOTHING: once published, every UPDATE and DELETE on the source would fail',
        fix: `ALTER TABLE ${name} REPLICA IDENTITY DEFAULT;`,
      });
    else if (t.replident === 'd' && !t.has_pk)
      problems.push({
        detail: 'no primary key and REPLICA IDENTITY DEFAULT: updates and deletes carry no key',
        fix: `Add a primary key, or ALTER TABLE ${name} REPLICA IDENTITY FULL; (rows then match on all columns).`,
      });
    else if (t.replident === 'i' && t.index_is_key === false)
      problems.push({
        detail:
          'REPLICA IDENTITY USING INDEX on an index that is not the primary key: changes would be keyed differently from the snapshot',
        fix: `ALTER TABLE ${name} REPLICA IDENTITY DEFAULT; (with a primary key) or REPLICA IDENTITY FULL;`,
      });
    if (problems.length > 0) {
      out.push({
        id,
        status: 'fail',
        detail: `${name}: ${problems.map((p) => p.detail).join('; ')}`,
        fix: problems.map((p) => p.fix).join(' '),
      });
    } else {
      const identity =
        t.replident === 'f'
          ? `REPLICA IDENTITY FULL${t.has_pk ? '' : ' (no key: duplicates kept)'}`
          : 'primary key';
      out.push({ id, status: 'ok', detail: `${name}: ${identity}` });
    }
  }
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

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[i]}`;
}
