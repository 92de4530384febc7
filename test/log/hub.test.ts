import { describe, expect, it, onTestFinished } from 'vitest';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { eachMessage, type ChangeMessage } from '../../src/core/change.ts';
import type { Subscription } from '../../src/log/subscription.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { sourceObjectName } from '../../src/source/postgres/source-names.ts';
import { freshDatabase } from '../support/db.ts';
import {
  confirmed,
  describeTables,
  durablePositions,
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
    const opened = openHub(db, dir);
    let hub = opened.hub;
    const connector = opened.connector;
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
    // Sampled once per batch (≤ 1,024 messages): reading /proc per message cost more than the log.
    read: for await (const batch of sub.read(start)) {
      peak = Math.max(peak, rssBytes());
      for (const m of batch) {
        if (m.tag === 'insert') rows++;
        if (m.tag === 'commit' && rows > 0) {
          commits++;
          break read;
        }
      }
    }
    await insert;
    clearInterval(sampler);
    expect(rows).toBe(1_000_000);
    expect(commits).toBe(1);
    expect(hub.log.transactionsSpilled).toBe(1);
    expect(sub.stats()!.maxBufferedBytes).toBeLessThanOrEqual(8 * 1024 * 1024 + 1024);
    expect(peak - baseline).toBeLessThan(300 * 1024 * 1024);
  }, 600_000); // ~80 s alone on this machine (most of it the source writing and decoding 1M rows), more under a full run

  it('acknowledges the source only up to the smallest durable subscription position', async () => {
    const db = await freshDatabase('huback');
    await db.query(`CREATE TABLE t0 (id int PRIMARY KEY, v text)`);
    const dir = tempHubDir();
    const { hub, connector } = openHub(db, dir);
    const tables = await describeTables(connector, ['t0']);
    const start = await hub.registerAtEnd('a', tables);
    await hub.registerAtEnd('b', tables);
    const a = await hub.subscribe({ id: 'a', tables, checkpoint: start });
    const b = await hub.subscribe({ id: 'b', tables, checkpoint: start });
    const created = await confirmed(db, connector.slotName);
    // Sampled all along: the slot read first, then the file. Positions in the file only grow
    // here, so the file read after the slot holds at most what it held when the slot was
    // acknowledged.
    let sampling = true;
    const samples: { slot: Lsn; durable: Lsn }[] = [];
    const sampler = (async () => {
      while (sampling) {
        const slot = await confirmed(db, connector.slotName);
        const durable = [...durablePositions(dir).values()].reduce((x, y) => (x.compare(y) <= 0 ? x : y));
        samples.push({ slot, durable });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const itA = stream(a, start);
    const itB = stream(b, start);
    const slotAt = (p: Lsn) =>
      until(async () => ((await confirmed(db, connector.slotName)).equals(p) ? true : undefined));
    let id = 0;
    // Three rounds of ten transactions: a acknowledges each one, b only the fifth of the round.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 9; i++) await db.query(`INSERT INTO t0 VALUES (${id++}, 'v')`);
      const mark = await walNow(db);
      await db.query(`INSERT INTO t0 VALUES (${id++}, 'v')`);
      const seen = (await readTxns(itA, mark)).map((t) => Lsn.parse(t.position));
      expect(await readTxns(itB, mark)).toHaveLength(10);
      for (const p of seen) a.acknowledge(p);
      b.acknowledge(seen[4]!);
      // b holds the source where it stands, a ahead of it.
      await slotAt(seen[4]!);
      expect(durablePositions(dir)).toEqual(
        new Map([
          ['a', seen[9]],
          ['b', seen[4]],
        ]),
      );
      if (round === 2) {
        b.acknowledge(seen[9]!);
        await slotAt(seen[9]!);
        expect(hub.log.coveredFrom?.position).toEqual(seen[9]);
      }
    }
    sampling = false;
    await sampler;
    const passed = samples.filter((x) => x.slot.compare(x.durable) > 0 && x.slot.compare(created) > 0);
    expect(passed).toEqual([]);
    expect(samples.length).toBeGreaterThan(10);
  });

  it('keeps subscriptions.json whole and ahead of the slot across a SIGKILL of the process holding the hub', async () => {
    const db = await freshDatabase('hubkill');
    await db.query(`CREATE TABLE t0 (id int PRIMARY KEY, v text)`);
    const reference = await ReferenceSlot.create(db, ['t0']);
    const dir = tempHubDir();
    const fixture = new URL('./hub-holder.fixture.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, db.url, dir, 't0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_, signal) => r(signal)));
    let start: Lsn | null = null;
    const acked: string[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [what, position] = line.split(' ');
        if (what === 'start') start = Lsn.parse(position!);
        else if (what === 'ack') acked.push(position!);
      }
    });
    await until(() => start ?? undefined);
    // Writes until the child has made some acknowledgements durable and goes on acknowledging;
    // then SIGKILL, wherever it is.
    let i = 0;
    for (;;) {
      await db.query(`INSERT INTO t0 VALUES (${i++}, 'v')`);
      const durable = durablePositions(dir).get('k');
      if (i >= 40 && durable && durable.compare(start!) > 0 && acked.length > 30) break;
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const durable = durablePositions(dir).get('k')!; // parses: the file is whole
    expect(acked).toContain(durable.toString());
    expect((await confirmed(db, sourceObjectName(db.url))).compare(durable)).toBeLessThanOrEqual(0);

    // A hub opened again on the directory serves k everything after its durable position.
    const { hub, connector } = openHub(db, dir);
    const tables = await describeTables(connector, ['t0']);
    const sub = await hub.subscribe({ id: 'k', tables, checkpoint: durable });
    const mark = await walNow(db);
    await db.query(`INSERT INTO t0 VALUES (100000, 'end')`);
    const want = await reference.between(durable, mark);
    expect(want.length).toBeGreaterThan(0);
    expect(await readTxns(stream(sub, durable), Lsn.parse(want.at(-1)!.position))).toEqual(want);
    expect((await confirmed(db, connector.slotName)).compare(durable)).toBeLessThanOrEqual(0);
  });

  it('moves a log damaged on disk aside and refills it: every subscription still reads everything after its position', async () => {
    const names = ['t0', 't1', 't2'];
    const db = await freshDatabase('hubdamage');
    for (const t of names) await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v text)`);
    const reference = await ReferenceSlot.create(db, names);
    const dir = tempHubDir();
    const opened = openHub(db, dir);
    let hub = opened.hub;
    const described = await describeTables(opened.connector, names);
    const who = [
      { id: 'a', tables: [described[0]!, described[1]!] },
      { id: 'b', tables: [described[1]!, described[2]!] },
      { id: 'c', tables: [described[2]!] },
    ];
    const start = await hub.registerAtEnd('a', who[0]!.tables);
    for (const w of who.slice(1)) await hub.registerAtEnd(w.id, w.tables);
    const subs = await Promise.all(who.map((w) => hub.subscribe({ ...w, checkpoint: start })));
    await workload(db, names, 5, 30);
    let mark = await walNow(db);
    await db.query(`INSERT INTO t0 VALUES (1000, 'end')`);
    const first = await reference.through(mark);
    // a acknowledges everything so far, b half of it, c nothing.
    const half = Lsn.parse(first[Math.floor(first.length / 2)]!.position);
    const end1 = Lsn.parse(first.at(-1)!.position);
    await readTxns(stream(subs[0]!, start), end1);
    await readTxns(stream(subs[1]!, start), half);
    subs[0]!.acknowledge(end1);
    subs[1]!.acknowledge(half);
    await until(() => (hub.stats().sourceAcknowledged !== null ? true : undefined));
    await workload(db, names, 6, 20);
    mark = await walNow(db);
    await db.query(`INSERT INTO t0 VALUES (1001, 'end')`);
    const second = await reference.through(mark);
    const end2 = Lsn.parse(second.at(-1)!.position);
    await until(() =>
      hub.log.committed && hub.log.committed.position.compare(end2) >= 0 ? true : undefined,
    );
    await hub.stop();

    const data = join(dir, 'log', 'data.mdb');
    const fd = openSync(data, 'r+');
    writeSync(fd, Buffer.alloc(64 * 1024, 0x5a), 0, 64 * 1024, 0);
    closeSync(fd);

    const reopened = openHub(db, dir);
    hub = reopened.hub;
    expect(reopened.warnings.map((w) => w.message)).toEqual([
      'the change log is damaged: moved aside, refilling it from the source',
    ]);
    expect(readdirSync(dir).filter((f) => f.startsWith('log.damaged-'))).toHaveLength(1);
    expect(hub.stats().logRefills).toBe(1);
    const all = [...first, ...second];
    const checkpoints = new Map([
      ['a', end1],
      ['b', half],
      ['c', start],
    ]);
    for (const w of who) {
      const checkpoint = checkpoints.get(w.id)!;
      const sub = await hub.subscribe({ ...w, checkpoint });
      const tables = new Set(w.tables.map((t) => t.name));
      const want = forTables(
        all.filter((t) => checkpoint.compare(Lsn.parse(t.position)) < 0),
        tables,
      );
      expect(await readTxns(stream(sub, checkpoint), end2, tables), w.id).toEqual(want);
    }
  });

  it('refills the log when a reader meets a damaged spill segment while the hub runs; the subscription reads on', async () => {
    const db = await freshDatabase('hubsegment');
    await db.query(`CREATE TABLE t0 (id int PRIMARY KEY, v text)`);
    const reference = await ReferenceSlot.create(db, ['t0']);
    const dir = tempHubDir();
    const { hub, connector, warnings } = openHub(db, dir, { logOptions: { writeBatchBytes: 64 * 1024 } });
    const tables = await describeTables(connector, ['t0']);
    const start = await hub.registerAtEnd('a', tables);
    await hub.registerAtEnd('b', tables);
    const sub = await hub.subscribe({ id: 'a', tables, checkpoint: start });
    const other = await hub.subscribe({ id: 'b', tables, checkpoint: start });
    await db.query(`INSERT INTO t0 SELECT g, repeat('s', 50) || g FROM generate_series(1, 5000) g`);
    const mark = await walNow(db);
    await db.query(`INSERT INTO t0 VALUES (100000, 'end')`);
    const want = await reference.through(mark);
    const end = Lsn.parse(want.at(-1)!.position);
    // b has read it all before the damage, and waits for more.
    const otherIt = stream(other, start);
    expect(await readTxns(otherIt, end)).toEqual(want);
    const otherNext = otherIt.next();
    otherNext.catch(() => {});
    expect(hub.log.transactionsSpilled).toBe(1);
    const spill = join(dir, 'log', 'spill');
    const [segment] = readdirSync(spill);
    truncateSync(join(spill, segment!), 1000);

    await expect(readTxns(stream(sub, start), end)).rejects.toMatchObject({
      code: 'CHANGELOG_CORRUPT',
      retriable: true,
    });
    await until(() => (hub.stats().logRefills === 1 ? true : undefined));
    expect(warnings.map((w) => w.message)).toContain(
      'the change log is damaged: moved aside, refilling it from the source',
    );
    // b's stream does not just end (its changefeed would stop as if asked to): it fails, retriably.
    await expect(otherNext).rejects.toMatchObject({ code: 'CHANGELOG_CORRUPT', retriable: true });
    // Each changefeed retries: the same subscription, from the same position, off the refilled log.
    expect(await readTxns(stream(sub, start), end)).toEqual(want);
    expect(await readTxns(stream(other, start), end)).toEqual(want);
    expect(hub.stats().replicationStarts).toBe(2);
  });

  it('a subscription reads the tables added to it, and stops reading one removed, from its next batch on', async () => {
    const db = await freshDatabase('hubtables');
    for (const t of ['t0', 't1']) await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v text)`);
    const { hub, connector } = openHub(db, tempHubDir());
    const [t0, t1] = await describeTables(connector, ['t0', 't1']);
    const start = await hub.registerAtEnd('a', [t0!]);
    const sub = await hub.subscribe({ id: 'a', tables: [t0!], checkpoint: start });
    await connector.capture([t1!]);
    const it = stream(sub, start);
    const step = async (sql: string) => {
      const mark = await walNow(db);
      await db.query(sql);
      return (await readTxns(it, mark)).flatMap((t) => t.changes);
    };
    expect(await step(`INSERT INTO t0 VALUES (1, 'a'); INSERT INTO t1 VALUES (1, 'b')`)).toEqual([
      { tag: 'insert', table: 't0', row: ['1', 'a'] },
    ]);
    sub.addTables([t1!]);
    expect(await step(`INSERT INTO t0 VALUES (2, 'a'); INSERT INTO t1 VALUES (2, 'b')`)).toEqual([
      { tag: 'insert', table: 't0', row: ['2', 'a'] },
      { tag: 'insert', table: 't1', row: ['2', 'b'] },
    ]);
    sub.removeTable(t0!.relationId);
    expect(await step(`INSERT INTO t0 VALUES (3, 'a'); INSERT INTO t1 VALUES (3, 'b')`)).toEqual([
      { tag: 'insert', table: 't1', row: ['3', 'b'] },
    ]);
  });

  it('a full log disk backs off between source sessions: a write that failed is not progress', async () => {
    const db = await freshDatabase('hubfull');
    await db.query(`CREATE TABLE t0 (id int PRIMARY KEY, v text)`);
    const { hub, connector, errors } = openHub(db, tempHubDir(), { logOptions: { maxDiskBytes: 1 } });
    const tables = await describeTables(connector, ['t0']);
    const start = await hub.registerAtEnd('full', tables);
    (await hub.subscribe({ id: 'full', tables, checkpoint: start })).close();
    const writer = await db.connect();
    let stop = false;
    const writes = (async () => {
      for (let i = 0; !stop; i++) {
        await writer.query(`INSERT INTO t0 VALUES ($1, 'v')`, [i]);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await until(() => (errors.some((e) => e.code === 'CHANGELOG_DISK_FULL') ? true : undefined));
    const first = hub.stats().replicationStarts;
    await new Promise((r) => setTimeout(r, 5000));
    const sessions = hub.stats().replicationStarts - first;
    stop = true;
    await writes;
    await writer.end();
    // Back-off from 250–500 ms, doubling: at most 4 sessions in 5 s. Reset by every batch before
    // its write (the defect), a session began every ~0.5 s.
    expect(sessions).toBeGreaterThan(0);
    expect(sessions).toBeLessThanOrEqual(4);
  });

  it('warns about a stale subscription, then releases it, and the slot advances past it', async () => {
    const db = await freshDatabase('hubstale');
    await db.query(`CREATE TABLE t0 (id int PRIMARY KEY, v text)`);
    const { hub, connector, warnings } = openHub(db, tempHubDir(), {
      staleAfterMs: 300,
      releaseAfterMs: 1500,
    });
    const tables = await describeTables(connector, ['t0']);
    const start = await hub.registerAtEnd('stale', tables);
    await hub.registerAtEnd('live', tables);
    (await hub.subscribe({ id: 'stale', tables, checkpoint: start })).close(); // its changefeed stopped
    const live = await hub.subscribe({ id: 'live', tables, checkpoint: start });
    for (let i = 0; i < 5; i++) await db.query(`INSERT INTO t0 VALUES (${i}, 'v')`);
    const mark = await walNow(db);
    await db.query(`INSERT INTO t0 VALUES (1000, 'end')`);
    const [last] = (await readTxns(stream(live, start), mark)).slice(-1);
    live.acknowledge(Lsn.parse(last!.position));
    const warned = await until(() => warnings.find((w) => w.fields.changefeed === 'stale'));
    expect(warned.message).toBe('a changefeed that is not running holds the change log and the source');
    // Ticks have passed since live acknowledged: the slot is still where stale holds it (its
    // consistent point, P = start + 1).
    expect((await confirmed(db, connector.slotName)).minus(start)).toBe(1n);
    expect(hub.stats().sourceAcknowledged).toBe(start.toString());
    expect(hub.subscriptions().find((s) => s.id === 'stale')).toMatchObject({ active: false, stale: true });
    expect(hub.subscriptions().find((s) => s.id === 'live')).toMatchObject({ active: true, stale: false });
    const released = await until(() =>
      warnings.find((w) => w.message.startsWith('released a stale changefeed')),
    );
    expect(released.fields).toEqual({ changefeed: 'stale', position: start.toString() });
    expect(
      warnings.filter((w) => w.fields.changefeed === 'stale').map((w) => w.message.split(':')[0]),
    ).toEqual([
      'a changefeed that is not running holds the change log and the source',
      'released a stale changefeed',
    ]);
    expect(hub.subscriptions().map((s) => s.id)).toEqual(['live']);
    const position = Lsn.parse(last!.position);
    await until(async () => ((await confirmed(db, connector.slotName)).equals(position) ? true : undefined));
    expect(hub.log.coveredFrom?.position).toEqual(position);
  });
});
