import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort, startCluster, type PgCluster } from './support/pg-cluster.ts';

let cluster: PgCluster | undefined;
let dataDir: string | undefined;

/** One PostgreSQL cluster for the whole integration run; every test creates its own databases. */
export async function setup(project: TestProject): Promise<void> {
  if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
    throw new Error(
      'dist/ is missing: integration tests run the built CLI. Run `npm run build` (npm test does).',
    );
  }
  // Local state (change logs, view state) of in-process changefeeds: one temp dir per run, which
  // the test workers inherit; CLI tests pass their own.
  dataDir = mkdtempSync(join(tmpdir(), 'tidemark-test-data-'));
  process.env.TIDEMARK_DATA_DIR = dataDir;
  // Where servers record their token files for the local CLI: never the user's own home.
  process.env.TIDEMARK_STATE_DIR = join(dataDir, 'state');
  const port = await freePort(Number(process.env.TIDEMARK_TEST_PG_PORT ?? 54329));
  cluster = await startCluster({ port });
  project.provide('pgAdminUrl', cluster.url('postgres'));
  project.provide('pgBinDir', cluster.binDir);
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgBinDir: string;
  }
}
