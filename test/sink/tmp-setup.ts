import type { TestProject } from 'vitest/node';
import { freePort, startCluster, type PgCluster } from '../support/pg-cluster.ts';
let cluster: PgCluster | undefined;
export async function setup(project: TestProject): Promise<void> {
  cluster = await startCluster({ port: await freePort(Number(process.env.TIDEMARK_TEST_PG_PORT)) });
  project.provide('pgAdminUrl', cluster.url('postgres'));
  project.provide('pgBinDir', cluster.binDir);
}
export async function teardown(): Promise<void> {
  await cluster?.stop();
}
