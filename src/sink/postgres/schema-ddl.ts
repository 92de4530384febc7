/**
 * The DDL that replays a source schema change (`core/schema-change.ts`) on a PostgreSQL sink,
 * inside the epoch's transaction. The source is PostgreSQL's dialect too, so most changes replay
 * as the same statement: a rename renames (the column keeps its values), a type change applies
 * the same cast, an added column takes the value existing rows got in the source.
 *
 *   dropped   → ALTER TABLE t DROP COLUMN c
 *   renamed   → ALTER TABLE t RENAME COLUMN a TO b
 *   retyped   → ALTER TABLE t ALTER COLUMN c TYPE T USING c::T
 *   added     → ALTER TABLE t ADD COLUMN c T [NOT NULL] DEFAULT 'v'::T; … DROP DEFAULT  (metadata only)
 *   key       → DROP CONSTRAINT <primary key>; ADD PRIMARY KEY (…)
 *   nullable  → ALTER COLUMN c SET | DROP NOT NULL
 *   generated → DROP COLUMN g / ADD COLUMN g T GENERATED ALWAYS AS (expr) STORED
 *   table     → SET SCHEMA, RENAME TO
 *
 * New enum labels are added apart, before (`enumLabelDdl`): PostgreSQL refuses to use a label
 * added in the same transaction, and adding one early is harmless.
 */
import type { ColumnChange, SchemaChange } from '../../core/schema-change.ts';
import { quoteIdent, quoteTable, type EnumType, type TableSchema } from '../../core/table-schema.ts';
import type pg from 'pg';
import { quoteLiteral } from './sql-text.ts';

/** How long one try of the sink's DDL waits for a table's lock. */
export const DDL_LOCK_WAIT_MS = 2_000;
/** Tries within the transaction before the epoch fails (SINK_LOCK_TIMEOUT) and is retried whole. */
const DDL_LOCK_TRIES = 10;

/**
 * Runs `before` (BEGIN and the fence, or nothing inside an open transaction), then `ddl` with its
 * lock waits bounded by DDL_LOCK_WAIT_MS (or the operator's `lock_timeout`, if shorter).
 * PostgreSQL queues every later lock request on a table behind a waiting ACCESS EXCLUSIVE one: an
 * ALTER that waits for a downstream reader's long query without bound makes every other reader
 * of the table wait too. A try that times out (55P03) is rolled back to a savepoint, so the work
 * the transaction holds stays; the readers go through during the pause, and the DDL is tried
 * again. After DDL_LOCK_TRIES the error is thrown, naming the sessions that hold locks, and the
 * epoch is retried after a back-off (SINK_LOCK_TIMEOUT).
 */
export async function runBoundedDdl(
  client: pg.Client,
  before: readonly string[],
  ddl: readonly string[],
): Promise<void> {
  if (ddl.length === 0) {
    if (before.length > 0) await client.query(before.join(';\n'));
    return;
  }
  const bound = `'${DDL_LOCK_WAIT_MS}ms'`;
  const bounded = [
    'SAVEPOINT tidemark_ddl',
    `SELECT set_config('lock_timeout', CASE WHEN current_setting('lock_timeout')::interval = '0' OR current_setting('lock_timeout')::interval > ${bound}::interval THEN ${bound} ELSE current_setting('lock_timeout') END, true)`,
    ...ddl,
    'SET LOCAL lock_timeout TO DEFAULT',
    'RELEASE SAVEPOINT tidemark_ddl',
  ];
  for (let attempt = 1; ; attempt++) {
    try {
      await client.query([...(attempt === 1 ? before : []), ...bounded].join(';\n'));
      return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // Not a lock wait, or `before` failed (no savepoint yet): the caller's failure.
      if (code !== '55P03' || !(await rolledBackToSavepoint(client))) throw err;
      if (attempt >= DDL_LOCK_TRIES) {
        (err as { detail?: string }).detail = await lockHolders(client);
        throw err;
      }
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
    }
  }
}

async function rolledBackToSavepoint(client: pg.Client): Promise<boolean> {
  try {
    await client.query('ROLLBACK TO SAVEPOINT tidemark_ddl');
    return true;
  } catch {
    return false;
  }
}

/** The other sessions of this database holding a lock on a table, for the error's detail. */
async function lockHolders(client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ pid: number; state: string | null; age: string | null; app: string }>(
    `SELECT DISTINCT a.pid, a.state, date_trunc('second', now() - a.xact_start)::text AS age, a.application_name AS app
       FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
      WHERE l.granted AND l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
        AND l.relation >= 16384 AND a.pid <> pg_backend_pid()
      ORDER BY 1 LIMIT 10`,
  );
  if (rows.length === 0) return 'no session holds a lock on a table now';
  const who = rows.map(
    (r) =>
      `pid ${r.pid} (${r.state ?? 'unknown state'}${r.age ? `, transaction open ${r.age}` : ''}${r.app ? `, ${r.app}` : ''})`,
  );
  return `sessions holding locks on tables: ${who.join('; ')}`;
}

