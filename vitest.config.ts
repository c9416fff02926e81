import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['control-plane/**/*.test.ts', 'bench/**/*.test.ts'],
    globalSetup: ['control-plane/test/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
