import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Workspaces import the library by name; tests run it from source so no build is needed first.
const src = (path: string) => fileURLToPath(new URL(`./packages/tiercache/src/${path}`, import.meta.url));
const alias = [
  { find: /^tiercache$/, replacement: src('index.ts') },
  { find: /^tiercache\/http$/, replacement: src('http/index.ts') },
  { find: /^tiercache\/alerts$/, replacement: src('observability/webhook.ts') },
  { find: /^tiercache\/testing$/, replacement: src('testing/index.ts') },
  { find: /^tiercache\/prometheus$/, replacement: src('observability/prometheus.ts') },
  { find: /^tiercache\/otel$/, replacement: src('observability/otel.ts') },
];

export default defineConfig({
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'unit',
          // Projects run one after another (unit first); each sets its own parallelism.
          sequence: { groupOrder: 0 },
          include: ['packages/tiercache/test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'integration',
          // Projects run one after another (unit first); each sets its own parallelism.
          sequence: { groupOrder: 1 },
          include: ['packages/tiercache/test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
          hookTimeout: 30_000,
          // Files start their own redis-server processes; two at a time keeps a 2-core machine responsive.
          maxWorkers: 2,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'service',
          // Projects run one after another (unit first); each sets its own parallelism.
          sequence: { groupOrder: 2 },
          include: ['examples/service/test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 1,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'bench',
          // Projects run one after another (unit first); each sets its own parallelism.
          sequence: { groupOrder: 3 },
          include: ['bench/test/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
    ],
  },
});
