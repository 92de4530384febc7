/**
 * `onNonEmptyTarget`: a new changefeed over target tables that already hold rows. Reconcile (the
 * default) leaves the target equal to the source (checked by verify) and rewrites only the rows
 * that differed — counted by the rows' xmin in PostgreSQL and by triggers in SQLite; fail names
 * the table and the option; truncate refills.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { verifyChangefeed } from '../../src/verify/verify-changefeed.ts';
import { VERIFY_OPTS, waitForSinkCheckpoint } from './verify-cases.ts';

const SEED = 20261204;
const ROWS = 600;

const ITEMS_DDL = `CREATE TABLE items (id integer NOT NULL, a text, n numeric(10,2), b boolean, PRIMARY KEY (id))`;
const PAIRS_DDL = `CREATE TABLE "pair.s" (x integer NOT NULL, y text NOT NULL, v text, PRIMARY KEY (x, y))`;
const FILL = [
  `INSERT INTO items SELECT g, CASE WHEN g % 5 = 0 THEN NULL WHEN g % 5 = 1 THEN '' ELSE 'a' || g END, g * 0.25, g % 2 = 0 FROM generate_series(1, ${ROWS}) g`,
  `INSERT INTO "pair.s" SELECT g % 10, 'y' || g, 'v' || g FROM generate_series(1, 200) g`,
];

/** A seeded choice of distinct ids in 1..ROWS for each kind of difference. */
function differences(seed: number, perKind: number) {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2147483648);
  const ids = new Set<number>();
  while (ids.size < perKind * 2) ids.add((next() % ROWS) + 1);
  const all = [...ids];
  return {
    missing: all.slice(0, perKind),
    changed: all.slice(perKind),
    extra: [ROWS + 1, ROWS + 7, ROWS + 50],
  };
}

async function sourceWithTables(): Promise<TestDatabase> {
  const src = await freshDatabase('rsrc');
  await src.query(`${ITEMS_DDL}; ${PAIRS_DDL}; CREATE TABLE log (x int, y text); ALTER TABLE log REPLICA IDENTITY FULL;
    INSERT INTO log VALUES (1, 'a'), (1, 'a'), (2, NULL)`);
  for (const sql of FILL) await src.query(sql);
  return src;
}

const TABLES = ['items', '"pair.s"', 'log'];

