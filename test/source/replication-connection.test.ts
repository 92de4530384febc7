import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { UNCHANGED } from '../../src/core/row.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import type { ReplicationEvent } from '../../src/source/postgres/pgoutput-messages.ts';
import { ReplicationConnection } from '../../src/source/postgres/replication-connection.ts';
import { freshDatabase, type TestDatabase } from '../support/db.ts';

async function open(url: string): Promise<ReplicationConnection> {
  const conn = await ReplicationConnection.connect({ url, applicationName: 'tidemark-test' });
  onTestFinished(() => conn.close());
  return conn;
}

/** Pulls batches until `done` says the collected events are enough. */
async function collect(
  it: AsyncIterator<ReplicationEvent[]>,
  done: (events: ReplicationEvent[]) => boolean,
): Promise<ReplicationEvent[]> {
  const events: ReplicationEvent[] = [];
  while (!done(events)) {
    const r = await it.next();
    if (r.done) throw new Error('stream ended early');
    events.push(...r.value.filter((e) => e.tag !== 'keepalive'));
  }
  return events;
}

const commits = (n: number) => (events: ReplicationEvent[]) =>
  events.filter((e) => e.tag === 'commit').length >= n;

async function expectCode(p: Promise<unknown>, code: string): Promise<TidemarkError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TidemarkError);
  expect((err as TidemarkError).code).toBe(code);
  return err as TidemarkError;
}

async function setupSource(): Promise<TestDatabase> {
  const db = await freshDatabase('repl');
  await db.query(`CREATE TABLE items (id int PRIMARY KEY, name text, big text)`);
  await db.query(`CREATE PUBLICATION pub FOR TABLE items`);
  return db;
}

