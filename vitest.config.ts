import { defineConfig } from 'vitest/config';

// Two projects: unit/integration specs run in parallel; e2e suites start whole meshes on the
// apps' default ports, so they run one file at a time (see the `test` script).
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: ['apps/*/src/**/*.spec.ts', 'libs/**/src/**/*.spec.ts', 'tools/**/*.spec.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['e2e/**/*.e2e.ts'], fileParallelism: false, testTimeout: 300_000 } },
    ],
  },
});
