/**
 * End-to-end runs of the real changefeed (`tidemark start --config`, the built CLI) from a
 * PostgreSQL source into any sink, read back the way a downstream reader would:
 *
 *   source (accounts keyed, ledger keyless append-only) ◄── writer (seeded random transfers)
 *      └──► tidemark start ──► sink ──► E2eTarget.read / .checkpoint
 *
 * `crashRecovery` SIGKILLs the process at random moments and restarts it; `snapshotAndStream`
 * lets it take the snapshot while the writer runs. Both end with the sink equal to the source,
 * row for row (the keyless ledger would show a replayed epoch as duplicate rows).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import pg from 'pg';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import type { Checkpoint } from '../../src/core/epoch.ts';
import { describeSelection } from '../../src/source/postgres/catalog.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { sessionOptions } from '../../src/source/postgres/session-settings.ts';
import { currentLsn } from '../support/changefeed.ts';
import { runCli, writeConfig, type CliProcess } from '../support/cli-process.ts';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { sortRows } from '../sink-contract/fixtures.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import { createTransferTables, startTransferWriter } from '../support/transfer-workload.ts';
import { createSink } from '../../src/sink/create-sink.ts';

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
export const rng = mulberry32;

/** A sink store as the end-to-end tests see it. */
export interface E2eTarget {
  /** The sink URI for the changefeed config. */
  readonly uri: string;
  /** The changefeed's committed checkpoint as the store holds it, or null. */
  checkpoint(): Promise<Checkpoint | null>;
  /** A table's committed rows as PostgreSQL text. */
  read(t: TableSchema): Promise<Row[]>;
  /**
   * Takes a lock in the store that makes the commit of a first checkpoint wait (the sink's
   * bookkeeping exists already); resolves with its release (idempotent).
   */
  holdFirstCommit?(): Promise<() => Promise<void>>;
}

export const FEED_ID = 'e2e';
const TABLES = ['accounts', 'ledger'];

async function prepareSource(options: { accounts: number }): Promise<TestDatabase> {
  const src = await freshDatabase('e2e_src');
  await createTransferTables(src, { accounts: options.accounts, ledgerRows: 100 });
  return src;
}

export function feedConfig(): string {
  return writeConfig(`
changefeeds:
  - id: ${FEED_ID}
    source: \${SRC_URL}
    sink: \${SINK_URL}
    tables: [public.accounts, public.ledger]
    epoch: { intervalMs: 30 }
    heartbeatIntervalMs: 100
    snapshot: { parallelism: 2, chunkRows: 1000 }
`);
}

export function startFeed(config: string, src: TestDatabase, target: E2eTarget): CliProcess {
  return runCli(['start', '--config', config], { env: { SRC_URL: src.url, SINK_URL: target.uri } });
}

