/**
 * The MariaDB connector against a real MariaDB 10.11 (row binlog, GTID): `replicate` delivers
 * committed transactions in order with the right cells, XA at XA COMMIT only, DDL as barriers,
 * empty transactions of other databases as position advances, and resumes exactly.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { MysqlConnector } from '../../../src/source/mysql/mysql-connector.ts';
import { freePort } from '../../support/pg-cluster.ts';
import { startMariaDbSource, type MariaDbSource } from '../../support/mariadb-source.ts';
import { collect, iterate, sawRow, transcript, type Ev } from './helpers.ts';

let src: MariaDbSource;

beforeAll(async () => {
  src = await startMariaDbSource({ port: await freePort(55751) });
});
afterAll(async () => {
  await src?.stop();
});

function connector(url: string): MysqlConnector {
  const c = new MysqlConnector({ uri: url, heartbeatMs: 200 });
  onTestFinished(() => c.close());
  return c;
}

describe('MariaDB connector: replicate', () => {
  it('delivers inserts, updates, deletes, XA commits and DDL in commit order', async () => {
    const db = await src.freshDatabase('repl');
    await src.sql(
      db.name,
      'CREATE TABLE t (id int PRIMARY KEY, name varchar(20), amount decimal(10,2)); CREATE TABLE other (x int)',
    );
    const c = connector(db.url);
    const tables = (await c.describe(['t'])).tables;
    await c.capture(tables);
    const session = await c.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    onTestFinished(() => session.close());
    await src.sql(
      db.name,
      `INSERT INTO t VALUES (1, 'a', 1.5), (2, NULL, -0.25);
       UPDATE t SET name = 'b' WHERE id = 1;
       DELETE FROM t WHERE id = 2;
       INSERT INTO other VALUES (1);`,
    );
    // A prepared XA transaction holds its connection until XA COMMIT/ROLLBACK.
    const x1 = await src.connect(db.name);
    const x2 = await src.connect(db.name);
    await x1.query(`XA START 'x1'; INSERT INTO t VALUES (3, 'xa', 3); XA END 'x1'; XA PREPARE 'x1'`);
    await x2.query(`XA START 'x2'; INSERT INTO t VALUES (4, 'rolled back', 4); XA END 'x2'; XA PREPARE 'x2'`);
    await x2.query(`XA ROLLBACK 'x2'`);
    await x1.query(`XA COMMIT 'x1'`);
    await Promise.all([x1.end(), x2.end()]);
    await src.sql(
      db.name,
      `ALTER TABLE t ADD COLUMN note varchar(5) NOT NULL DEFAULT 'n', RENAME COLUMN name TO label;
       INSERT INTO t (id, label, amount) VALUES (5, 'after', 0);
       TRUNCATE t;
       RENAME TABLE t TO t2;
       INSERT INTO t2 VALUES (6, 'renamed', 1, 'z');
       CREATE TABLE fresh (k varchar(10) PRIMARY KEY, v bigint unsigned NOT NULL);
       INSERT INTO fresh VALUES ('k', 18446744073709551615);
       DROP TABLE fresh;
       INSERT INTO t2 VALUES (7, 'end', 1, 'z');`,
    );
    const events = await collect(iterate(session), sawRow('t2', 'end'));
    expect(transcript(events)).toEqual([
      'begin',
      'insert t ["1","a","1.50"]',
      'insert t ["2",null,"-0.25"]',
      'commit',
      'begin',
      'update t ["1","a","1.50"] -> ["1","b","1.50"]',
      'commit',
      'begin',
      'delete t ["2",null,"-0.25"]',
      'commit',
      'begin',
      'insert t ["3","xa","3.00"]',
      'commit',
      'begin',
      `altered t [{"op":"added","column":"note","fill":{"kind":"value","text":"n"}},{"op":"renamed","from":"name","to":"label"}]`,
      'commit',
      'begin',
      'insert t ["5","after","0.00","n"]',
      'commit',
      'begin',
      'truncate t',
      'commit',
      'begin',
      'altered t→t2 []',
      'commit',
      'begin',
      'insert t2 ["6","renamed","1.00","z"]',
      'commit',
      'begin',
      'created fresh (k character varying(10), v numeric(20,0))',
      'commit',
      'begin',
      'insert fresh ["k","18446744073709551615"]',
      'commit',
      'begin',
      'dropped fresh',
      'commit',
      'begin',
      'insert t2 ["7","end","1.00","z"]',
      'commit',
    ]);
    // Positions only grow; the rename kept the table's id.
    const commits = events.filter((e): e is Extract<Ev, { tag: 'commit' }> => e.tag === 'commit');
    for (let i = 1; i < commits.length; i++)
      expect(commits[i]!.position.compare(commits[i - 1]!.position)).toBeGreaterThan(0);
    const ids = new Set(
      events.flatMap((e) => (e.tag === 'insert' && e.table.name.startsWith('t') ? [e.table.relationId] : [])),
    );
    expect(ids.size).toBe(1);
    // A new connector (a restart) describes the renamed table under the id the log knows.
    const restarted = connector(db.url);
    const [t2] = (await restarted.describe(['t2'], { knownTables: [{ ...tables[0]!, name: 't2' }] })).tables;
    expect(t2!.relationId).toBe(tables[0]!.relationId);
    expect((await connector(db.url).describe(['t2'])).tables[0]!.relationId).not.toBe(tables[0]!.relationId);
  });

  it('follows CREATE TABLE … SELECT: the new table, then its copied rows, in one transaction', async () => {
    const db = await src.freshDatabase('ctas');
    await src.sql(
      db.name,
      "CREATE TABLE t (id int PRIMARY KEY, v varchar(5)); INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    );
    const c = connector(db.url);
    const tables = (await c.describe(['t'])).tables;
    await c.capture(tables);
    const session = await c.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    onTestFinished(() => session.close());
    await src.sql(
      db.name,
      "CREATE TABLE copy (PRIMARY KEY (id)) SELECT id, v FROM t; INSERT INTO t VALUES (3, 'end')",
    );
    const events = await collect(iterate(session), sawRow('t', 'end'));
    expect(transcript(events)).toEqual([
      'begin',
      'created copy (id integer, v character varying(5))',
      'insert copy ["1","a"]',
      'insert copy ["2","b"]',
      'commit',
      'begin',
      'insert t ["3","end"]',
      'commit',
    ]);
  });

  it('follows odd names through DDL: quotes, dots, spaces, non-ASCII, a swap of two tables by RENAME', async () => {
    const db = await src.freshDatabase('names');
    await src.sql(
      db.name,
      'CREATE TABLE `a.b` (`na``me` int PRIMARY KEY, `prix €` decimal(6,2)); CREATE TABLE `Order Items` (id int PRIMARY KEY, `select` text)',
    );
    const c = connector(db.url);
    const tables = (await c.describe(['"a.b"', 'Order Items'])).tables;
    expect(tables.map((t) => t.name)).toEqual(['Order Items', 'a.b']);
    await c.capture(tables);
    const session = await c.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    onTestFinished(() => session.close());
    await src.sql(
      db.name,
      "INSERT INTO `a.b` VALUES (1, 9.5); ALTER TABLE `a.b` CHANGE `prix €` `prix ¥` decimal(8,2); RENAME TABLE `a.b` TO tmp, `Order Items` TO `a.b`, tmp TO `Order Items`; INSERT INTO `a.b` VALUES (2, 'end')",
    );
    const events = await collect(iterate(session), sawRow('a.b', 'end'));
    expect(transcript(events)).toEqual([
      'begin',
      'insert a.b ["1","9.50"]',
      'commit',
      'begin',
      'altered a.b [{"op":"renamed","from":"prix €","to":"prix ¥"},{"op":"retyped","column":"prix ¥","fromType":"numeric(6,2)","toType":"numeric(8,2)","reproducible":true}]',
      'commit',
      'begin',
      'altered a.b→tmp []',
      'altered Order Items→a.b []',
      'altered tmp→Order Items []',
      'commit',
      'begin',
      'insert a.b ["2","end"]',
      'commit',
    ]);
    // After the swap, `a.b` is the table first described as `Order Items`: same id.
    const inserts = events.filter((e) => e.tag === 'insert');
    const id = (name: string) => tables.find((t) => t.name === name)!.relationId;
    expect(inserts.map((e) => e.tag === 'insert' && e.table.relationId)).toEqual([
      id('a.b'),
      id('Order Items'),
    ]);
  });

  it('resumes after any delivered commit with exactly what follows, across an open XA transaction', async () => {
    const db = await src.freshDatabase('resume');
    await src.sql(db.name, 'CREATE TABLE t (id int PRIMARY KEY, v text)');
    const c = connector(db.url);
    const tables = (await c.describe(['t'])).tables;
    await c.capture(tables);
    const s1 = await c.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    await src.sql(db.name, `INSERT INTO t VALUES (1, 'one')`);
    const x = await src.connect(db.name);
    await x.query(`XA START 'open'; INSERT INTO t VALUES (2, 'xa'); XA END 'open'; XA PREPARE 'open'`);
    await src.sql(db.name, `INSERT INTO t VALUES (3, 'three')`);
    await x.query(`XA COMMIT 'open'`);
    await x.end();
    await src.sql(db.name, `INSERT INTO t VALUES (4, 'end')`);
    const all = await collect(iterate(s1), sawRow('t', 'end'));
    await s1.close();
    const commits = all.filter((e): e is Extract<Ev, { tag: 'commit' }> => e.tag === 'commit');
    const rowsAfter = (i: number) =>
      transcript(all.slice(all.indexOf(commits[i]!) + 1)).filter((l) => l.startsWith('insert'));
    for (let i = 0; i < commits.length; i++) {
      const after = c.positions.parse(commits[i]!.position.toString());
      const s = await c.replicate({ after, knownTables: tables, acceptStartAfter: () => false });
      const final = commits[commits.length - 1]!.position;
      const got = await collect(iterate(s), () => s.sourceEnd !== null && s.sourceEnd.compare(final) >= 0);
      await s.close();
      expect(
        transcript(got).filter((l) => l.startsWith('insert')),
        `resumed after ${after.toString()}`,
      ).toEqual(rowsAfter(i));
    }
    // The commit between XA PREPARE and XA COMMIT carries a restart point before the prepare.
    expect(commits.some((p) => p.position.toString().includes(';restart='))).toBe(true);
  });

  it('delivers a schema change made while nobody was reading at its own position, from the known shape', async () => {
    const db = await src.freshDatabase('down');
    await src.sql(db.name, 'CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(3))');
    const c1 = connector(db.url);
    const tables = (await c1.describe(['t'])).tables;
    await c1.capture(tables);
    const s1 = await c1.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    await src.sql(db.name, "INSERT INTO t VALUES (1, 1, 'x')");
    const before = await collect(iterate(s1), sawRow('t', 'x'));
    await s1.close();
    const last = before.filter((e) => e.tag === 'commit').pop()!;
    if (last.tag !== 'commit') throw new Error('unreachable');
    // Stopped: the table changes shape, rows are written in both shapes.
    await src.sql(
      db.name,
      "INSERT INTO t VALUES (2, 2, 'y'); ALTER TABLE t DROP COLUMN a, MODIFY b varchar(10); INSERT INTO t VALUES (3, 'longer'); ALTER TABLE t ADD COLUMN c int; INSERT INTO t VALUES (4, 'end', 4)",
    );
    const c2 = connector(db.url);
    const s2 = await c2.replicate({
      after: c2.positions.parse(last.position.toString()),
      knownTables: tables,
      acceptStartAfter: () => false,
    });
    onTestFinished(() => s2.close());
    const events = await collect(iterate(s2), sawRow('t', 'end'));
    expect(transcript(events)).toEqual([
      'begin',
      'insert t ["2","2","y"]',
      'commit',
      'begin',
      'altered t [{"op":"dropped","column":"a"},{"op":"retyped","column":"b","fromType":"character varying(3)","toType":"character varying(10)","reproducible":true}]',
      'commit',
      'begin',
      'insert t ["3","longer"]',
      'commit',
      'begin',
      'altered t [{"op":"added","column":"c","fill":{"kind":"null"}}]',
      'commit',
      'begin',
      'insert t ["4","end","4"]',
      'commit',
    ]);
  });

  it('advances the position on transactions of other databases and reports the source end on heartbeats', async () => {
    const db = await src.freshDatabase('idle');
    const other = await src.freshDatabase('noise');
    await src.sql(db.name, 'CREATE TABLE t (id int PRIMARY KEY)');
    await src.sql(other.name, 'CREATE TABLE n (id int PRIMARY KEY)');
    const c = connector(db.url);
    const tables = (await c.describe(['t'])).tables;
    await c.capture(tables);
    const s = await c.replicate({ after: null, knownTables: tables, acceptStartAfter: () => false });
    onTestFinished(() => s.close());
    await src.sql(other.name, 'INSERT INTO n VALUES (1)');
    const it = iterate(s);
    const events = await collect(it, (ev) =>
      ev.some((e) => e.tag === 'commit' && e.position.compare(s.start) > 0),
    );
    expect(transcript(events)).toEqual([]);
    const last = events.filter((e) => e.tag === 'commit').pop() as Extract<Ev, { tag: 'commit' }>;
    // Idle now: heartbeats (empty batches) keep the source end current, equal to what was delivered.
    await collect(
      it,
      () =>
        s.sourceEnd !== null &&
        s.sourceEnd.equals(last.position) &&
        s.sourceEnd.coordinate?.offset === last.position.coordinate?.offset,
    );
    expect(c.positions.distanceBytes(last.position, s.sourceEnd!)).toBe(0);
  });
});
