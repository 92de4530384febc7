import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { freePort, startCluster, type PgCluster } from './support/pg-cluster.ts';

let cluster: PgCluster | undefined;

/** One PostgreSQL cluster for the whole integration run; every test creates its own databases. */
export async function setup(project: TestProject): Promise<void> {
  if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
    throw new Error(
      'dist/ is missing: integration tests run the built CLI. Run `npm run build` (npm test does).',
    );
  }
  const port = await freePort(Number(process.env.TIDEMARK_TEST_PG_PORT ?? 54329));
  cluster = await startCluster({ port });
  project.provide('pgAdminUrl', cluster.url('postgres'));
  project.provide('pgBinDir', cluster.binDir);
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgBinDir: string;
  }
}