describe('onNonEmptyTarget', () => {
  it(
    'reconcile into PostgreSQL: equal afterwards, only the differing rows rewritten (counted by xmin)',
    { timeout: 120_000 },
    async () => {
      const src = await sourceWithTables();
      const dst = await freshDatabase('rdst');
      await dst.query(
        `${ITEMS_DDL}; ${PAIRS_DDL}; CREATE TABLE log (x int, y text); INSERT INTO log VALUES (3, 'stale')`,
      );
      for (const sql of FILL) await dst.query(sql);
      const d = differences(SEED, 25);
      await dst.query(`DELETE FROM items WHERE id = ANY($1)`, [d.missing]);
      await dst.query(`UPDATE items SET a = coalesce(a, '') || '!', n = n + 0.01 WHERE id = ANY($1)`, [
        d.changed,
      ]);
      await dst.query(`INSERT INTO items SELECT unnest($1::int[]), 'extra', 1, true`, [d.extra]);
      // Differences of form only (no difference of value): not rewritten.
      await dst.query(`UPDATE "pair.s" SET v = v WHERE false`);
      const before = new Map(
        (await dst.query<{ id: number; xmin: string }>('SELECT id, xmin::text FROM items')).rows.map((r) => [
          r.id,
          r.xmin,
        ]),
      );
      const pairsBefore = (await dst.query<{ xmin: string }>('SELECT xmin::text FROM "pair.s" ORDER BY x, y'))
        .rows;

      const cfg = testConfig({ source: src.url, sink: dst.url, tables: TABLES });
      const feed = startChangefeed(cfg, { logger: silentLogger });
      try {
        await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
        const r = await verifyChangefeed(cfg, VERIFY_OPTS);
        expect(r.equal).toBe(true);
        const after = (await dst.query<{ id: number; xmin: string }>('SELECT id, xmin::text FROM items'))
          .rows;
        const rewritten = after.filter((row) => before.get(row.id) !== row.xmin).map((row) => row.id);
        expect(rewritten.sort((a, b) => a - b)).toEqual([...d.missing, ...d.changed].sort((a, b) => a - b));
        expect(after.length).toBe(ROWS);
        expect(
          (await dst.query<{ xmin: string }>('SELECT xmin::text FROM "pair.s" ORDER BY x, y')).rows,
        ).toEqual(pairsBefore);
        expect((await dst.query('SELECT x, y FROM log ORDER BY x')).rows).toEqual([
          { x: 1, y: 'a' },
          { x: 1, y: 'a' },
          { x: 2, y: null },
        ]);
      } finally {
        await feed.stop();
      }
    },
  );

  it(
    'reconcile into SQLite: equal afterwards, writes counted by triggers equal the differences',
    { timeout: 120_000 },
    async () => {
      const src = await sourceWithTables();
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-reconcile-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const path = join(dir, 'replica.db');
      // The target as an earlier run of the SQLite sink left it, then drifted.
      const prior = testConfig({ id: 'prior', source: src.url, sink: `sqlite://${path}`, tables: TABLES });
      const first = startChangefeed(prior, { logger: silentLogger });
      await waitForSinkCheckpoint(prior.id, prior.sink, src);
      await first.stop();
      const d = differences(SEED + 1, 20);
      const db = new Database(path);
      try {
        db.exec(`DELETE FROM items WHERE id IN (${d.missing.join(',')})`);
        db.exec(`UPDATE items SET n = '0.5' WHERE id IN (${d.changed.join(',')})`);
        db.exec(`INSERT INTO items (id, a) VALUES ${d.extra.map((id) => `(${id}, 'extra')`).join(',')}`);
        db.exec(`CREATE TABLE audit (op TEXT, id INTEGER);
        CREATE TRIGGER ai AFTER INSERT ON items BEGIN INSERT INTO audit VALUES ('i', NEW.id); END;
        CREATE TRIGGER au AFTER UPDATE ON items BEGIN INSERT INTO audit VALUES ('u', NEW.id); END;
        CREATE TRIGGER ad AFTER DELETE ON items BEGIN INSERT INTO audit VALUES ('d', OLD.id); END;`);
      } finally {
        db.close();
      }
      const cfg = testConfig({ source: src.url, sink: `sqlite://${path}`, tables: TABLES });
      const feed = startChangefeed(cfg, { logger: silentLogger });
      try {
        await waitForSinkCheckpoint(cfg.id, cfg.sink, src, () => feed.status().error);
        const r = await verifyChangefeed(cfg, VERIFY_OPTS);
        expect(r.equal).toBe(true);
        const audit = new Database(path, { readonly: true });
        try {
          const ops = audit.prepare('SELECT op, id FROM audit ORDER BY id').all() as {
            op: string;
            id: number;
          }[];
          const touched = ops.filter((o) => o.op !== 'd').map((o) => o.id);
          expect([...new Set(touched)].sort((a, b) => a - b)).toEqual(
            [...d.missing, ...d.changed].sort((a, b) => a - b),
          );
          expect(ops.filter((o) => o.op === 'd').map((o) => o.id)).toEqual(d.extra);
        } finally {
          audit.close();
        }
      } finally {
        await feed.stop();
      }
    },
  );

  it(
    'fail: the changefeed stops naming the table and the option, and writes nothing',
    { timeout: 60_000 },
    async () => {
      const src = await sourceWithTables();
      const dst = await freshDatabase('rfail');
      await dst.query(`${ITEMS_DDL}; INSERT INTO items VALUES (1, 'x', 1, true)`);
      const cfg = testConfig({ source: src.url, sink: dst.url, tables: TABLES, onNonEmptyTarget: 'fail' });
      const feed = startChangefeed(cfg, { logger: silentLogger });
      await expect(feed.done).rejects.toMatchObject({ code: 'SINK_TARGET_NOT_EMPTY' });
      const e = await feed.done.catch((err: unknown) => err as Error & { hint: string });
      expect(e!.message).toContain('public.items');
      expect(e!.hint).toContain('onNonEmptyTarget');
      expect((await dst.query('SELECT count(*)::int AS n FROM items')).rows[0]?.n).toBe(1);
      expect((await dst.query(`SELECT to_regclass('public.log') AS t`)).rows[0]?.t).toBeNull();
    },
  );

  it('truncate: the target is emptied and refilled in the first epoch', { timeout: 60_000 }, async () => {
    const src = await sourceWithTables();
    const dst = await freshDatabase('rtrunc');
    await dst.query(`${ITEMS_DDL}; INSERT INTO items VALUES (${ROWS + 3}, 'x', 1, true)`);
    for (const sql of FILL.slice(0, 1)) await dst.query(sql);
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: TABLES, onNonEmptyTarget: 'truncate' });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    try {
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
      expect((await verifyChangefeed(cfg, VERIFY_OPTS)).equal).toBe(true);
    } finally {
      await feed.stop();
    }
  });
});
