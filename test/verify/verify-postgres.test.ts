/**
 * `tidemark verify` into a PostgreSQL sink: equal on the hostile shapes and on every type family
 * (test/support/all-types.ts); tampered downstream rows found, each kind; equal while the source
 * is written during the comparison; the CLI's exit codes.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { freshDatabase } from '../support/db.ts';
import { testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { verifyChangefeed } from '../../src/verify/verify-changefeed.ts';
import { countDifferences, type VerifyResult } from '../../src/verify/verify-tables.ts';
import { allTypesInsertSql, allTypesSetupSql } from '../support/all-types.ts';
import { runCli } from '../../src/cli/main.ts';
import { HOSTILE_SETUP_SQL, HOSTILE_TABLES, TAMPERED, tamperStatements } from './hostile-fixture.ts';

const OPTS = { chunkRows: 7, rounds: 10, waitMs: 30_000 };

function verdict(r: VerifyResult, name: string) {
  const v = r.tables.find((t) => t.table.name === name);
  if (!v) throw new Error(`no verdict for ${name}`);
  return v;
}

describe('verify into PostgreSQL', () => {
  it(
    'equal data on hostile shapes: equal; tampered downstream: every difference found',
    { timeout: 120_000 },
    async () => {
      const src = await freshDatabase('vsrc');
      const dst = await freshDatabase('vdst');
      await src.query(HOSTILE_SETUP_SQL);
      const cfg = testConfig({ source: src.url, sink: dst.url, tables: HOSTILE_TABLES });
      const feed = startChangefeed(cfg, { logger: silentLogger });
      try {
        await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
        const equal = await verifyChangefeed(cfg, OPTS);
        expect(
          equal.tables.map((v) => [v.table.name, countDifferences(v)]).filter(([, n]) => n !== 0),
        ).toEqual([]);
        expect(equal.equal).toBe(true);
        expect(verdict(equal, 'composite').ranges).toBeGreaterThan(10);
        expect(verdict(equal, 'keyless').sourceRows).toBe(4);

        for (const sql of tamperStatements({
          q: (n) => `"${n}"`,
          fam: 'public.fam',
          user: 'public."User"',
          bytes: `'\\xdeadbeef'`,
          trueValue: 'NOT b',
          json: `'{"k": 7, "a": [1, "two", null], "x": 1}'`,
        }))
          await dst.query(sql);
        // A keyless duplicate lost: one copy of (1, 'dup').
        await dst.query(`DELETE FROM keyless WHERE ctid = (SELECT min(ctid) FROM keyless WHERE x = 1)`);
        const r = await verifyChangefeed(cfg, OPTS);
        expect(r.equal).toBe(false);
        const fam = verdict(r, 'fam');
        expect(fam.differences.changed.map((c) => c.source[0]).sort()).toEqual(
          [...TAMPERED.changedFam].sort(),
        );
        expect(fam.differences.missing.map((row) => row[0])).toEqual([TAMPERED.missingFam]);
        expect(fam.differences.extra.map((row) => row[0])).toEqual([TAMPERED.extraFam]);
        const user = verdict(r, 'User');
        expect(user.differences.changed.map((c) => [c.source[0], c.target[1]])).toEqual([
          [TAMPERED.changedUser, null],
        ]);
        expect(verdict(r, 'keyless').differences.missing).toEqual([['1', 'dup']]);
        const others = r.tables.filter((v) => !['fam', 'User', 'keyless'].includes(v.table.name));
        expect(others.map(countDifferences)).toEqual(others.map(() => 0));
      } finally {
        await feed.stop();
      }
    },
  );

  it('every type family (all-types) verifies equal', { timeout: 120_000 }, async () => {
    const src = await freshDatabase('vtypes');
    const dst = await freshDatabase('vtypes_dst');
    for (const sql of allTypesSetupSql()) await src.query(sql);
    for (const sql of allTypesInsertSql()) await src.query(sql);
    const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['all_types'] });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    try {
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
      const r = await verifyChangefeed(cfg, OPTS);
      expect(r.tables.flatMap((v) => [...v.differences.changed, ...v.differences.missing])).toEqual([]);
      expect(r.equal).toBe(true);
    } finally {
      await feed.stop();
    }
  });

  it(
    'equal while the source is written during the comparison (ranges re-read, no false difference)',
    { timeout: 120_000 },
    async () => {
      const src = await freshDatabase('vbusy');
      const dst = await freshDatabase('vbusy_dst');
      await src.query(`CREATE TABLE acct (id int PRIMARY KEY, balance bigint NOT NULL);
      INSERT INTO acct SELECT g, 1000 FROM generate_series(1, 2000) g`);
      const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['acct'] });
      const feed = startChangefeed(cfg, { logger: silentLogger });
      const writer = await src.connect();
      let writing = true;
      let writes = 0;
      const load = (async () => {
        // Deterministic sequence of transfers (seed 12), for about the first two seconds of verify.
        let x = 12;
        const until = Date.now() + 2000;
        while (writing && Date.now() < until) {
          x = (x * 1103515245 + 12345) % 2147483648;
          const a = (x % 2000) + 1;
          const b = ((x >> 11) % 2000) + 1;
          await writer.query('BEGIN');
          await writer.query('UPDATE acct SET balance = balance - 1 WHERE id = $1', [a]);
          await writer.query('UPDATE acct SET balance = balance + 1 WHERE id = $1', [b]);
          await writer.query('COMMIT');
          writes++;
        }
      })();
      try {
        await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
        const r = await verifyChangefeed(cfg, { chunkRows: 100, rounds: 30, waitMs: 30_000 });
        expect(writes).toBeGreaterThan(0);
        expect(r.tables.map(countDifferences)).toEqual([0]);
        expect(r.equal).toBe(true);
      } finally {
        writing = false;
        await load;
        await feed.stop();
      }
    },
  );

  it(
    'the CLI: exit 0 equal, 1 different (rows printed), 2 when the downstream is not caught up',
    { timeout: 120_000 },
    async () => {
      const src = await freshDatabase('vcli');
      const dst = await freshDatabase('vcli_dst');
      await src.query(
        `CREATE TABLE "User" (id int PRIMARY KEY, name text); INSERT INTO "User" VALUES (1, 'a'), (2, 'b')`,
      );
      const cfg = testConfig({ source: src.url, sink: dst.url, tables: ['"User"'] });
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-verify-cli-'));
      const file = join(dir, 'tidemark.yaml');
      writeFileSync(
        file,
        `changefeeds:\n  - id: ${cfg.id}\n    source: ${src.url}\n    sink: ${dst.url}\n    tables: ['"User"']\n`,
      );
      const run = async (extra: string[] = []) => {
        let out = '';
        let err = '';
        const sink = (f: (s: string) => void) =>
          new Writable({ write: (c, _e, cb) => (f(String(c)), cb()) }) as unknown as NodeJS.WriteStream;
        const code = await runCli(['verify', '--config', file, ...extra], {
          stdout: sink((s) => (out += s)),
          stderr: sink((s) => (err += s)),
          env: process.env,
          cwd: dir,
          shutdown: new AbortController().signal,
          loadRuntime: () => Promise.reject(new Error('not used')),
        });
        return { code, out, err };
      };
      const feed = startChangefeed(cfg, { logger: silentLogger });
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: cfg.id });
      const ok = await run();
      expect(ok.code, ok.err).toBe(0);
      expect(ok.out).toContain('EQUAL');
      await dst.query(`UPDATE "User" SET name = '' WHERE id = 2`);
      const bad = await run();
      expect(bad.code, bad.err).toBe(1);
      expect(bad.out).toContain('changed:');
      expect(bad.out).toContain('name="b"');
      expect(bad.out).toContain('name=""');
      await feed.stop();
      // Stopped: the source moves on (another database's writes, heartbeats none), the checkpoint does not.
      await src.query(`UPDATE "User" SET name = 'c' WHERE id = 1`);
      const stale = await run(['--wait-ms', '300']);
      expect(stale.code).toBe(2);
      expect(stale.err).toContain('VERIFY_NOT_CAUGHT_UP');
      expect(stale.err).not.toContain(new URL(src.url).password);
    },
  );
});
