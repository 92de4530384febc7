import { defineConfig } from 'vitest/config';

// Two projects: `unit` (no I/O, beside the code) and `integration` (real databases, under test/).
export default defineConfig({
  test: {
    // Test files run in parallel, one per worker at a time. Integration tests mostly wait (on
    // databases, timers, child processes), so three workers pay off even on two cores. Each
    // worker has its own PostgreSQL cluster (test/global-setup.ts); servers a file starts itself
    // (MariaDB, NATS, extra clusters) take free ports (test/support/ports.ts).
    maxWorkers: 3,
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
          setupFiles: ['test/support/file-env.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