describe('ReplicationConnection', () => {
  it('creates a slot with an exported snapshot and streams every kind of change', async () => {
    const db = await setupSource();
    await db.query(`INSERT INTO items VALUES (0, 'before the slot', NULL)`);
    const conn = await open(db.url);

    const system = await conn.identifySystem();
    expect(system.dbName).toBe(db.name);
    expect(system.timeline).toBe(1);
    const { rows } = await conn.query(`SELECT current_setting('application_name'), 'a' || NULL, ''`);
    expect(rows).toEqual([['tidemark-test', null, '']]);

    const slot = await conn.createLogicalSlot({ slotName: 'feed_slot', snapshot: 'export' });
    expect(slot.slotName).toBe('feed_slot');
    expect(slot.snapshotName).toMatch(/^[0-9A-F-]+$/);
    // The exported snapshot sees exactly the rows committed before the slot.
    const reader = await db.connect();
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await reader.query(`SET TRANSACTION SNAPSHOT '${slot.snapshotName}'`);
    expect((await reader.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(1);
    await reader.query('COMMIT');

    const big = 'x'.repeat(200_000) + '🙂'; // TOASTed, so unchanged in the update below
    await db.query(`INSERT INTO items VALUES (1, '日本語 🙂', $1), (2, '', NULL)`, [big]);
    await db.query(`UPDATE items SET name = 'renamed' WHERE id = 1`);
    await db.query(`UPDATE items SET id = 3 WHERE id = 2`);
    await db.query(`DELETE FROM items WHERE id = 3`);
    await db.query(`SELECT pg_logical_emit_message(true, 'tidemark', 'x')`);
    await db.query(`TRUNCATE items RESTART IDENTITY CASCADE`);

    const stream = conn.startReplication({
      slotName: 'feed_slot',
      startLsn: slot.consistentPoint,
      publicationNames: ['pub'],
      messages: true,
    });
    const events = await collect(stream[Symbol.asyncIterator](), commits(6));
    const relId = (events.find((e) => e.tag === 'relation') as { relationId: number }).relationId;
    const shapes = events.map((e) => {
      switch (e.tag) {
        case 'begin':
        case 'commit':
          return e.tag;
        case 'relation':
          return {
            rel: e.name,
            schema: e.schema,
            cols: e.columns.map((c) => `${c.name}:${c.typeOid}:${c.isKey}`),
          };
        case 'insert':
          return { insert: e.row.map((c) => (c === big ? 'BIG' : c)) };
        case 'update':
          return { update: e.row, oldKind: e.oldKind, old: e.old };
        case 'delete':
          return { delete: e.old, oldKind: e.oldKind };
        case 'truncate':
          return {
            truncate: e.relationIds.map((r) => r === relId),
            cascade: e.cascade,
            restart: e.restartIdentity,
          };
        case 'message':
          return { message: e.prefix, content: e.content.toString(), transactional: e.transactional };
        default:
          return e.tag;
      }
    });
    expect(shapes).toEqual([
      'begin',
      { rel: 'items', schema: 'public', cols: ['id:23:true', 'name:25:false', 'big:25:false'] },
      { insert: ['1', '日本語 🙂', 'BIG'] },
      { insert: ['2', '', null] },
      'commit',
      'begin',
      { update: ['1', 'renamed', UNCHANGED], oldKind: null, old: null },
      'commit',
      'begin',
      { update: ['3', '', null], oldKind: 'key', old: ['2', null, null] },
      'commit',
      'begin',
      { delete: ['3', null, null], oldKind: 'key' },
      'commit',
      'begin',
      { message: 'tidemark', content: 'x', transactional: true },
      'commit',
      'begin',
      // TRUNCATE gives the table a new relfilenode, so pgoutput describes it again.
      { rel: 'items', schema: 'public', cols: ['id:23:true', 'name:25:false', 'big:25:false'] },
      { truncate: [true], cascade: true, restart: true },
      'commit',
    ]);
    // Begin's final LSN is the commit LSN; commits come in LSN order.
    const begin = events[0] as Extract<ReplicationEvent, { tag: 'begin' }>;
    const commit = events[4] as Extract<ReplicationEvent, { tag: 'commit' }>;
    expect(begin.finalLsn.equals(commit.commitLsn)).toBe(true);
    expect(commit.endLsn.compare(commit.commitLsn)).toBeGreaterThan(0);
    expect(commit.commitTimeMs).toBeGreaterThan(Date.parse('2020-01-01'));
  });

  it('reports setFlushed to the server as confirmed_flush_lsn, never beyond it', async () => {
    const db = await setupSource();
    const conn = await open(db.url);
    const slot = await conn.createLogicalSlot({ slotName: 'flush_slot', snapshot: 'nothing' });
    await db.query(`INSERT INTO items VALUES (1, 'a', NULL)`);
    await db.query(`INSERT INTO items VALUES (2, 'b', NULL)`);
    const stream = conn.startReplication({
      slotName: 'flush_slot',
      startLsn: Lsn.ZERO,
      publicationNames: ['pub'],
      statusIntervalMs: 50,
    });
    const it = stream[Symbol.asyncIterator]();
    const events = await collect(it, commits(2));
    const [first, second] = events.filter((e) => e.tag === 'commit') as Extract<
      ReplicationEvent,
      { tag: 'commit' }
    >[];
    const confirmed = async () => {
      const { rows } = await db.query<{ l: string }>(
        `SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = 'flush_slot'`,
      );
      return Lsn.parse(rows[0]!.l);
    };
    expect((await confirmed()).equals(slot.consistentPoint)).toBe(true);

    conn.setFlushed(first!.endLsn);
    // Poll until the server has it (no timed assertion: the test timeout bounds the wait).
    for (;;) {
      const c = await confirmed();
      expect(c.compare(first!.endLsn)).toBeLessThanOrEqual(0);
      if (c.equals(first!.endLsn)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    // Several status intervals later it has not moved beyond what was set, though more was received.
    await new Promise((r) => setTimeout(r, 300));
    expect((await confirmed()).equals(first!.endLsn)).toBe(true);
    conn.setFlushed(Lsn.ZERO); // ignored: positions never move back
    conn.setFlushed(second!.endLsn);
    for (;;) {
      const c = await confirmed();
      if (c.equals(second!.endLsn)) break;
      expect(c.compare(second!.endLsn)).toBeLessThan(0);
      await new Promise((r) => setTimeout(r, 20));
    }
    await conn.close();
    expect((await it.next()).done).toBe(true);
  });

  it('pauses the socket while the consumer lags: buffered bytes stay bounded in a big transaction', async () => {
    const db = await setupSource();
    const conn = await open(db.url);
    await conn.createLogicalSlot({ slotName: 'big_slot', snapshot: 'nothing' });
    const rows = 20_000;
    await db.query(`INSERT INTO items SELECT g, repeat('r', 500) || g, NULL FROM generate_series(1, $1) g`, [
      rows,
    ]);
    const maxBufferedBytes = 64 * 1024;
    const stream = conn.startReplication({
      slotName: 'big_slot',
      startLsn: Lsn.ZERO,
      publicationNames: ['pub'],
      maxBufferedBytes,
    });
    let inserted = 0;
    let maxSeenBytes = 0;
    let lastId = 0;
    for await (const batch of stream) {
      maxSeenBytes = Math.max(maxSeenBytes, conn.streamStats()!.bufferedBytes);
      for (const e of batch) {
        if (e.tag !== 'insert') continue;
        expect(Number(e.row[0])).toBe(lastId + 1);
        lastId++;
        inserted++;
      }
      if (batch.some((e) => e.tag === 'commit')) break;
      await new Promise((r) => setTimeout(r, 1)); // a slow consumer
    }
    expect(inserted).toBe(rows);
    expect(conn.streamStats()!.pauses).toBeGreaterThan(0);
    // The bound: the quota plus at most one socket read (64 KiB) that crossed it.
    expect(maxSeenBytes).toBeLessThanOrEqual(maxBufferedBytes + 64 * 1024);
  });

  it('refuses a second consumer of an active slot with SOURCE_SLOT_IN_USE', async () => {
    const db = await setupSource();
    const first = await open(db.url);
    const slot = await first.createLogicalSlot({ slotName: 'busy_slot', snapshot: 'nothing' });
    await db.query(`INSERT INTO items VALUES (1, 'a', NULL)`);
    const a = first.startReplication({
      slotName: 'busy_slot',
      startLsn: slot.consistentPoint,
      publicationNames: ['pub'],
    });
    await collect(a[Symbol.asyncIterator](), commits(1));

    const second = await open(db.url);
    const b = second.startReplication({
      slotName: 'busy_slot',
      startLsn: slot.consistentPoint,
      publicationNames: ['pub'],
    });
    const err = await expectCode(b[Symbol.asyncIterator]().next(), 'SOURCE_SLOT_IN_USE');
    expect(err.message).toMatch(/busy_slot/);
  });

  it('ends the stream with SOURCE_STREAM_ENDED when the server terminates it', async () => {
    const db = await setupSource();
    const conn = await open(db.url);
    await conn.createLogicalSlot({ slotName: 'end_slot', snapshot: 'nothing' });
    await db.query(`INSERT INTO items VALUES (1, 'a', NULL)`);
    const stream = conn.startReplication({
      slotName: 'end_slot',
      startLsn: Lsn.ZERO,
      publicationNames: ['pub'],
    });
    const it = stream[Symbol.asyncIterator]();
    await collect(it, commits(1));
    await db.query(
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'end_slot'`,
    );
    let err: unknown;
    try {
      for (;;) if ((await it.next()).done) break;
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TidemarkError);
    expect((err as TidemarkError).code).toBe('SOURCE_STREAM_ENDED');
  });

  it('maps connection failures: wrong password, missing database, refused port', async () => {
    const db = await freshDatabase('auth');
    const wrong = new URL(db.url);
    wrong.password = 'not-the-password';
    const err = await expectCode(
      ReplicationConnection.connect({ url: wrong.toString(), applicationName: 't' }),
      'AUTH_FAILED',
    );
    expect(err.message).not.toContain('not-the-password');

    const missing = new URL(db.url);
    missing.pathname = '/no_such_db_here';
    await expectCode(
      ReplicationConnection.connect({ url: missing.toString(), applicationName: 't' }),
      'DATABASE_NOT_FOUND',
    );

    const refused = new URL(db.url);
    refused.port = '1';
    await expectCode(
      ReplicationConnection.connect({ url: refused.toString(), applicationName: 't' }),
      'CONNECT_REFUSED',
    );
  });

  it('gives up with CONNECT_REFUSED when a server accepts but never answers', async () => {
    const accepted: Socket[] = [];
    const silent = createServer((s) => void accepted.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => {
      for (const s of accepted) s.destroy();
      return new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const { port } = silent.address() as AddressInfo;
    const err = await expectCode(
      ReplicationConnection.connect({
        url: `postgres://u:pw@127.0.0.1:${port}/db`,
        applicationName: 't',
        connectTimeoutMs: 200,
      }),
      'CONNECT_REFUSED',
    );
    expect(err.message).toMatch(/no answer within 200 ms/);
    expect(err.message).not.toContain(':pw@');
  });

  it('sends session settings in the startup packet', async () => {
    const db = await freshDatabase('settings');
    const conn = await ReplicationConnection.connect({
      url: db.url,
      applicationName: 'tidemark settings test',
      sessionSettings: { DateStyle: 'ISO, MDY', extra_float_digits: '3', TimeZone: 'UTC' },
    });
    onTestFinished(() => conn.close());
    const { columns, rows } = await conn.query(
      `SELECT current_setting('DateStyle') AS ds, current_setting('extra_float_digits') AS efd, current_setting('TimeZone') AS tz, current_setting('application_name') AS app`,
    );
    expect(columns).toEqual(['ds', 'efd', 'tz', 'app']);
    expect(rows).toEqual([['ISO, MDY', '3', 'UTC', 'tidemark settings test']]);
    await expectCode(conn.query('SELECT * FROM no_such_table'), 'INTERNAL');
    expect((await conn.query('SELECT 1')).rows).toEqual([['1']]); // still usable after an error
  });
});
