import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Integration files spend most of their time waiting on databases and child processes: vitest's
// default (CPUs − 1, so one file at a time on a 2-core machine) left the CPUs mostly idle.
// Each file uses its own databases, ports and data directories, so files may run side by side.
const WORKERS = Math.max(3, availableParallelism() - 1);

// Two projects: `unit` (no I/O, beside the code) and `integration` (real databases, under test/).
export default defineConfig({
  test: {
    maxWorkers: WORKERS,
    projects: [
      {
        // Generous timeouts: property tests run thousands of cases, and a loaded 2-core machine
        // slows them several-fold; a timeout is not an assertion about speed.
        test: { name: 'unit', include: ['src/**/*.test.ts'], environment: 'node', testTimeout: 60_000 },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
