import { defineConfig } from 'vitest/config';
export default defineConfig({
  test: { include: ['test/sink/postgres-sink.test.ts'], globalSetup: ['test/sink/tmp-setup.ts'], testTimeout: 120_000, root: '/work/main' },
});
