/**
 * `cache.warm` of 10 000 entries against a local redis-server: wall time and Redis round trips per run.
 * Run with `npx tsx bench/src/warm.ts` (starts and stops its own redis-server). A round trip is one call of the Redis
 * tier (one script or pipeline for a batch of writes, one PUBLISH for a batch's invalidation message), counted by
 * wrapping the tier; the cache itself is the library's, from source.
 */
import { createCache } from '../../packages/tiercache/src/index.js';
import { RedisTier } from '../../packages/tiercache/src/tiers/redis.js';
import type { RemoteTier } from '../../packages/tiercache/src/types.js';
import { killAllStarted, startRedisServer } from './redis-server.js';

const ENTRIES = 10_000;
const REPS = 7;

function counted(tier: RedisTier): { tier: RemoteTier; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const proxy = new Proxy(tier, {
    get(target, name, _receiver) {
      const value: unknown = Reflect.get(target, name, target);
      if (typeof value !== 'function' || typeof name !== 'string') return value;
      return (...args: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { tier: proxy as unknown as RemoteTier, calls };
}

const entries = Array.from({ length: ENTRIES }, (_, i) => ({
  key: `news:article:${i}`,
  value: {
    id: i,
    title: `Article number ${i} about something that happened`,
    summary: 'A short summary of the article, as a news list shows it under the title. '.repeat(2),
    url: `https://news.example/articles/${i}`,
    category: ['world', 'tech', 'sport', 'culture'][i % 4],
    publishedAt: new Date(1_764_000_000_000 + i * 60_000),
  },
}));

const server = await startRedisServer();
try {
  const variants = [
    { label: 'default (tracking on: a pipeline per batch)', batchSize: 500, tracking: true },
    { label: 'default (tracking on: a pipeline per batch)', batchSize: 1000, tracking: true },
    { label: 'tracking off (one script call per batch)', batchSize: 500, tracking: false },
  ];
  for (const { label, batchSize, tracking } of variants) {
    const times: number[] = [];
    let trips = '';
    for (let rep = 0; rep < REPS; rep++) {
      const redis = new RedisTier(`redis://${server.host}:${server.port}`, {
        timeoutMs: 1000,
        onConnectionError: () => undefined,
      });
      const { tier, calls } = counted(redis);
      const cache = createCache({
        prefix: `warm-bench-${rep}`,
        redis: tier,
        timeouts: { redisMs: 1000 },
        bus: { tracking },
      });
      if (!(await cache.ready('5s'))) throw new Error('Redis did not connect');
      calls.clear();
      const started = performance.now();
      const result = await cache.warm(entries, { ttl: '1h', batchSize });
      times.push(performance.now() - started);
      if (result.written !== ENTRIES) throw new Error(`wrote ${result.written} of ${ENTRIES}`);
      trips = [...calls].map(([name, n]) => `${name} ${n}`).join(', ');
      await cache.close();
      await redis.close();
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] ?? 0;
    console.log(
      `warm ${ENTRIES} entries, ${label}, batchSize ${batchSize}: median ${median.toFixed(1)} ms ` +
        `(min ${times[0]?.toFixed(1)}, max ${times.at(-1)?.toFixed(1)}, ${REPS} runs); Redis round trips per run: ${trips}`,
    );
  }
} finally {
  killAllStarted();
}
