/**
 * Helpers for the change hub's tests against a real PostgreSQL: a hub on the real connector, the
 * reference stream (a second slot of PostgreSQL's own, read over SQL), a workload, and
 * transactions as compared.
 *
 * The reference is independent of everything the hub adds: its own publication and slot,
 * decoded from `pg_logical_slot_get_binary_changes` (no replication protocol, no schema tracker,
 * no log), so a subscription equal to it is equal to what PostgreSQL committed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import type { ChangeMessage } from '../../src/core/change.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { ChangeHub, type ChangeHubOptions } from '../../src/log/hub.ts';
import type { TidemarkError } from '../../src/errors/tidemark-error.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { PostgresConnector } from '../../src/source/postgres/pg-connector.ts';
import { decodePgoutput } from '../../src/source/postgres/pgoutput-decoder.ts';
import type { TestDatabase } from '../support/db.ts';
import { plain } from './log-fixtures.ts';

/** A transaction as compared: its commit position and its row changes as plain data. */
export interface Txn {
  position: string;
  changes: unknown[];
}

export function tempHubDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-hub-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestHub {
  readonly hub: ChangeHub<Lsn>;
  readonly connector: PostgresConnector;
  /** Every error the hub reported (retried or not). */
  readonly errors: TidemarkError[];
  readonly warnings: { message: string; fields: Record<string, unknown> }[];
}

/** A hub in `dir` on `db` through the real PostgreSQL connector; stopped after the test. */
export function openHub(
  db: TestDatabase,
  dir: string,
  extra: Partial<Omit<ChangeHubOptions<Lsn>, 'connector' | 'dir'>> = {},
): TestHub {
  const connector = new PostgresConnector({ url: db.url, heartbeatIntervalMs: 60_000 });
  const errors: TidemarkError[] = [];
  const warnings: TestHub['warnings'] = [];
  const hub = ChangeHub.open<Lsn>({
    connector,
    dir,
    onError: (e) => errors.push(e),
    onWarning: (message, fields) => warnings.push({ message, fields }),
    ...extra,
  });
  onTestFinished(async () => {
    await hub.stop();
    await connector.close();
  });
  return { hub, connector, errors, warnings };
}

/** The tables named, as the connector describes them (in the order given). */
export async function describeTables(
  connector: PostgresConnector,
  names: readonly string[],
): Promise<TableSchema[]> {
  const { tables } = await connector.describe(names.map((n) => `public.${n}`));
  return names.map((n) => tables.find((t) => t.name === n)!);
}

