/**
 * A new changefeed's initial snapshot killed (SIGKILL) part-way under write load, then restarted
 * (issue 12, "resumable"). The snapshot commits table by table, and a large table a chunk at a
 * time into the shadow of an online copy at the snapshot's position: the tables that committed
 * are kept and never read again; the unfinished one is copied online (shadow, chunks, swap) from
 * the sink's checkpoint — after its last committed chunk — and a second kill during that copy
 * costs at most the chunk in flight. A reader of the target never sees a table partial: each
 * `w<i>` downstream is absent, or holds every account with the constant total (transfers move
 * money, never make it).
 */
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { currentLsn, expectSameTables, waitForCatchUp } from '../support/changefeed.ts';
import { sqliteCheckpoint } from '../sink-contract/readers.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { runCli, testDataDir, writeConfig } from '../support/cli-process.ts';
import { expectNoShadowLeft, startReader, startTransfers } from '../support/wallet.ts';

/** Accounts per table: the last table is large so that the kill lands while it is read. */
const ACCOUNTS = [3000, 3000, 200_000] as const;
const CHUNK_ROWS = 2000;
const NAMES = ['w1', 'w2', 'w3'] as const;
const WALLETS = NAMES.map((name, i) => ({ name, accounts: ACCOUNTS[i]! }));

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every JSON log line with message `msg` in a CLI's output. */
function logLines(output: string, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const l = JSON.parse(line) as Record<string, unknown>;
      if (l.msg === msg) out.push(l);
    } catch {
      continue;
    }
  }
  return out;
}

/** Table `id`'s copy progress that committed downstream (at or before the sink's checkpoint epoch). */
async function readCommitted(
  dst: { query: (sql: string) => Promise<{ rows: Record<string, unknown>[] }> },
  progressFile: string,
  id: number,
): Promise<{ chunks: number; rows: number } | null> {
  if (!existsSync(progressFile)) return null;
  const cp = await dst.query(`SELECT epoch FROM tidemark.checkpoints WHERE changefeed = 'test'`);
  const epoch = Number(cp.rows[0]?.epoch ?? -1);
  const raw = JSON.parse(readFileSync(progressFile, 'utf8')) as {
    tables: Record<string, { epoch: number; progress: { chunks: number; rows: number } }[]>;
  };
  return (raw.tables[String(id)] ?? []).filter((e) => e.epoch <= epoch).at(-1)?.progress ?? null;
}

