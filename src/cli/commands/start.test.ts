import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { defineChangefeed } from '../../runtime/changefeed-config.ts';
import { LiveStatus, initialStatus } from '../../runtime/changefeed-status.ts';
import { silentLogger } from '../../runtime/logger.ts';
import type { Changefeed, ChangefeedRuntime } from '../runtime-adapter.ts';
import { runChangefeeds } from './start.ts';

/** An in-memory changefeed: `fail()` makes it fail, `stop()` stops it. */
class FakeFeed implements Changefeed {
  stopped = false;
  readonly done: Promise<void>;
  private settle!: (err?: unknown) => void;
  constructor(readonly id: string) {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err === undefined ? resolve() : reject(err));
    });
  }
  status() {
    return { ...initialStatus(this.id), phase: this.stopped ? ('stopped' as const) : ('streaming' as const) };
  }
  fail(err: unknown) {
    this.settle(err);
  }
  async stop() {
    this.stopped = true;
    this.settle();
  }
  resnapshot(): Promise<never> {
    return Promise.reject(new Error('not used'));
  }
}

function setup(ids: string[]) {
  const feeds = new Map<string, FakeFeed>();
  const runtime: ChangefeedRuntime = {
    startChangefeed(cfg) {
      const f = new FakeFeed(cfg.id);
      feeds.set(cfg.id, f);
      return f;
    },
    queryChangefeedStatus: async (cfg) => initialStatus(cfg.id),
    close: async () => {},
  };
  const out: string[] = [];
  const err: string[] = [];
  const shutdown = new AbortController();
  const configs = ids.map((id) =>
    defineChangefeed({ id, source: 'postgres://h/db', sink: 'postgres://h/r', tables: ['t'] }),
  );
  const run = runChangefeeds(configs, {
    runtime,
    logger: silentLogger,
    live: new LiveStatus({ out: { write: (t: string) => out.push(t) } }),
    shutdown: shutdown.signal,
    stderr: { write: (t: string) => err.push(t) },
  });
  return { feeds, run, shutdown, out, err };
}

async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(ok()).toBe(true);
}

describe('runChangefeeds', () => {
  it('stops every changefeed on a signal and exits 0', async () => {
    const { feeds, run, shutdown, out } = setup(['a', 'b']);
    await Promise.resolve();
    shutdown.abort();
    expect(await run).toBe(0);
    expect([...feeds.values()].map((f) => f.stopped)).toEqual([true, true]);
    expect(out.join('')).toContain('a  stopped');
  });

  it('reports a failing changefeed at once, keeps the others running, and exits 1 when stopped', async () => {
    const { feeds, run, err, out, shutdown } = setup(['a', 'b']);
    feeds.get('b')?.fail(new TidemarkError('SOURCE_SLOT_LOST', { detail: 'slot tidemark_b' }));
    await until(() => err.join('').includes('changefeed b failed'));
    expect(err.join('')).toContain('changefeed b failed: SOURCE_SLOT_LOST');
    expect(err.join('')).toContain('hint: The source dropped or invalidated the slot');
    // The other changefeed is not touched by b's failure.
    expect(feeds.get('a')?.stopped).toBe(false);
    let settled = false;
    void run.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    shutdown.abort();
    expect(await run).toBe(1);
    expect(feeds.get('a')?.stopped).toBe(true);
    // The failed one stays failed, with its error, in the final status lines.
    expect(out.join('')).toMatch(/b\s+failed .*SOURCE_SLOT_LOST/);
  });

  it('exits 1 once every changefeed has failed', async () => {
    const { feeds, run } = setup(['a', 'b']);
    feeds.get('a')?.fail(new TidemarkError('SOURCE_SLOT_LOST', { detail: 'slot tidemark_a' }));
    feeds.get('b')?.fail(new TidemarkError('SOURCE_SLOT_LOST', { detail: 'slot tidemark_b' }));
    expect(await run).toBe(1);
  });

  it('keeps waiting when one changefeed ends by itself', async () => {
    const { feeds, run, shutdown } = setup(['a', 'b']);
    await feeds.get('a')?.stop();
    await new Promise((r) => setTimeout(r, 0));
    shutdown.abort();
    expect(await run).toBe(0);
    expect(feeds.get('b')?.stopped).toBe(true);
  });
});
