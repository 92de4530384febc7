/**
 * The engine the benchmarks run changefeeds on: one per data directory, opened on first use, as
 * the CLI does (`cli/runtime-adapter.ts`). `closeBenchEngines` releases them (run.ts, at the end).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRuntime, type ChangefeedRuntime } from '../src/cli/runtime-adapter.ts';
import type { ChangefeedConfig } from '../src/runtime/changefeed-config.ts';
import type { Changefeed, StartChangefeedOptions } from '../src/runtime/changefeed.ts';

let runtime: Promise<ChangefeedRuntime> | null = null;
let defaultDataDir: string | null = null;

/** Starts a changefeed on the engine of `dataDir` (default: one temp directory per process). */
export async function startBenchChangefeed(
  cfg: ChangefeedConfig,
  opts: StartChangefeedOptions,
  dataDir?: string,
): Promise<Changefeed> {
  runtime ??= loadRuntime();
  defaultDataDir ??= mkdtempSync(join(tmpdir(), 'tidemark-bench-data-'));
  return (await runtime).startChangefeed(cfg, { ...opts, dataDir: dataDir ?? defaultDataDir });
}

/** Closes every engine opened (their changefeeds must be stopped). */
export async function closeBenchEngines(): Promise<void> {
  const r = runtime;
  runtime = null;
  await (await r)?.close();
}
