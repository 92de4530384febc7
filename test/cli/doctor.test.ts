/**
 * `tidemark doctor` against real databases: a healthy changefeed is safe to start (exit 0); a
 * source with the shapes that break replication or the source itself is not (exit 1), and every
 * problem comes with its fix.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/main.ts';
import type { ChangefeedRuntime } from '../../src/cli/runtime-adapter.ts';
import { adminQuery, freshDatabase } from '../support/db.ts';

async function doctor(yaml: string, extra: string[] = []): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-doctor-'));
  const file = join(dir, 'tidemark.yaml');
  writeFileSync(file, yaml);
  let out = '';
  const code = await runCli(['doctor', '--config', file, '--data-dir', dir, ...extra], {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (out += t) },
    env: {},
    cwd: dir,
    shutdown: new AbortController().signal,
    loadRuntime: () => Promise.reject(new Error('doctor starts nothing')) as Promise<ChangefeedRuntime>,
  });
  return { code, out };
}

describe('tidemark doctor', () => {
  it('says a healthy changefeed is safe to start', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await src.query(`CREATE TABLE "Order" (id int PRIMARY KEY, v text)`);
    const r = await doctor(
      `changefeeds:\n  - id: ok\n    source: ${src.url}\n    sink: ${dst.url}\n    tables: ['public.Order']\n`,
    );
    expect(r.out).toMatch(/✓ source\.reachable\s+connected to postgres:\/\/tidemark:\*\*\*@/);
    expect(r.out).toMatch(/✓ source\.wal_level/);
    expect(r.out).toMatch(/✓ source\.version\s+PostgreSQL \d+\.\d+/);
    expect(r.out).toMatch(/✓ source\.schema_capture\s+role tidemark is a superuser/);
    expect(r.out).toMatch(/✓ source\.table\s+public\."Order": primary key/);
    expect(r.out).toMatch(/✓ sink\.permissions/);
    expect(r.out).toContain('Safe to start');
    expect(r.out).not.toContain('tidemark-test-pw');
    expect(r.code, r.out).toBe(0);
  });

  it('lists every problem with a fix and exits 1', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await src.query(`
      CREATE TABLE nothing_ident (id int PRIMARY KEY); ALTER TABLE nothing_ident REPLICA IDENTITY NOTHING;
      CREATE TABLE no_key (a int, b text);
      CREATE TABLE full_no_key (a int); ALTER TABLE full_no_key REPLICA IDENTITY FULL;
      CREATE TABLE ev (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE ev_2026 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      CREATE TABLE alt (id int PRIMARY KEY, code text NOT NULL);
      CREATE UNIQUE INDEX alt_code ON alt (code); ALTER TABLE alt REPLICA IDENTITY USING INDEX alt_code;
      CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);`);
    const role = `norepl_${src.name.slice(-6)}`;
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-norepl-123'`);
    await src.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
    const u = new URL(src.url);
    u.username = role;
    u.password = 'pw-norepl-123';
    const r = await doctor(
      `changefeeds:\n  - id: bad\n    source: ${u.toString()}\n    sink: ${dst.url}\n    tables: ['public.*', public.missing]\n`,
    );
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(
      /✗ source\.replication_privilege .*neither REPLICATION nor SUPERUSER\n\s+fix: ALTER ROLE norepl_\w+ WITH REPLICATION;/,
    );
    expect(r.out).toMatch(/✗ source\.tables .*public\.missing/);
    // Not a superuser, nothing installed: schema changes would be seen degraded — a warning, with the fix.
    expect(r.out).toMatch(
      /! source\.schema_capture\s+role norepl_\w+ is not a superuser.*\n\s+fix: Start Tidemark once with a superuser/,
    );
    await src.query(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}`);
    await adminQuery(`DROP ROLE ${role}`);

    const named = ['nothing_ident', 'no_key', 'full_no_key', 'ev', 'alt', 'scratch'].map(
      (t) => `public.${t}`,
    );
    const all = await doctor(
      `changefeeds:\n  - id: bad\n    source: ${src.url}\n    sink: ${dst.url}\n    tables: [${named.join(', ')}]\n`,
    );
    expect(all.code, all.out).toBe(1);
    // The connector's own refusals (catalog.ts), with its hints.
    expect(all.out).toMatch(
      /✗ source\.table\s+public\.nothing_ident: REPLICA IDENTITY NOTHING.*\n\s+fix: .*REPLICA IDENTITY DEFAULT/,
    );
    expect(all.out).toMatch(
      /✗ source\.table\s+public\.no_key: no primary key.*\n\s+fix: .*REPLICA IDENTITY FULL/,
    );
    expect(all.out).toMatch(/✗ source\.table\s+public\.scratch: UNLOGGED.*\n\s+fix: .*SET LOGGED/);
    expect(all.out).toMatch(
      /✓ source\.table\s+public\.full_no_key: REPLICA IDENTITY FULL \(no key: duplicates kept\)/,
    );
    // What the connector replicates: a partitioned table as its root, a replica identity index as the key.
    expect(all.out).toMatch(
      /✓ source\.table\s+public\.ev: primary key, partitioned \(published as the root\)/,
    );
    expect(all.out).toMatch(/✓ source\.table\s+public\.alt: keyed by its replica identity index/);
    expect(all.out).toMatch(/Not safe to start: 3 problems/);

    // Matched only by a pattern, the same tables are left out by the connector: warnings, safe to start.
    const pattern = await doctor(
      `changefeeds:\n  - id: pat\n    source: ${src.url}\n    sink: ${dst.url}\n    tables: ['public.*']\n`,
    );
    expect(pattern.out).toMatch(
      /! source\.table\s+public\.no_key: left out \(matched by a pattern\): no primary key.*\n\s+fix: /,
    );
    expect(pattern.out).toMatch(/Safe to start \(3 warnings\)/);
    expect(pattern.code, pattern.out).toBe(0);

    const json = await doctor(
      `changefeeds:\n  - id: bad\n    source: ${src.url}\n    sink: postgres://tidemark:wrong-pw-123@127.0.0.1:1/x\n    tables: [public.full_no_key]\n`,
      ['--json'],
    );
    const report = JSON.parse(json.out) as {
      reports: { ok: boolean; checks: { id: string; status: string; fix?: string }[] }[];
    };
    expect(report.reports[0]?.ok).toBe(false);
    const sink = report.reports[0]?.checks.find((c) => c.id === 'sink.reachable');
    expect(sink?.status).toBe('fail');
    expect(sink?.fix).toBeTruthy();
    expect(json.out).not.toContain('wrong-pw-123');
  });
});
