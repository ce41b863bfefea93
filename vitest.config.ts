import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { Plugin } from 'vite';
import { configDefaults, defineConfig } from 'vitest/config';

// Workspaces import the library by name; tests run it from source so no build is needed first.
const src = (path: string) => fileURLToPath(new URL(`./packages/tiercache/src/${path}`, import.meta.url));
const alias = [
  { find: /^tiercache$/, replacement: src('index.ts') },
  { find: /^tiercache\/http$/, replacement: src('http/index.ts') },
  { find: /^tiercache\/alerts$/, replacement: src('observability/webhook.ts') },
  { find: /^tiercache\/testing$/, replacement: src('testing/index.ts') },
  { find: /^tiercache\/decorators$/, replacement: src('decorators/index.ts') },
  { find: /^tiercache\/keyv$/, replacement: src('keyv/index.ts') },
  { find: /^tiercache\/prometheus$/, replacement: src('observability/prometheus.ts') },
  { find: /^tiercache\/otel$/, replacement: src('observability/otel.ts') },
];

/**
 * Compiles the decorator suites with TypeScript itself, once per decorator flavour, so both really run: TC39 standard
 * decorators (TypeScript's default) and legacy `experimentalDecorators` (+ metadata, as NestJS compiles).
 */
function typescriptDecorators(legacy: boolean, files: RegExp): Plugin {
  return {
    name: `typescript-decorators-${legacy ? 'legacy' : 'standard'}`,
    enforce: 'pre',
    transform(code, id) {
      if (!files.test(id)) return undefined;
      const { outputText, sourceMapText } = ts.transpileModule(code, {
        fileName: id,
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.ESNext,
          experimentalDecorators: legacy,
          emitDecoratorMetadata: legacy,
          sourceMap: true,
        },
      });
      return { code: outputText, map: sourceMapText ?? null };
    },
  };
}
const decoratorSuites = /\/test\/decorators\/.*\.ts$/;
const nestExample = /\/examples\/nestjs\/(src|test)\/.*\.ts$/;
// The seeds' snippets (docs/from-the-seeds.md) use standard decorators, as the root tsconfig compiles them.
const seedSnippets = /\/examples\/seeds\/.*\.ts$/;

/**
 * Kill masters under load and time the recovery, and the cluster suite that loads 100 000 keys (see the `failover`
 * project): each runs alone, so neither skews the timing bounds of a suite beside it.
 */
const FAILOVER_SUITES = [
  'packages/tiercache/test/integration/failover*.test.ts',
  'packages/tiercache/test/integration/topology/cluster.test.ts',
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
      ...[false, true].map((legacy) => ({
        resolve: { alias },
        plugins: [typescriptDecorators(legacy, decoratorSuites)],
        test: {
          name: legacy ? 'decorators-legacy' : 'decorators-standard',
          sequence: { groupOrder: 0 },
          include: ['packages/tiercache/test/decorators/**/*.test.ts'],
          environment: 'node',
          env: { DECORATORS_COMPILATION: legacy ? 'legacy' : 'standard' },
        },
      })),
      {
        resolve: { alias },
        plugins: [typescriptDecorators(true, nestExample)],
        test: {
          name: 'nestjs',
          sequence: { groupOrder: 0 },
          include: ['examples/nestjs/test/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        resolve: { alias },
        plugins: [typescriptDecorators(false, seedSnippets)],
        test: {
          name: 'integration',
          // Projects run one after another (unit first); each sets its own parallelism.
          sequence: { groupOrder: 1 },
          include: ['packages/tiercache/test/integration/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...FAILOVER_SUITES],
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
          name: 'failover',
          // Last and one file at a time: their bounds (a p99 within the Redis timeout + 5 ms while a master dies, a
          // promotion's timing) measure the cache, not a 100 000-key suite running on the other core, and that suite
          // does not slow the integration project's own timed tests (once: an outage p99 of 192 ms against 175).
          sequence: { groupOrder: 4 },
          include: FAILOVER_SUITES,
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