describe('initial snapshot across SIGKILL', () => {
  it(
    'keeps the tables that committed, copies the rest online from the checkpoint; readers never see a partial table',
    { timeout: 300_000 },
    async () => {
      const src = await freshDatabase('snr_src');
      const dst = await freshDatabase('snr_dst');
      for (const [i, name] of NAMES.entries()) {
        await src.query(`
          CREATE TABLE ${name} (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
          INSERT INTO ${name} SELECT g, 100, repeat('x', 40) FROM generate_series(1, ${ACCOUNTS[i]}) g;`);
      }
      // Empty, never written: left unfinished by the kill, its copy has no chunk and no change
      // to make its shadow; the swap failed on the missing shadow before (42P01, not retriable).
      await src.query(`CREATE TABLE w4 (id int PRIMARY KEY, v text)`);
      const w3 = (await src.query(`SELECT 'w3'::regclass::oid::int AS oid`)).rows[0]!.oid as number;
      const config = writeConfig(`
changefeeds:
  - id: test
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.w1, public.w2, public.w3, public.w4]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 1, chunkRows: ${CHUNK_ROWS} }
`);
      const env = { SRC_URL: src.url, DST_URL: dst.url };
      const exists = async (name: string) =>
        (await dst.query(`SELECT to_regclass('public.${name}') IS NOT NULL AS e`)).rows[0]!.e as boolean;
      const transfers = await startTransfers(src, 12, WALLETS);
      const reader = await startReader(dst, WALLETS);

      // The committed copy progress of w3 (valid up to the sink's checkpoint epoch).
      const progressFile = join(testDataDir(), 'copies', 'test.json');
      const committedProgress = () => readCommitted(dst, progressFile, w3);
      const committedChunks = async () => (await committedProgress())?.chunks ?? 0;

      // Run 1: killed after w1 and w2 committed, while w3 is read in the exported snapshot and
      // some of its chunks committed to its shadow.
      const first = runCli(['start', '--config', config], { env });
      let exited = false;
      void first.exited.then(() => (exited = true));
      await waitFor(
        async () => exited || (await exists('w3')) || (await committedChunks()) >= 3,
        'three snapshot chunks of w3 committed downstream',
      );
      expect(exited, first.output()).toBe(false);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      expect(await exists('w3'), 'w3 committed before the kill: the test did not interrupt it').toBe(false);
      const snapshotChunks = await committedChunks();
      expect(snapshotChunks, 'chunks of w3 the interrupted snapshot committed').toBeGreaterThanOrEqual(3);
      const committed = logLines(first.output(), 'snapshot table committed').map((l) => l.table);
      expect(committed.slice(0, 2)).toEqual(['public.w1', 'public.w2']);
      expect(committed).not.toContain('public.w3');

      // Run 2: w1 and w2 kept, w3 copied online after its committed chunks; killed once more of
      // its chunks committed.
      const second = runCli(['start', '--config', config], { env });
      exited = false;
      void second.exited.then(() => (exited = true));
      await waitFor(
        async () => exited || (await committedChunks()) >= snapshotChunks + 5,
        'five more chunks of w3 committed',
      );
      expect(exited, second.output()).toBe(false);
      const before = await committedProgress();
      second.child.kill('SIGKILL');
      expect(await second.exited).toBe('SIGKILL');
      const out2 = second.output();
      expect(out2).not.toContain('"snapshot started"');
      const resumed2 = logLines(out2, 'online copy resumed');
      expect(resumed2.map((l) => l.table as string).sort()).toEqual(['public.w3', 'public.w4']);
      // Not from the first key: from the chunks the snapshot committed.
      const w3resumed = resumed2.find((l) => l.table === 'public.w3')!;
      expect(w3resumed.chunks).toBe(snapshotChunks);
      expect(w3resumed.rows as number).toBeGreaterThanOrEqual(3 * CHUNK_ROWS);
      expect(logLines(out2, 'online copy swapped in').map((l) => l.table)).toEqual(['public.w4']);
      expect(logLines(out2, 'online copy started')).toEqual([]);

      // Run 3: goes on from w3's committed chunks; w1 and w2 are not read again.
      const last = runCli(['start', '--config', config], { env });
      await waitFor(() => last.output().includes('online copy swapped in'), 'the swap').catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${last.output().slice(-6000)}`);
        },
      );
      const made = await transfers.stop();
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test' });
      const seen = await reader.stop();
      last.child.kill('SIGTERM');
      expect(await last.exited, last.output()).toBe(0);
      const out3 = last.output();
      expect(out3).not.toContain('"snapshot started"');
      const resumed = logLines(out3, 'online copy resumed');
      expect(resumed.map((l) => l.table)).toEqual(['public.w3']);
      expect(resumed[0]!.chunks as number).toBeGreaterThanOrEqual(before!.chunks);
      const swapped = logLines(out3, 'online copy swapped in');
      expect(swapped.map((l) => l.table)).toEqual(['public.w3']);
      // Chunks read by the last run: those left after the committed ones, plus the one in flight.
      const total = swapped[0]!.chunks as number;
      expect(swapped[0]!.reads as number).toBeLessThanOrEqual(total - (resumed[0]!.chunks as number) + 1);
      expect(swapped[0]!.reads as number).toBeLessThanOrEqual(
        Math.ceil((ACCOUNTS[2] - (resumed[0]!.rows as number)) / CHUNK_ROWS) + 1,
      );
      expect(made).toBeGreaterThan(20);
      expect(seen.whole).toBeGreaterThan(0);
      await expectSameTables(src.url, dst.url, [...NAMES, 'w4']);
      await expectNoShadowLeft(dst);
    },
  );

  it(
    'a single large table into SQLite: goes on after its committed chunks; readers see it absent or whole',
    { timeout: 300_000 },
    async () => {
      const ROWS = 200_000;
      const src = await freshDatabase('snr1_src');
      await src.query(`
        CREATE TABLE solo (id int PRIMARY KEY, balance bigint NOT NULL, pad text);
        INSERT INTO solo SELECT g, 100, repeat('y', 40) FROM generate_series(1, ${ROWS}) g;`);
      const id = (await src.query(`SELECT 'solo'::regclass::oid::int AS oid`)).rows[0]!.oid as number;
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-snr-sqlite-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const path = join(dir, 'replica.db');
      const config = writeConfig(`
changefeeds:
  - id: test
    source: \${SRC_URL}
    sink: sqlite://${path}
    tables: [public.solo]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 1, chunkRows: ${CHUNK_ROWS} }
`);
      const env = { SRC_URL: src.url };
      const progressFile = join(testDataDir(), 'copies', 'test.json');
      /** Chunks of `solo` committed downstream: its progress at or before the SQLite checkpoint. */
      const committed = (): { chunks: number; rows: number } | null => {
        const cp = sqliteCheckpoint(path, 'test');
        if (cp === null || !existsSync(progressFile)) return null;
        const raw = JSON.parse(readFileSync(progressFile, 'utf8')) as {
          tables: Record<string, { epoch: number; progress: { chunks: number; rows: number } }[]>;
        };
        return (raw.tables[String(id)] ?? []).filter((e) => e.epoch <= cp.epoch).at(-1)?.progress ?? null;
      };
      const transfers = await startTransfers(src, 5, [{ name: 'solo', accounts: ROWS }]);
      const reader = sqliteReader(path, 'solo', ROWS);

      // Run 1: killed while the snapshot reads `solo`, once three of its chunks committed.
      const first = runCli(['start', '--config', config], { env });
      let exited = false;
      void first.exited.then(() => (exited = true));
      await waitFor(() => exited || (committed()?.chunks ?? 0) >= 3, 'three snapshot chunks committed');
      expect(exited, first.output()).toBe(false);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      const before = committed()!;
      expect(logLines(first.output(), 'snapshot table committed')).toEqual([]);

      // Run 2: the online copy goes on after them; the stream from the snapshot's position is
      // applied to the shadow.
      const last = runCli(['start', '--config', config], { env });
      await waitFor(() => last.output().includes('online copy swapped in'), 'the swap').catch(
        (e: unknown) => {
          throw new Error(`${String(e)}\n${last.output().slice(-6000)}`);
        },
      );
      const made = await transfers.stop();
      const end = await currentLsn(src.url);
      await waitFor(() => {
        const cp = sqliteCheckpoint(path, 'test');
        return cp !== null && Lsn.parse(cp.position).compare(end) >= 0;
      }, 'the sink caught up');
      const seen = reader.stop();
      last.child.kill('SIGTERM');
      expect(await last.exited, last.output()).toBe(0);
      const out = last.output();
      expect(out).not.toContain('"snapshot started"');
      const resumed = logLines(out, 'online copy resumed');
      expect(resumed.map((l) => [l.table, l.chunks, l.rows])).toEqual([
        ['public.solo', before.chunks, before.rows],
      ]);
      const swapped = logLines(out, 'online copy swapped in')[0]!;
      // The last run read only the rows after the committed chunks, plus at most one chunk more.
      expect(swapped.reads as number).toBeLessThanOrEqual(Math.ceil((ROWS - before.rows) / CHUNK_ROWS) + 1);
      expect(made).toBeGreaterThan(20);
      expect(seen.whole).toBeGreaterThan(0);
      const want = (
        await src.query(`SELECT id::text || ':' || balance::text AS r FROM solo ORDER BY id`)
      ).rows.map((r) => r.r as string);
      const db = new Database(path, { readonly: true });
      try {
        const got = (
          db.prepare(`SELECT id || ':' || balance AS r FROM solo ORDER BY id`).all() as { r: string }[]
        ).map((r) => r.r);
        expect(got.length).toBe(ROWS);
        expect(got).toEqual(want);
        const shadows = db
          .prepare(
            `SELECT count(*) AS n FROM sqlite_master WHERE name LIKE '\\_tidemark\\_copy\\_%' ESCAPE '\\'`,
          )
          .get() as { n: number };
        expect(shadows.n).toBe(0);
      } finally {
        db.close();
      }
    },
  );
});

/**
 * Reads `table` in SQLite read transactions every few ms until stopped; each must show it absent,
 * or with every account and the constant total.
 */
function sqliteReader(path: string, table: string, accounts: number) {
  const seen = { absent: 0, whole: 0 };
  let failure: unknown = null;
  let db: Database.Database | null = null;
  const timer = setInterval(() => {
    if (!existsSync(path) || failure !== null) return;
    db ??= new Database(path, { readonly: true });
    db.exec('BEGIN');
    try {
      const exists = db
        .prepare(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?`)
        .get(table) as { n: number };
      if (exists.n === 0) seen.absent++;
      else {
        const r = db
          .prepare(`SELECT count(*) AS n, coalesce(sum(balance), 0) AS total FROM "${table}"`)
          .get() as { n: number; total: number };
        if (r.n !== accounts || r.total !== accounts * 100)
          failure = new Error(`${table} downstream is partial or torn: ${JSON.stringify(r)}`);
        seen.whole++;
      }
    } finally {
      db.exec('COMMIT');
    }
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      db?.close();
      if (failure !== null) throw failure;
      return seen;
    },
  };
}
