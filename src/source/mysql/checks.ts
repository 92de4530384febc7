/**
 * Prerequisites of a MariaDB source, each checked on its own with what was found and the fix.
 * Read-only: variables, `SHOW GRANTS`, and a `SELECT … LIMIT 0` per table.
 */
import type { Connection } from 'mysql2/promise';
import type { TableSchema } from '../../core/table-schema.ts';
import type { CheckResult } from '../connector.ts';

interface ServerVars {
  version: string;
  log_bin: string | number | null;
  binlog_format: string | null;
  binlog_row_image: string | null;
  binlog_row_metadata: string | null;
  server_id: string | number | null;
  gtid_binlog_pos: string | null;
  gtid_strict_mode: string | number | null;
  expire: string | number | null;
}

export async function readServerVars(conn: Connection): Promise<ServerVars> {
  const [rows] = await conn.query(
    `SELECT @@version AS version, @@log_bin AS log_bin, @@global.binlog_format AS binlog_format,
            @@global.binlog_row_image AS binlog_row_image, @@global.server_id AS server_id`,
  );
  const base = (rows as Record<string, unknown>[])[0]!;
  const optional = async (expr: string): Promise<string | null> => {
    try {
      const [r] = await conn.query(`SELECT ${expr} AS v`);
      const v = (r as { v: unknown }[])[0]?.v;
      return v === null || v === undefined ? null : String(v);
    } catch {
      return null;
    }
  };
  return {
    version: String(base.version),
    log_bin: base.log_bin as string | number | null,
    binlog_format: base.binlog_format as string | null,
    binlog_row_image: base.binlog_row_image as string | null,
    binlog_row_metadata: await optional('@@global.binlog_row_metadata'),
    server_id: base.server_id as string | number | null,
    gtid_binlog_pos: await optional('@@global.gtid_binlog_pos'),
    gtid_strict_mode: await optional('@@global.gtid_strict_mode'),
    expire: await optional('@@global.binlog_expire_logs_seconds'),
  };
}

export function isMariaDb(version: string): boolean {
  return /mariadb/i.test(version);
}

/** Checks the server's settings and the user's privileges (and `tables`' readability). */
export async function runChecks(conn: Connection, tables: readonly TableSchema[]): Promise<CheckResult[]> {
  const v = await readServerVars(conn);
  const out: CheckResult[] = [];
  const add = (id: string, ok: boolean, detail: string, fix: string, blocking = true) =>
    out.push({ id, ok, detail, blocking, ...(ok ? {} : { fix }) });
  const maria = isMariaDb(v.version);
  add(
    'server',
    maria,
    maria
      ? `MariaDB ${v.version}`
      : `MySQL ${v.version}: this connector speaks MariaDB's GTID binlog dump only`,
    'Use a MariaDB ≥ 10.5 source; MySQL 8 support (COM_BINLOG_DUMP_GTID) is not built yet.',
  );
  const logBin = String(v.log_bin) === '1' || String(v.log_bin).toUpperCase() === 'ON';
  add(
    'log_bin',
    logBin,
    logBin ? 'the binary log is on' : 'the binary log is off (log_bin = OFF)',
    'Start the server with log-bin (e.g. log-bin=mariadb-bin in [mysqld]) and restart it.',
  );
  const format = String(v.binlog_format ?? '').toUpperCase();
  add(
    'binlog_format',
    format === 'ROW',
    `binlog_format = ${format}`,
    'Set binlog_format=ROW in [mysqld] and restart (SET GLOBAL only affects new sessions).',
  );
  const image = String(v.binlog_row_image ?? '').toUpperCase();
  add(
    'binlog_row_image',
    image === 'FULL',
    `binlog_row_image = ${image}`,
    'Set binlog_row_image=FULL in [mysqld] and restart (SET GLOBAL only affects new sessions).',
  );
  const metadata = String(v.binlog_row_metadata ?? 'unsupported').toUpperCase();
  add(
    'binlog_row_metadata',
    metadata === 'FULL',
    `binlog_row_metadata = ${metadata}`,
    'Set binlog_row_metadata=FULL in [mysqld] (MariaDB ≥ 10.5): each row event then carries the column names and key in force where it was written.',
  );
  const serverId = Number(v.server_id ?? 0);
  add(
    'server_id',
    serverId > 0,
    `server_id = ${serverId}`,
    'Set server_id to a non-zero number unique in the replication topology.',
  );
  add(
    'gtid',
    maria && v.gtid_binlog_pos !== null,
    v.gtid_binlog_pos === null
      ? 'the server reports no GTID position'
      : `gtid_binlog_pos = ${v.gtid_binlog_pos || "''"}`,
    'MariaDB assigns GTIDs from 10.0 on; upgrade the server.',
  );
  const strict =
    String(v.gtid_strict_mode ?? '0') === '1' || String(v.gtid_strict_mode).toUpperCase() === 'ON';
  add(
    'gtid_strict_mode',
    strict,
    `gtid_strict_mode = ${strict ? 'ON' : 'OFF'}`,
    'Set gtid_strict_mode=ON: positions are ordered by GTID sequence numbers, which strict mode keeps increasing.',
    false,
  );
  const expire = Number(v.expire ?? 0);
  add(
    'binlog_retention',
    expire === 0 || expire >= 86_400,
    expire === 0 ? 'binary logs are kept until purged by hand' : `binary logs expire after ${expire} s`,
    'Keep binary logs longer than Tidemark may be stopped (binlog_expire_logs_seconds ≥ 86400): a purged binlog forces a new snapshot.',
    false,
  );
  out.push(...(await privilegeChecks(conn, tables)));
  return out;
}

