import type { TestProject } from 'vitest/node';
import { startCluster, type PgCluster } from './support/pg-cluster.ts';

let cluster: PgCluster | undefined;

/** One PostgreSQL cluster for the whole integration run; every test creates its own databases. */
export async function setup(project: TestProject): Promise<void> {
  const port = Number(process.env.TIDEMARK_TEST_PG_PORT ?? 54329);
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
