/**
 * The wallet workload of the online-copy tests: a table whose invariant (every account present,
 * a constant total) a reader checks in every snapshot while transfers flow, so a partial or torn
 * copy downstream is caught the moment it is visible.
 */
import { expect } from 'vitest';
import type pg from 'pg';
import type { TestDatabase } from './db.ts';
import { waitForCatchUp } from './changefeed.ts';
import { silentLogger, type Logger, type LogFields } from '../../src/runtime/logger.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import type { Changefeed } from '../../src/runtime/changefeed.ts';

export const ACCOUNTS = 20_000;

/** `wallet`: ACCOUNTS rows of 100; every 97th has a TOASTed note that transfers leave unchanged. */
export async function createWallet(src: TestDatabase, name = 'wallet'): Promise<void> {
  await src.query(`
    CREATE TABLE ${name} (id int PRIMARY KEY, balance bigint NOT NULL, note text);
    INSERT INTO ${name} SELECT g, 100,
      CASE WHEN g % 97 = 0 THEN (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 300) i) END
      FROM generate_series(1, ${ACCOUNTS}) g;
  `);
}

/** A wallet table: `accounts` rows of 100 each (ids 1..accounts). */
export interface Wallet {
  readonly name: string;
  readonly accounts: number;
}

const WALLET: readonly Wallet[] = [{ name: 'wallet', accounts: ACCOUNTS }];

/** Transfers between two accounts per transaction, round-robin over `tables` (totals stay). */
export async function startTransfers(db: TestDatabase, seed: number, tables: readonly Wallet[] = WALLET) {
  const random = mulberry32(seed);
  const c = await db.connect();
  let stopped = false;
  let n = 0;
  const running = (async () => {
    while (!stopped) {
      n++;
      const { name, accounts } = tables[n % tables.length]!;
      const a = 1 + Math.floor(random() * accounts);
      const b = 1 + ((a + Math.floor(random() * (accounts - 1))) % accounts);
      await c.query('BEGIN');
      await c.query(`UPDATE ${name} SET balance = balance - 7 WHERE id = $1`, [a]);
      await c.query(`UPDATE ${name} SET balance = balance + 7 WHERE id = $1`, [b]);
      await c.query('COMMIT');
    }
  })();
  return {
    async stop() {
      stopped = true;
      await running;
      return n;
    },
  };
}

/**
 * Runs `check` in one repeatable-read transaction after another on the sink until stopped (a
 * failed check fails `stop()`); the transaction is committed after each.
 */
export async function readInSnapshots(dst: TestDatabase, check: (c: pg.Client) => Promise<void>) {
  const c = await dst.connect();
  let stopped = false;
  const running = (async () => {
    while (!stopped) {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await check(c);
      await c.query('COMMIT');
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop(): Promise<void> {
      stopped = true;
      try {
        await running;
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Reads the sink in repeatable-read snapshots until stopped; fails on a partial or torn table:
 * each of `tables` downstream is absent, or holds every account with the constant total.
 */
export async function startReader(dst: TestDatabase, tables: readonly Wallet[] = WALLET) {
  const seen = { absent: 0, whole: 0 };
  const reader = await readInSnapshots(dst, async (c) => {
    for (const { name, accounts } of tables) {
      // Existence as of the snapshot: pg_class read by a query follows it (to_regclass looks
      // the name up in the current catalog, and finds a table committed after the snapshot).
      const { rows } = await c.query<{ e: boolean }>(
        `SELECT EXISTS (SELECT FROM pg_class WHERE relname = $1 AND relnamespace = 'public'::regnamespace) AS e`,
        [name],
      );
      if (!rows[0]?.e) {
        seen.absent++;
        continue;
      }
      const r = await c.query<{ n: string; total: string }>(
        `SELECT count(*)::text AS n, coalesce(sum(balance), 0)::text AS total FROM ${name}`,
      );
      expect(r.rows[0], `${name} downstream is whole and consistent`).toEqual({
        n: String(accounts),
        total: String(accounts * 100),
      });
      seen.whole++;
    }
  });
  return {
    async stop() {
      await reader.stop();
      return seen;
    },
  };
}

/**
 * The end of an in-process copy under load: waits for the swap, lets the stream run on a little,
 * stops the transfers, waits for the downstream to catch up, stops the reader and the changefeed
 * (which must not have failed). Returns the transfers made and what the reader saw.
 */
export async function finishCopyUnderLoad(o: {
  src: TestDatabase;
  dst: TestDatabase;
  log: ReturnType<typeof recordingLogger>;
  feed: Changefeed;
  transfers: Awaited<ReturnType<typeof startTransfers>>;
  reader: Awaited<ReturnType<typeof startReader>>;
}): Promise<{ made: number; seen: { absent: number; whole: number } }> {
  await waitFor(() => o.log.lines.some((l) => l.msg === 'online copy swapped in'), 'the swap');
  await new Promise((r) => setTimeout(r, 500));
  const made = await o.transfers.stop();
  await untilCaughtUp(o.src, o.dst);
  const seen = await o.reader.stop();
  expect(o.feed.status().error).toBeNull();
  await o.feed.stop();
  expect(made).toBeGreaterThan(20);
  return { made, seen };
}

/** No shadow table of an online copy is left downstream. */
export async function expectNoShadowLeft(dst: TestDatabase): Promise<void> {
  const left = await dst.query(
    `SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE '\\_tidemark\\_copy\\_%'`,
  );
  expect(left.rows[0]?.n).toBe(0);
}

/** A logger that keeps the info lines (message and fields). */
export function recordingLogger(): Logger & { lines: { msg: string; fields: LogFields }[] } {
  const lines: { msg: string; fields: LogFields }[] = [];
  const l: Logger & { lines: typeof lines } = {
    ...silentLogger,
    lines,
    level: 'info',
    info(msg: string, fields?: LogFields) {
      lines.push({ msg, fields: fields ?? {} });
    },
    child() {
      return l;
    },
  };
  return l;
}

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 90_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function untilCaughtUp(src: TestDatabase, dst: TestDatabase): Promise<void> {
  await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'test' });
}

/** The CLI config of these tests' changefeed `test` over `tables` (SRC_URL, DST_URL from the env). */
export function cliFeedYaml(tables: string, chunkRows: number): string {
  return `
changefeeds:
  - id: test
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [${tables}]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 1, chunkRows: ${chunkRows} }
`;
}

/** The fields of the first JSON log line with message `msg` in a CLI's output. */
export function logFields(output: string, msg: string): Record<string, unknown> {
  for (const line of output.split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
  }
  throw new Error(`no log line "${msg}" in:\n${output.slice(-3000)}`);
}