/** `ALTER TYPE … ADD VALUE IF NOT EXISTS …` for labels `after` has that `before` lacks. */
export function enumLabelDdl(before: readonly EnumType[], after: readonly EnumType[]): string[] {
  const out: string[] = [];
  for (const e of after) {
    const old = before.find((b) => b.schema === e.schema && b.name === e.name);
    if (!old) continue; // a new enum type: created with the table or column that uses it
    e.labels.forEach((label, i) => {
      if (old.labels.includes(label)) return;
      const next = e.labels.slice(i + 1).find((l) => old.labels.includes(l));
      const where = next === undefined ? '' : ` BEFORE ${quoteLiteral(next)}`;
      out.push(`ALTER TYPE ${quoteTable(e)} ADD VALUE IF NOT EXISTS ${quoteLiteral(label)}${where}`);
    });
  }
  return out;
}

/**
 * The statements for a `table-altered` change, given the name of the sink table's primary-key
 * constraint (null when it has none). Runs against the table under its old name first.
 */
export function alterTableDdl(
  change: Extract<SchemaChange, { kind: 'table-altered' }>,
  primaryKeyConstraint: string | null,
): string[] {
  const { before, after } = change;
  const out: string[] = [];
  let at = quoteTable(before);
  if (before.schema !== after.schema) {
    out.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(after.schema)}`);
    out.push(`ALTER TABLE ${at} SET SCHEMA ${quoteIdent(after.schema)}`);
    at = `${quoteIdent(after.schema)}.${quoteIdent(before.name)}`;
  }
  if (before.name !== after.name) {
    out.push(`ALTER TABLE ${at} RENAME TO ${quoteIdent(after.name)}`);
  }
  at = quoteTable(after);
  const keyChanged = keyNames(before).join('\0') !== keyNames(after).join('\0');
  if (keyChanged && primaryKeyConstraint !== null) {
    out.push(`ALTER TABLE ${at} DROP CONSTRAINT ${quoteIdent(primaryKeyConstraint)}`);
  }
  for (const g of before.generated ?? []) {
    const kept = after.generated?.find((x) => x.name === g.name && x.expression === g.expression);
    if (!kept) out.push(`ALTER TABLE ${at} DROP COLUMN IF EXISTS ${quoteIdent(g.name)}`);
  }
  for (const c of change.columns) out.push(...columnDdl(at, c, after));
  for (const c of after.columns) {
    const old = before.columns.find((b) => b.name === renamedFrom(change.columns, c.name));
    const added = change.columns.some((x) => x.op === 'added' && x.column === c.name);
    if (!old || added || old.nullable === c.nullable) continue;
    out.push(`ALTER TABLE ${at} ALTER COLUMN ${quoteIdent(c.name)} ${c.nullable ? 'DROP' : 'SET'} NOT NULL`);
  }
  for (const g of after.generated ?? []) {
    const kept = before.generated?.find((x) => x.name === g.name && x.expression === g.expression);
    if (!kept) {
      out.push(
        `ALTER TABLE ${at} ADD COLUMN ${quoteIdent(g.name)} ${g.typeName} GENERATED ALWAYS AS (${g.expression}) STORED`,
      );
    }
  }
  if (keyChanged && !after.keyless && after.keyColumns.length > 0) {
    out.push(`ALTER TABLE ${at} ADD PRIMARY KEY (${keyNames(after).map(quoteIdent).join(', ')})`);
  }
  return out;
}

function columnDdl(at: string, c: ColumnChange, after: TableSchema): string[] {
  switch (c.op) {
    case 'dropped':
      return [`ALTER TABLE ${at} DROP COLUMN ${quoteIdent(c.column)}`];
    case 'renamed':
      return [`ALTER TABLE ${at} RENAME COLUMN ${quoteIdent(c.from)} TO ${quoteIdent(c.to)}`];
    case 'retyped':
      return [
        `ALTER TABLE ${at} ALTER COLUMN ${quoteIdent(c.column)} TYPE ${c.toType} USING ${quoteIdent(c.column)}::${c.toType}`,
      ];
    case 'added': {
      const col = after.columns.find((x) => x.name === c.column);
      const type = col?.typeName ?? 'text';
      const name = quoteIdent(c.column);
      if (c.fill.kind !== 'value') return [`ALTER TABLE ${at} ADD COLUMN ${name} ${type}`];
      const notNull = col && !col.nullable ? ' NOT NULL' : '';
      return [
        `ALTER TABLE ${at} ADD COLUMN ${name} ${type}${notNull} DEFAULT ${quoteLiteral(c.fill.text)}::${type}`,
        `ALTER TABLE ${at} ALTER COLUMN ${name} DROP DEFAULT`,
      ];
    }
  }
}

function keyNames(t: TableSchema): string[] {
  return t.keyless ? [] : t.keyColumns.map((i) => t.columns[i]?.name ?? '');
}

/** The name column `name` of the new shape had before (renames), or `name`. */
function renamedFrom(changes: readonly ColumnChange[], name: string): string {
  const r = changes.find((c) => c.op === 'renamed' && c.to === name);
  return r && r.op === 'renamed' ? r.from : name;
}
