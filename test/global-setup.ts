import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startCluster, type PgCluster } from './support/pg-cluster.ts';

let clusters: PgCluster[] = [];
let runDir: string | undefined;

/**
 * One PostgreSQL cluster per vitest worker (test files run in parallel, one per worker at a
 * time): a file that holds a transaction open on purpose stalls logical slot creation in every
 * other database of its cluster, and slot names are cluster-wide, so files at once must not share
 * one. `test/support/db.ts` picks the cluster of its worker (`VITEST_POOL_ID`, 1..workers).
 */
export async function setup(project: TestProject): Promise<void> {
  if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
    throw new Error(
      'dist/ is missing: integration tests run the built CLI. Run `npm run build` (npm test does).',
    );
  }
  // Local state of processes that do not get their own data dir: one dir per test file below
  // this one (test/support/file-env.ts), never the user's own home.
  runDir = mkdtempSync(join(tmpdir(), 'tidemark-test-run-'));
  const base = Number(process.env.TIDEMARK_TEST_PG_PORT ?? 54329);
  const started = await Promise.allSettled(
    // Ports a stride apart; startCluster moves on by itself if one is taken.
    Array.from({ length: workerCount(project) }, (_, i) => startCluster({ port: base + i * 3 })),
  );
  clusters = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await teardown();
    throw failed.reason;
  }
  project.provide(
    'pgAdminUrls',
    clusters.map((c) => c.url('postgres')),
  );
  project.provide('pgBinDir', clusters[0]?.binDir ?? '');
  project.provide('testRunDir', runDir);
}

export async function teardown(): Promise<void> {
  await Promise.all(clusters.map((c) => c.stop()));
  if (runDir) rmSync(runDir, { recursive: true, force: true });
}

/** How many workers the pool runs at most: VITEST_POOL_ID takes the values 1..this. */
function workerCount(project: TestProject): number {
  const config = project.vitest.config;
  if (!config.fileParallelism || config.poolOptions?.forks?.singleFork) return 1;
  return (
    config.poolOptions?.forks?.maxForks ??
    config.poolOptions?.threads?.maxThreads ??
    config.maxWorkers ??
    Math.max(availableParallelism() - 1, 1)
  );
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The admin URL of worker n's cluster at index n - 1. */
    pgAdminUrls: string[];
    pgBinDir: string;
    testRunDir: string;
  }
}
