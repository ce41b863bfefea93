/**
 * `npm run bench:many -w bench` (or `npx tsx bench/src/get-or-set-many.ts` after `npm run build`): a product-list
 * page of 100 keys, 10 % of them cold, read with one `getOrSetMany` against 100 parallel `getOrSet` calls, on one
 * private redis-server, same run, alternating rounds. The loader stands for a database: each call is one query of
 * `QUERY_MS` (a timer) whatever the number of ids in it. Memory is off, so every warm key is a Redis hit and the cold
 * keys are new each round: the figures are the Redis-and-loader path, not L1.
 */
import { performance } from 'node:perf_hooks';
import { createCache } from 'tiercache';
import type { Cache } from 'tiercache';
import { startRedisServer } from './redis-server.js';

const KEYS = 100;
const COLD = 10;
const ROUNDS = Number(process.env['ROUNDS'] ?? 200);
const QUERY_MS = Number(process.env['QUERY_MS'] ?? 1);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const value = (key: string) => ({ key, name: `Product ${key}`, priceCents: 1999, tags: ['a', 'b'] });

interface Sample {
  ms: number[];
  queries: number;
}

async function round(cache: Cache, mode: 'many' | 'single', r: number, sample: Sample): Promise<void> {
  const keys = Array.from({ length: KEYS }, (_, i) => (i < KEYS - COLD ? `warm:${i}` : `cold:${mode}:${r}:${i}`));
  const started = performance.now();
  if (mode === 'many') {
    const values = await cache.getOrSetMany(keys, async (missing) => {
      sample.queries++;
      await sleep(QUERY_MS);
      return missing.map(value);
    });
    if (values.length !== KEYS || values.some((v) => v === undefined)) throw new Error('getOrSetMany lost a value');
  } else {
    const values = await Promise.all(
      keys.map((key) =>
        cache.getOrSet(key, async () => {
          sample.queries++;
          await sleep(QUERY_MS);
          return value(key);
        }),
      ),
    );
    if (values.length !== KEYS) throw new Error('getOrSet lost a value');
  }
  sample.ms.push(performance.now() - started);
}

const pct = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

const redis = await startRedisServer();
const cache = createCache({ prefix: 'bench-many:', redis: { host: redis.host, port: redis.port }, memory: false });
try {
  while (cache.stats().redis.state !== 'ready') await sleep(10);
  await cache.mset(Array.from({ length: KEYS - COLD }, (_, i) => ({ key: `warm:${i}`, value: value(`warm:${i}`) })));
  const samples = { many: { ms: [], queries: 0 } as Sample, single: { ms: [], queries: 0 } as Sample };
  for (let r = 0; r < 20; r++) {
    await round(cache, 'many', -r - 1, { ms: [], queries: 0 });
    await round(cache, 'single', -r - 1, { ms: [], queries: 0 });
  }
  for (let r = 0; r < ROUNDS; r++) {
    // Alternating, so both see the same machine load.
    await round(cache, 'many', r, samples.many);
    await round(cache, 'single', r, samples.single);
  }
  const lines = [
    `getOrSetMany(${KEYS} keys, ${(COLD / KEYS) * 100} % cold) vs ${KEYS} parallel getOrSet; ${ROUNDS} rounds each, ` +
      `memory off, loader = one ${QUERY_MS} ms query per call, redis-server ${redis.version}`,
    '| call | median ms | p90 ms | p99 ms | loader calls (queries) per page |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  const medians: Record<string, number> = {};
  for (const [name, sample] of Object.entries(samples)) {
    const sorted = [...sample.ms].sort((a, b) => a - b);
    medians[name] = pct(sorted, 0.5);
    const label = name === 'many' ? `getOrSetMany (1 call)` : `${KEYS} × getOrSet (Promise.all)`;
    lines.push(
      `| ${label} | ${pct(sorted, 0.5).toFixed(2)} | ${pct(sorted, 0.9).toFixed(2)} | ${pct(sorted, 0.99).toFixed(2)} | ${(sample.queries / ROUNDS).toFixed(1)} |`,
    );
  }
  lines.push(
    `ratio of medians (getOrSet ÷ getOrSetMany): ${((medians['single'] as number) / (medians['many'] as number)).toFixed(2)}×`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await cache.close();
  await redis.stop();
}
