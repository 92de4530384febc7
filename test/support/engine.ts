/**
 * One engine per test: a fresh data directory (change logs, view state, the lock), closed when
 * the test finishes. `startChangefeed` starts a changefeed on the current test's engine, so a
 * changefeed stopped and started again within a test resumes from the same local log, as it
 * would in one process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { Engine } from '../../src/control/engine.ts';
import type { ChangefeedConfig } from '../../src/runtime/changefeed-config.ts';
import {
  ChangefeedRunner,
  type Changefeed,
  type StartChangefeedOptions,
} from '../../src/runtime/changefeed.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import type { HubStats } from '../../src/log/hub.ts';
import { sourceKeyOf } from '../../src/source/create-connector.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import { waitForCatchUp } from './changefeed.ts';

const engines = new Map<string, Promise<Engine>>();

/** The engine of the running test (opened on first use, closed and deleted after the test). */
export function testEngine(): Promise<Engine> {
  const key = expect.getState().currentTestName ?? 'outside a test';
  let e = engines.get(key);
  if (!e) {
    const dataDir = mkdtempSync(join(tmpdir(), 'tidemark-engine-'));
    e = Engine.open({ dataDir, logger: silentLogger });
    engines.set(key, e);
    const opened = e;
    onTestFinished(async () => {
      engines.delete(key);
      await (await opened.catch(() => null))?.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
  }
  return e;
}

/** Starts a changefeed on the running test's engine. */
export function startChangefeed(cfg: ChangefeedConfig, opts: StartChangefeedOptions): Changefeed {
  return ChangefeedRunner.deferred(cfg, opts, testEngine());
}

/** The running test's engine directory of the hub of `sourceUrl` (its `log/` and `subscriptions.json`). */
export async function hubDirOf(sourceUrl: string): Promise<string> {
  return (await testEngine()).hubDir(sourceKeyOf(sourceUrl));
}

/** The stats of the hub of `cfg.source` running in the test's engine, or null. */
export async function hubStatsOf(cfg: ChangefeedConfig): Promise<HubStats | null> {
  return (await testEngine()).hubStatsFor(cfg);
}

/** The error a changefeed stopped with (it must stop: a changefeed still running fails the test). */
export async function failureOf(feed: Changefeed): Promise<TidemarkError> {
  const err = await feed.done.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'the changefeed ended without an error').toBeInstanceOf(TidemarkError);
  return err as TidemarkError;
}

/** Waits until a (retrying or failed) changefeed reports an error with `code` in its status. */
export async function statusError(
  feed: Changefeed,
  code: string,
): Promise<{ code: string; message: string; hint: string }> {
  feed.done.catch(() => {}); // the failure is read from the status
  const deadline = Date.now() + 30_000;
  for (;;) {
    const e = feed.status().error;
    if (e?.code === code) return e;
    if (Date.now() > deadline) throw new Error(`no ${code} in status: ${JSON.stringify(feed.status())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The first error a changefeed reports in its status, as `CODE: message`; null if none within `timeoutMs`. */
export async function firstStatusError(feed: Changefeed, timeoutMs = 30_000): Promise<string | null> {
  feed.done.catch(() => {}); // the failure is read from the status
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && feed.status().error === null) await new Promise((r) => setTimeout(r, 100));
  const e = feed.status().error;
  return e ? `${e.code}: ${e.message}` : null;
}

/** Waits until the PostgreSQL sink `dst` holds changefeed `id`'s checkpoint past the source's current end. */
export async function caughtUp(
  src: { url: string },
  dst: { url: string },
  opts: { id?: string; timeoutMs?: number } = {},
): Promise<void> {
  await waitForCatchUp({
    sourceUrl: src.url,
    sinkUrl: dst.url,
    id: opts.id ?? 'test',
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
}
