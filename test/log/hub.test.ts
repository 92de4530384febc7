import { describe, expect, it, onTestFinished } from 'vitest';
import { eachMessage, type ChangeMessage } from '../../src/core/change.ts';
import type { Subscription } from '../../src/log/subscription.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { freshDatabase } from '../support/db.ts';
import {
  confirmed,
  describeTables,
  forTables,
  openHub,
  readTxns,
  ReferenceSlot,
  rssBytes,
  tempHubDir,
  until,
  walNow,
  workload,
} from './hub-fixtures.ts';

const TABLES = ['t0', 't1', 't2', 't3', 't4'];

function stream(sub: Subscription<Lsn>, after: Lsn): AsyncIterator<ChangeMessage<Lsn>> {
  return eachMessage(sub.read(after))[Symbol.asyncIterator]();
}

describe('change hub', () => {
  it('serves ten subscriptions from one slot, each equal to the reference; removing one leaves the rest', async () => {
    const db = await freshDatabase('hub10');
    for (const t of TABLES) await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v text)`);
    const reference = await ReferenceSlot.create(db, TABLES);
    const { hub, connector, errors } = openHub(db, tempHubDir());
    const described = await describeTables(connector, TABLES);
    const subs = new Map<
      string,
      { sub: Subscription<Lsn>; tables: Set<string>; it: AsyncIterator<ChangeMessage<Lsn>> }
    >();
    for (let i = 0; i < 10; i++) {
      const tables = [described[i % 5]!, described[(i + 2) % 5]!];
      const id = `r${i}`;
      const start = await hub.registerAtEnd(id, tables);
      const sub = await hub.subscribe({ id, tables, checkpoint: start, memoryQuotaBytes: 4096 });
      subs.set(id, { sub, tables: new Set(tables.map((t) => t.name)), it: stream(sub, start) });
    }
    // Written after every table joined the publication: both paths decode all of it.
    await workload(db, TABLES, 7, 40);
    let last = await walNow(db);
    await db.query(`INSERT INTO t0 VALUES (1000, 'end')`);
    const all = await reference.through(last);
    last = Lsn.parse(all.at(-1)!.position);
    expect(all.length).toBeGreaterThan(20);
    for (const [id, s] of subs)
      expect(await readTxns(s.it, last, s.tables), id).toEqual(forTables(all, s.tables));
    const { rows } = await db.query<{ slot_name: string }>(
      `SELECT slot_name FROM pg_replication_slots WHERE database = current_database() ORDER BY 1`,
    );
    expect(rows.map((r) => r.slot_name)).toEqual([connector.slotName, reference.name].sort());

    // r0 goes away; the others go on, and the slot follows the slowest remaining subscription.
    hub.unsubscribe('r0');
    expect(await subs.get('r0')!.it.next()).toEqual({ done: true, value: undefined });
    subs.delete('r0');
    expect(hub.subscriptions().map((s) => s.id)).not.toContain('r0');
    for (const s of subs.values()) s.sub.acknowledge(last);
    await workload(db, TABLES, 11, 10);
    const mark = await walNow(db);
    await db.query(`INSERT INTO t0 VALUES (1001, 'end')`);
    const more = await reference.through(mark);
    for (const [id, s] of subs) {
      expect(await readTxns(s.it, Lsn.parse(more.at(-1)!.position), s.tables), id).toEqual(
        forTables(more, s.tables),
      );
    }
    await until(() => (hub.stats().sourceAcknowledged === last.toString() ? true : undefined));
    expect(hub.log.coveredFrom?.position).toEqual(last);
    await until(async () => ((await confirmed(db, connector.slotName)).equals(last) ? true : undefined));
    expect(errors).toEqual([]);
  });

  it('a restarted subscription, and a restarted hub, resume from the log without re-reading the source', async () => {
    const db = await freshDatabase('hubre');
    for (const t of TABLES) await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v text)`);
    const dir = tempHubDir();
    let { hub, connector } = openHub(db, dir);
    const tables = await describeTables(connector, ['t1']);
    const start = await hub.registerAtEnd('a', tables);
    const opts = { id: 'a', tables, checkpoint: start };
    let sub = await hub.subscribe(opts);
    for (let i = 0; i < 5; i++) {
      await db.query(`INSERT INTO t1 SELECT g, 'x' || g FROM generate_series(${i * 20}, ${i * 20 + 19}) g`);
    }
    const mark = await walNow(db);
    await db.query(`INSERT INTO t1 VALUES (1000, 'end')`);
    const first = await readTxns(stream(sub, start), mark);
    expect(first.flatMap((t) => t.changes)).toHaveLength(101);
    const last = Lsn.parse(first.at(-1)!.position);
    const { eventsFromSource, replicationStarts } = hub.stats();
    expect(replicationStarts).toBe(1);

    sub.close();
    sub = await hub.subscribe(opts);
    expect(await readTxns(stream(sub, start), last)).toEqual(first);
    expect(hub.stats()).toMatchObject({ eventsFromSource, replicationStarts: 1 });

    await hub.stop();
    ({ hub } = openHub(db, dir));
    sub = await hub.subscribe(opts);
    expect(await readTxns(stream(sub, start), last)).toEqual(first);
    // Read before the source was even asked; then one session, opened after the log's end: the
    // source was asked for nothing the log had.
    await until(() => (hub.stats().replicationStarts > 0 ? true : undefined));
    expect(hub.stats()).toMatchObject({ replicationStarts: 1, lastReplicationStart: last.toString() });
    expect(hub.stats().eventsFromSource).toBeLessThan(25);
    // Nothing acknowledged past the start: the slot is still at its consistent point (the log
    // covers after P − 1).
    expect((await confirmed(db, connector.slotName)).minus(start)).toBe(1n);
  });

  it('carries a 1M-row transaction through the log with bounded memory', async () => {
    const db = await freshDatabase('hubbig');
    await db.query(`CREATE TABLE big (id int PRIMARY KEY, v text)`);
    const { hub, connector } = openHub(db, tempHubDir());
    const tables = await describeTables(connector, ['big']);
    const start = await hub.registerAtEnd('big', tables);
    const sub = await hub.subscribe({ id: 'big', tables, checkpoint: start });
    const baseline = rssBytes();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes())), 50);
    onTestFinished(() => clearInterval(sampler));
    const insert = db.query(
      `INSERT INTO big SELECT g, repeat('x', 40) || g FROM generate_series(1, 1000000) g`,
    );
    let rows = 0;
    let commits = 0;
    for await (const m of eachMessage(sub.read(start))) {
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
    expect(hub.log.transactionsSpilled).toBe(1);
    expect(sub.stats()!.maxBufferedBytes).toBeLessThanOrEqual(8 * 1024 * 1024 + 1024);
    expect(peak - baseline).toBeLessThan(300 * 1024 * 1024);
  });
});
