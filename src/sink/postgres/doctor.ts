import type { DoctorCheck } from '../../core/doctor-check.ts';
import { maskUri } from '../../errors/mask.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { connectPgClient, pgTlsPlan } from '../../source/postgres/pg-tls.ts';

/**
 * Preflight of a PostgreSQL sink, read-only: reachable with the TLS asked for, and allowed to
 * create what the sink creates (schema `tidemark` with its checkpoint table, the target schemas
 * and tables), or those exist already.
 */
export async function checkPostgresSink(uri: string): Promise<DoctorCheck[]> {
  let client;
  const plan = (() => {
    try {
      return pgTlsPlan(uri);
    } catch {
      return null;
    }
  })();
  try {
    client = await connectPgClient(
      uri,
      { application_name: 'tidemark doctor', connectionTimeoutMillis: 10_000 },
      { role: 'sink', action: 'connecting' },
    );
  } catch (err) {
    const e = err instanceof TidemarkError ? err : new TidemarkError('INTERNAL', { detail: String(err) });
    return [{ id: 'sink.reachable', status: 'fail', detail: e.message, fix: e.hint }];
  }
  try {
    const { rows } = await client.query<{
      ssl: boolean | null;
      create_db: boolean;
      has_tidemark: boolean;
      create_tidemark: boolean | null;
      create_public: boolean | null;
      role: string;
    }>(
      `SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl,
              has_database_privilege(current_database(), 'CREATE') AS create_db,
              EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tidemark') AS has_tidemark,
              (SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = 'tidemark') AS create_tidemark,
              (SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = 'public') AS create_public,
              current_user AS role`,
    );
    const r = rows[0];
    const checks: DoctorCheck[] = [
      {
        id: 'sink.reachable',
        status: 'ok',
        detail: `connected to ${maskUri(uri)}, ${r?.ssl ? 'TLS' : 'no TLS'} (sslmode=${plan?.mode ?? '?'})`,
      },
    ];
    const checkpointsOk = r?.has_tidemark ? r.create_tidemark === true : r?.create_db === true;
    checks.push(
      checkpointsOk
        ? {
            id: 'sink.permissions',
            status: 'ok',
            detail: `role ${r?.role ?? '?'} may create the checkpoint table${r?.create_db ? ', schemas' : ''} and tables${r?.create_public ? ' in public' : ''}`,
          }
        : {
            id: 'sink.permissions',
            status: 'fail',
            detail: `role ${r?.role ?? '?'} may not create ${r?.has_tidemark ? 'tables in schema tidemark' : 'schema tidemark'} (the checkpoint table)`,
            fix: r?.has_tidemark
              ? `GRANT CREATE ON SCHEMA tidemark TO ${r.role};`
              : `GRANT CREATE ON DATABASE <db> TO ${r?.role ?? '<role>'}; (or create schema tidemark owned by it)`,
          },
    );
    return checks;
  } finally {
    await client.end().catch(() => {});
  }
}
