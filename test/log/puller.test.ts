import { describe, expect, it, onTestFinished } from 'vitest';
import { readFileSync } from 'node:fs';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { Puller, type PullerOptions } from '../../src/source/postgres/puller.ts';
import type { PullerReader } from '../../src/source/postgres/puller-reader.ts';
import { PostgresSource } from '../../src/source/postgres/pg-source.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { eachMessage, type ChangeMessage } from '../../src/core/change.ts';
import { plain, tempLogDir } from './log-fixtures.ts';

const TABLES = ['t0', 't1', 't2', 't3', 't4'];

/** A transaction as compared: its commit position and its changes (begin/relation left out). */
interface Txn {
  position: string;
  changes: unknown[];
}

async function startPuller(
  db: TestDatabase,
  logDir: string,
  extra: Partial<PullerOptions> = {},
): Promise<Puller> {
  const p = await Puller.start({ url: db.url, logDir, heartbeatIntervalMs: 60_000, ...extra });
  onTestFinished(() => p.stop());
  return p;
}

/** A PostgresSource on its own slot over every table: the reference stream. */
async function directStream(db: TestDatabase): Promise<AsyncIterator<ChangeMessage>> {
  const src = new PostgresSource({
    url: db.url,
    changefeedId: 'direct',
    tables: TABLES,
    snapshot: { parallelism: 1, chunkRows: 1000 },
    heartbeatIntervalMs: 60_000,
  });
  onTestFinished(() => src.close());
  const { tables, published } = await src.prepare();
  await src.syncPublication(tables, published);
  const snap = await src.createSnapshot(tables);
  for await (const chunk of snap.rows) void chunk;
  return eachMessage(src.stream(snap.position))[Symbol.asyncIterator]();
}

/** Reads transactions until the one committing at `last`; keeps only those with changes for `tables`. */
async function readTxns(
  it: AsyncIterator<ChangeMessage>,
  last: string,
  tables?: Set<string>,
): Promise<Txn[]> {
  const out: Txn[] = [];
  let changes: unknown[] = [];
  for (;;) {
    const n = await it.next();
    if (n.done) throw new Error('stream ended');
    const m = n.value;
    if (m.tag === 'begin' || m.tag === 'relation') continue;
    if (m.tag === 'commit') {
      if (changes.length > 0) out.push({ position: m.position.toString(), changes });
      changes = [];
      if (Lsn.parse(last).compare(m.position) <= 0) return out;
      continue;
    }
    const p = plain(m) as { table?: string; tables?: string[] };
    if (tables && p.table !== undefined && !tables.has(p.table)) continue;
    if (tables && p.tables) {
      p.tables = p.tables.filter((t) => tables.has(t));
      if (p.tables.length === 0) continue;
    }
    changes.push(p);
  }
}