async function privilegeChecks(conn: Connection, tables: readonly TableSchema[]): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const [grantRows] = await conn.query('SHOW GRANTS FOR CURRENT_USER()');
  const grants = (grantRows as Record<string, string>[]).map((r) => Object.values(r)[0] ?? '').join('\n');
  const global = grants
    .split('\n')
    .filter((g) => / ON \*\.\* /i.test(g))
    .join('\n');
  const all = /GRANT ALL PRIVILEGES ON \*\.\*/i.test(global);
  const slave = all || /REPLICATION SLAVE/i.test(global);
  out.push({
    id: 'privilege:replication-slave',
    ok: slave,
    detail: slave ? 'the user may read the binary log' : 'the user lacks REPLICATION SLAVE',
    blocking: true,
    ...(slave ? {} : { fix: 'GRANT REPLICATION SLAVE ON *.* TO the user in the URI.' }),
  });
  const client = all || /REPLICATION CLIENT|BINLOG MONITOR|SUPER/i.test(global);
  out.push({
    id: 'privilege:replication-client',
    ok: client,
    detail: client ? 'the user may list binary logs' : 'the user lacks REPLICATION CLIENT (BINLOG MONITOR)',
    blocking: true,
    ...(client
      ? {}
      : { fix: 'GRANT REPLICATION CLIENT ON *.* TO the user in the URI (MariaDB ≥ 10.5: BINLOG MONITOR).' }),
  });
  for (const t of tables) {
    const id = `privilege:select:${t.schema}.${t.name}`;
    try {
      await conn.query(
        `SELECT 1 FROM \`${t.schema.replaceAll('`', '``')}\`.\`${t.name.replaceAll('`', '``')}\` LIMIT 0`,
      );
      out.push({ id, ok: true, detail: `the user may read ${t.schema}.${t.name}`, blocking: true });
    } catch (err) {
      const msg = (err as { sqlMessage?: string; message?: string }).sqlMessage ?? String(err);
      out.push({
        id,
        ok: false,
        detail: `reading ${t.schema}.${t.name} fails: ${msg}`,
        blocking: true,
        fix: `GRANT SELECT ON \`${t.schema}\`.* TO the user in the URI.`,
      });
    }
  }
  return out;
}