async function started(feed: CliProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!feed.output().includes('changefeed started')) {
    if (feed.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`changefeed did not start:\n${feed.output()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until the sink's checkpoint passes the source's current WAL position (bounded wait). */
export async function waitForSink(src: TestDatabase, target: E2eTarget, feed: CliProcess): Promise<void> {
  const goal = await currentLsn(src.url);
  const deadline = Date.now() + 120_000;
  // A table an interrupted initial snapshot left unfinished is copied online after the restart:
  // absent downstream until its swap, while the checkpoint is already past the goal.
  const count = (msg: string) => feed.output().split(`"msg":"${msg}"`).length - 1;
  const copying = () =>
    count('online copy started') + count('online copy resumed') > count('online copy swapped in');
  for (;;) {
    const cp = await target.checkpoint();
    if (cp && Lsn.parse(cp.position).compare(goal) >= 0 && !copying()) return;
    if (feed.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`sink did not reach ${goal} (checkpoint ${cp?.position ?? 'none'}):\n${feed.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The replicated tables as the source describes them, and their rows in source text form. */
export async function sourceTables(src: TestDatabase): Promise<{ table: TableSchema; rows: Row[] }[]> {
  const c = new pg.Client({ connectionString: src.url, options: sessionOptions() });
  await c.connect();
  try {
    const { tables } = await describeSelection(
      c,
      TABLES.map((t) => `public.${t}`),
    );
    const out: { table: TableSchema; rows: Row[] }[] = [];
    for (const table of tables) {
      const r = await c.query({
        text: `SELECT * FROM public.${table.name}`,
        rowMode: 'array',
        types: { getTypeParser: () => (v: string) => v },
      });
      out.push({ table, rows: r.rows as Row[] });
    }
    return out;
  } finally {
    await c.end();
  }
}

export async function expectSinkEqualsSource(src: TestDatabase, target: E2eTarget): Promise<void> {
  for (const { table, rows } of await sourceTables(src)) {
    const got = sortRows(await target.read(table));
    expect(got.length, `${table.name}: row count; ${rowDiff(rows, got)}`).toBe(rows.length);
    expect(got, `${table.name}: rows`).toEqual(sortRows(rows));
  }
}

/** Which rows one side has and the other lacks (the first few), for a failure message. */
function rowDiff(want: Row[], got: Row[]): string {
  const g = new Set(got.map((r) => JSON.stringify(r)));
  const w = new Set(want.map((r) => JSON.stringify(r)));
  const missing = [...w].filter((x) => !g.has(x)).slice(0, 10);
  const extra = [...g].filter((x) => !w.has(x)).slice(0, 10);
  return `missing ${missing.join(' ')}; extra ${extra.join(' ')}`;
}

/**
 * SIGKILLs the changefeed `kills` times at random moments (snapshot, mid-epoch, mid-commit) under
 * load and restarts it; then lets it catch up and compares.
 */
export async function crashRecovery(
  target: E2eTarget,
  options: { kills: number; seed: number },
): Promise<void> {
  const accounts = 5000;
  const src = await prepareSource({ accounts });
  const random = rng(options.seed);
  const writer = await startTransferWriter(src, { seed: options.seed, accounts });
  const config = feedConfig();
  const epochsSeen = new Set<number>();
  let txns = 0;
  try {
    for (let i = 0; i < options.kills; i++) {
      const before = (await target.checkpoint())?.epoch ?? null;
      const p = startFeed(config, src, target);
      // Random moments after the process is up (its start-up time depends on the machine's load).
      await started(p);
      // The first kills may land in the snapshot (which then starts over); the later half waits
      // until this process has committed an epoch of its own, so that kills land in the stream
      // at different epochs however slowly a loaded machine starts the process.
      if (i >= options.kills / 2) await nextCheckpoint(target, p, before);
      await new Promise((r) => setTimeout(r, 100 + Math.floor(random() * 2400)));
      p.child.kill('SIGKILL');
      expect(await p.exited).toBe('SIGKILL');
      const cp = await target.checkpoint();
      if (cp) epochsSeen.add(cp.epoch);
    }
  } finally {
    txns = await writer.stop();
  }
  const last = startFeed(config, src, target);
  try {
    await waitForSink(src, target, last);
  } finally {
    last.child.kill('SIGTERM');
  }
  expect(await last.exited, last.output()).toBe(0);
  await expectSinkEqualsSource(src, target);
  // The kills landed at different points of the stream, not all before the first commit.
  expect(epochsSeen.size).toBeGreaterThanOrEqual(3);
  expect(txns).toBeGreaterThan(50);
}

/** Waits (bounded) until the sink holds a checkpoint at an epoch after `after` (any, when null). */
async function nextCheckpoint(target: E2eTarget, feed: CliProcess, after: number | null): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const cp = await target.checkpoint();
    if (cp && (after === null || cp.epoch > after)) return;
    if (feed.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no checkpoint in the sink:\n${feed.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The snapshot is taken while a writer commits; after the switch to streaming nothing is missing. */
export async function snapshotAndStream(target: E2eTarget, options: { seed: number }): Promise<void> {
  const accounts = 20_000;
  const src = await prepareSource({ accounts });
  const writer = await startTransferWriter(src, { seed: options.seed, accounts });
  const feed = startFeed(feedConfig(), src, target);
  let txns = 0;
  try {
    try {
      while (!(await target.checkpoint())) {
        if (feed.child.exitCode !== null) throw new Error(`changefeed exited:\n${feed.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 1500)); // streaming while the writer commits
    } finally {
      txns = await writer.stop();
    }
    await waitForSink(src, target, feed);
  } finally {
    feed.child.kill('SIGTERM');
  }
  expect(await feed.exited, feed.output()).toBe(0);
  expect(txns).toBeGreaterThan(20);
  await expectSinkEqualsSource(src, target);
}

/**
 * Two processes on one changefeed (issue 10 item 1): the same config started twice, each with its
 * own data directory (so that nothing but the sink stands between them), under a write load. The
 * test holds a lock that makes the first checkpoint's commit wait (`E2eTarget.holdFirstCommit`)
 * until both processes have opened the sink, found no checkpoint and started a snapshot; then
 * lets go. The sink's fence lets one commit and stops the other with SINK_FENCED; the survivor
 * streams on, and the sink ends equal to the source.
 */
export async function twoProcesses(
  target: E2eTarget & Required<Pick<E2eTarget, 'holdFirstCommit'>>,
  options: { seed: number },
): Promise<void> {
  const accounts = 50_000;
  const src = await prepareSource({ accounts });
  // The sink's own bookkeeping exists before the lock is taken (a first open creates it).
  const setup = await createSink(target.uri, { changefeedId: FEED_ID });
  expect(await setup.open()).toBeNull();
  await setup.close();
  const writer = await startTransferWriter(src, { seed: options.seed, accounts });
  const config = feedConfig();
  const start = () =>
    runCli(['start', '--config', config, '--data-dir', mkdtempSync(join(tmpdir(), 'tidemark-two-'))], {
      env: { SRC_URL: src.url, SINK_URL: target.uri },
    });
  const release = await target.holdFirstCommit();
  const both: CliProcess[] = [];
  let txns = 0;
  try {
    // One after the other: two at once would race on the source's publication (issue 10 item 16).
    both.push(start());
    await logged(both[0]!, 'snapshot started');
    both.push(start());
    await logged(both[1]!, 'snapshot started');
    await release();
    // Exactly one of them stops, on the fence.
    const noneStopped = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`neither process stopped:\n${both.map((p) => p.output()).join('\n---\n')}`)),
        90_000,
      ).unref(),
    );
    const loser = await Promise.race([...both.map((p) => p.exited.then(() => p)), noneStopped]);
    expect(await loser.exited, loser.output()).toBe(1);
    expect(loser.output(), loser.output()).toContain('SINK_FENCED');
    expect(loser.output()).toMatch(
      /another writer \(.+ pid \d+ sink [0-9a-f]{8}\) committed epoch \d+ at position/,
    );
    const survivor = both.find((p) => p !== loser)!;
    expect(survivor.child.exitCode, survivor.output()).toBeNull();
    await new Promise((r) => setTimeout(r, 1500)); // streaming while the writer commits
    txns = await writer.stop();
    await waitForSink(src, target, survivor);
    survivor.child.kill('SIGTERM');
    expect(await survivor.exited, survivor.output()).toBe(0);
  } finally {
    await release();
    if (txns === 0) await writer.stop();
    for (const p of both) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
  expect(txns).toBeGreaterThan(20);
  await expectSinkEqualsSource(src, target);
}

/** Waits (bounded) until the process has logged `text`. */
async function logged(feed: CliProcess, text: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!feed.output().includes(text)) {
    if (feed.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`"${text}" never logged:\n${feed.output()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