/** A deterministic mix of inserts, updates, deletes and a truncate over the five tables. */
async function workload(db: TestDatabase, seed: number, txns: number): Promise<void> {
  let s = seed;
  const rnd = (n: number) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
  for (let i = 0; i < txns; i++) {
    const stmts: string[] = [
      `INSERT INTO ${TABLES[i % TABLES.length]} VALUES (${100 + i}, 'n${seed}') ON CONFLICT DO NOTHING`,
    ];
    for (let k = 0; k < 1 + rnd(4); k++) {
      const t = TABLES[rnd(TABLES.length)]!;
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
    if (i === Math.floor(txns / 2)) stmts.push(`TRUNCATE ${TABLES[rnd(TABLES.length)]}`);
    await db.query(`BEGIN; ${stmts.join('; ')}; COMMIT`);
  }
}

/** The WAL insert position: every commit after this call is past it. */
async function lastCommit(db: TestDatabase): Promise<string> {
  const { rows } = await db.query<{ l: string }>(`SELECT pg_current_wal_insert_lsn()::text AS l`);
  return rows[0]!.l;
}

async function slots(db: TestDatabase): Promise<{ slot_name: string; confirmed: string }[]> {
  const { rows } = await db.query<{ slot_name: string; confirmed: string }>(
    `SELECT slot_name, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE database = current_database() ORDER BY 1`,
  );
  return rows;
}

describe('puller', () => {
  it('serves ten readers from one slot, each equal to the direct stream; removing one leaves the rest', async () => {
    const db = await freshDatabase('puller10');
    for (const t of TABLES) await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v text)`);
    const direct = await directStream(db);
    const puller = await startPuller(db, tempLogDir());
    const start = puller.log.coveredFrom!;
    const readers = new Map<
      string,
      { reader: PullerReader; tables: Set<string>; it: AsyncIterator<ChangeMessage> }
    >();
    for (let i = 0; i < 10; i++) {
      const tables = [TABLES[i % 5]!, TABLES[(i + 2) % 5]!];
      const reader = await puller.addReader({
        id: `r${i}`,
        tables: tables.map((name) => ({ schema: 'public', name })),
        checkpoint: start,
        memoryQuotaBytes: 4096,
      });
      readers.set(`r${i}`, {
        reader,
        tables: new Set(tables),
        it: eachMessage(reader.stream(start))[Symbol.asyncIterator](),
      });
    }
    // Written after every table joined the publication: both paths decode all of it.
    await workload(db, 7, 40);
    let last = await lastCommit(db);
    await db.query(`INSERT INTO t0 VALUES (1000, 'end')`);
    const all = await readTxns(direct, last);
    last = all.at(-1)!.position;
    expect(all.length).toBeGreaterThan(20);
    for (const [id, r] of readers) {
      const want = all
        .map((t) => ({ ...t, changes: t.changes.filter((c) => keep(c, r.tables)) }))
        .filter((t) => t.changes.length > 0);
      expect(await readTxns(r.it, last, r.tables), id).toEqual(want);
    }
    expect((await slots(db)).map((s) => s.slot_name)).toEqual([puller.slotName, 'tidemark_direct'].sort());

    // r0 goes away; the others go on and the slot follows the slowest remaining reader.
    puller.removeReader('r0');
    expect(await readers.get('r0')!.it.next()).toEqual({ done: true, value: undefined });
    readers.delete('r0');
    for (const r of readers.values()) r.reader.acknowledge(Lsn.parse(last));
    await workload(db, 11, 10);
    const mark = await lastCommit(db);
    await db.query(`INSERT INTO t0 VALUES (1001, 'end')`);
    const more = await readTxns(direct, mark);
    for (const [id, r] of readers) {
      const want = more
        .map((t) => ({ ...t, changes: t.changes.filter((c) => keep(c, r.tables)) }))
        .filter((t) => t.changes.length > 0);
      expect(await readTxns(r.it, more.at(-1)!.position, r.tables), id).toEqual(want);
    }
    expect(puller.stats().slotFlushed?.toString()).toBe(last);
    expect(puller.stats().logCoveredFrom?.toString()).toBe(last);
  });

  it('a restarted reader, and a restarted puller, resume from the log without re-reading the slot', async () => {
    const db = await freshDatabase('pullerre');
    for (const t of TABLES) await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v text)`);
    const logDir = tempLogDir();
    let puller = await startPuller(db, logDir);
    const start = puller.log.coveredFrom!;
    const opts = { id: 'a', tables: [{ schema: 'public', name: 't1' }], checkpoint: start };
    let reader = await puller.addReader(opts);
    for (let i = 0; i < 5; i++) {
      await db.query(`INSERT INTO t1 SELECT g, 'x' || g FROM generate_series(${i * 20}, ${i * 20 + 19}) g`);
    }
    const mark = await lastCommit(db);
    await db.query(`INSERT INTO t1 VALUES (1000, 'end')`);
    const first = await readTxns(eachMessage(reader.stream(start))[Symbol.asyncIterator](), mark);
    expect(first.flatMap((t) => t.changes)).toHaveLength(101);
    const last = first.at(-1)!.position;
    const received = puller.stats().messagesFromSource;

    reader.close();
    reader = await puller.addReader(opts);
    expect(await readTxns(eachMessage(reader.stream(start))[Symbol.asyncIterator](), last)).toEqual(first);
    expect(puller.stats().messagesFromSource).toBe(received);

    await puller.stop();
    puller = await startPuller(db, logDir);
    reader = await puller.addReader(opts);
    expect(await readTxns(eachMessage(reader.stream(start))[Symbol.asyncIterator](), last)).toEqual(first);
    expect(puller.stats().messagesFromSource).toBeLessThan(25); // at most the last transactions again
    // Nothing acknowledged yet: the slot is still at its consistent point (the log covers after P − 1).
    expect(Lsn.parse((await slots(db))[0]!.confirmed).minus(start)).toBe(1n);
  });

  it('carries a 1M-row transaction through the log with bounded memory', async () => {
    const db = await freshDatabase('pullerbig');
    await db.query(`CREATE TABLE big (id int PRIMARY KEY, v text)`);
    const puller = await startPuller(db, tempLogDir());
    const start = puller.log.coveredFrom!;
    const reader = await puller.addReader({
      id: 'big',
      tables: [{ schema: 'public', name: 'big' }],
      checkpoint: start,
    });
    const baseline = rssBytes();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes())), 50);
    onTestFinished(() => clearInterval(sampler));
    const insert = db.query(
      `INSERT INTO big SELECT g, repeat('x', 40) || g FROM generate_series(1, 1000000) g`,
    );
    let rows = 0;
    let commits = 0;
    for await (const m of eachMessage(reader.stream(start))) {
      peak = Math.max(peak, rssBytes());
      if (m.tag === 'insert') rows++;
      if (m.tag === 'commit' && rows > 0) {
        commits++;
        break;
      }
    }
    await insert;
    clearInterval(sampler);
    expect(rows).toBe(1_000_000);
    expect(commits).toBe(1);
    expect(reader.stats()!.maxBufferedBytes).toBeLessThanOrEqual(8 * 1024 * 1024 + 1024);
    expect(peak - baseline).toBeLessThan(300 * 1024 * 1024);
  });
});

function keep(change: unknown, tables: Set<string>): boolean {
  const c = change as { table?: string; tables?: string[] };
  return c.table !== undefined ? tables.has(c.table) : (c.tables ?? []).some((t) => tables.has(t));
}

/**
 * Resident memory of the process minus file-backed pages (RssAnon + RssShmem): the log's
 * memory-mapped pages are page cache the kernel reclaims, and would otherwise count the log's
 * size (VmRSS − RssFile; see src/log/README.md).
 */
function rssBytes(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return (kb('RssAnon') + kb('RssShmem')) * 1024;
}
