import { defineConfig } from 'vitest/config';

// Two projects: `unit` (no I/O, beside the code) and `integration` (real databases, under test/).
export default defineConfig({
  test: {
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