/** Polls `probe` every 20 ms until it returns a value other than undefined (the test's timeout bounds it). */
export async function until<T>(probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Reads transactions until the one committing at or after `last`; keeps those with row changes
 * (for `tables` only, when given). Begin and schema messages are left out.
 */
export async function readTxns(
  it: AsyncIterator<ChangeMessage>,
  last: Lsn,
  tables?: Set<string>,
): Promise<Txn[]> {
  const out: Txn[] = [];
  let changes: unknown[] = [];
  for (;;) {
    const n = await it.next();
    if (n.done) throw new Error('stream ended');
    const m = n.value;
    if (m.tag === 'begin' || m.tag === 'schema') continue;
    if (m.tag === 'commit') {
      if (changes.length > 0) out.push({ position: m.position.toString(), changes });
      changes = [];
      if (last.compare(m.position) <= 0) return out;
      continue;
    }
    const p = onlyTables(plain(m), tables);
    if (p !== null) changes.push(p);
  }
}

/** A plain change narrowed to `tables` (null: none of its tables), or as it is. */
function onlyTables(change: unknown, tables: Set<string> | undefined): unknown {
  if (!tables) return change;
  const c = change as { table?: string; tables?: string[] };
  if (c.table !== undefined) return tables.has(c.table) ? c : null;
  const kept = (c.tables ?? []).filter((t) => tables.has(t));
  return kept.length > 0 ? { ...c, tables: kept } : null;
}

/** `txns` as a subscriber of `tables` sees them: other tables' changes out, empty transactions out. */
export function forTables(txns: readonly Txn[], tables: Set<string>): Txn[] {
  return txns
    .map((t) => ({ ...t, changes: t.changes.map((c) => onlyTables(c, tables)).filter((c) => c !== null) }))
    .filter((t) => t.changes.length > 0);
}

/** PostgreSQL's own stream of `tables`: a publication and a pgoutput slot of the reference's own. */
export class ReferenceSlot {
  private readonly relations = new Map<number, string>();
  private pending: Txn[] = [];
  private open: { position: string; changes: unknown[] } | null = null;

  private constructor(
    private readonly db: TestDatabase,
    readonly name: string,
  ) {}

  /** Created now: it holds every transaction committed from here on. */
  static async create(db: TestDatabase, tables: readonly string[]): Promise<ReferenceSlot> {
    const name = 'reference';
    await db.query(`CREATE PUBLICATION ${name} FOR TABLE ${tables.join(', ')}`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
    return new ReferenceSlot(db, name);
  }

  /**
   * The transactions with changes committed after the previous call, up to the first one
   * committed at or after `last` (waits for it); those after it stay for the next call.
   */
  async through(last: Lsn): Promise<Txn[]> {
    for (;;) {
      const i = this.pending.findIndex((t) => last.compare(Lsn.parse(t.position)) <= 0);
      if (i >= 0) return this.pending.splice(0, i + 1);
      await this.consume();
    }
  }

  /** The transactions with changes committed after `after`, up to `last` (consumes the slot). */
  async between(after: Lsn, last: Lsn): Promise<Txn[]> {
    return (await this.through(last)).filter((t) => after.compare(Lsn.parse(t.position)) < 0);
  }

  private async consume(): Promise<void> {
    const { rows } = await this.db.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_get_binary_changes($1::name, NULL, NULL, 'proto_version', '1', 'publication_names', $1::text)`,
      [this.name],
    );
    if (rows.length === 0) await new Promise((r) => setTimeout(r, 20));
    for (const { data } of rows) {
      const m = decodePgoutput(data);
      const name = (id: number) => this.relations.get(id)!;
      switch (m.tag) {
        case 'relation':
          this.relations.set(m.relationId, m.name);
          break;
        case 'begin':
          this.open = { position: m.finalLsn.toString(), changes: [] };
          break;
        case 'commit':
          if (this.open && this.open.changes.length > 0) this.pending.push(this.open);
          this.open = null;
          break;
        case 'insert':
          this.open!.changes.push({ tag: 'insert', table: name(m.relationId), row: m.row });
          break;
        case 'update':
          this.open!.changes.push({
            tag: 'update',
            table: name(m.relationId),
            row: m.row,
            old: m.old,
            oldIsFull: m.oldKind === 'full',
          });
          break;
        case 'delete':
          this.open!.changes.push({ tag: 'delete', table: name(m.relationId), old: m.old });
          break;
        case 'truncate':
          this.open!.changes.push({ tag: 'truncate', tables: m.relationIds.map(name) });
          break;
        default:
          break;
      }
    }
  }
}

/** A deterministic mix of inserts, updates, deletes and a truncate over `tables`. */
export async function workload(
  db: TestDatabase,
  tables: readonly string[],
  seed: number,
  txns: number,
): Promise<void> {
  let s = seed;
  const rnd = (n: number) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
  for (let i = 0; i < txns; i++) {
    const stmts: string[] = [
      `INSERT INTO ${tables[i % tables.length]} VALUES (${100 + i}, 'n${seed}') ON CONFLICT DO NOTHING`,
    ];
    for (let k = 0; k < 1 + rnd(4); k++) {
      const t = tables[rnd(tables.length)]!;
      const id = rnd(50);
      switch (rnd(3)) {
        case 0:
          stmts.push(
            `INSERT INTO ${t} VALUES (${id}, 'v${seed}-${i}-${k}') ON CONFLICT (id) DO UPDATE SET v = excluded.v`,
          );
          break;
        case 1:
          stmts.push(`UPDATE ${t} SET v = v || '+' WHERE id % 7 = ${id % 7}`);
          break;
        default:
          stmts.push(`DELETE FROM ${t} WHERE id = ${id}`);
      }
    }
    if (i === Math.floor(txns / 2)) stmts.push(`TRUNCATE ${tables[rnd(tables.length)]}`);
    await db.query(`BEGIN; ${stmts.join('; ')}; COMMIT`);
  }
}

/** The WAL insert position: every commit after this call is past it. */
export async function walNow(db: TestDatabase): Promise<Lsn> {
  const { rows } = await db.query<{ l: string }>(`SELECT pg_current_wal_insert_lsn()::text AS l`);
  return Lsn.parse(rows[0]!.l);
}

/** The slot's confirmed_flush_lsn. */
export async function confirmed(db: TestDatabase, slot: string): Promise<Lsn> {
  const { rows } = await db.query<{ c: string }>(
    `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return Lsn.parse(rows[0]!.c);
}

/** The positions recorded in `dir/subscriptions.json`, by subscription id (throws if torn). */
export function durablePositions(dir: string): Map<string, Lsn> {
  const file = JSON.parse(readFileSync(join(dir, 'subscriptions.json'), 'utf8')) as {
    subscriptions: { id: string; position: string }[];
  };
  return new Map(file.subscriptions.map((s) => [s.id, Lsn.parse(s.position)]));
}

/**
 * Resident memory of the process minus file-backed pages (RssAnon + RssShmem): the log's
 * memory-mapped pages are page cache the kernel reclaims, and would otherwise count the log's
 * size (VmRSS − RssFile; see src/log/README.md).
 */
export function rssBytes(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return (kb('RssAnon') + kb('RssShmem')) * 1024;
}
