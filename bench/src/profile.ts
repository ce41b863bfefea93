/**
 * A profiling driver: runs one tiercache workload in a tight loop for a few seconds against a private redis-server,
 * so `node --cpu-prof` sees little else. `--module` points at another build of tiercache (a scratch copy with a
 * candidate change) to compare ops/s side by side.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/src/profile.ts W2 --seconds 5
 *   npx tsx bench/src/profile-summary.ts /tmp/prof/*.cpuprofile
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { createCache as CreateCache } from 'tiercache';
import { keyList } from './harness.js';
import { startRedisServer } from './redis-server.js';
import { TTL_MS } from './systems.js';
import { makeValue } from './value.js';

const args = process.argv.slice(2);
const workload = args[0] ?? 'W1';
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const seconds = Number(option('--seconds') ?? 5);
const modulePath = option('--module');
const { createCache } = (await import(modulePath ? pathToFileURL(modulePath).href : 'tiercache')) as {
  createCache: typeof CreateCache;
};

const server = await startRedisServer();
const redis = { host: server.host, port: server.port };
const keys = keyList('p:', 1024);
const values = keys.map((_, i) => makeValue(i));
const cache = createCache({
  prefix: 'prof',
  ttl: TTL_MS,
  ...(workload === 'W1' ? {} : { redis, memory: false as const }),
});
const deadline = performance.now() + 5000;
while (workload !== 'W1' && cache.stats().redis.state !== 'ready' && performance.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 5));
}
await cache.mset(keys.map((key, i) => ({ key, value: values[i] })));
const batches = Array.from({ length: 16 }, (_, b) =>
  Array.from({ length: 100 }, (_, j) => keys[(b * 64 + j) & 1023] as string),
);

let ops = 0;
let misses = 0;
const end = performance.now() + seconds * 1000;
const started = performance.now();
if (workload === 'W1') {
  while (performance.now() < end) {
    for (let j = 0; j < 1000; j++) if ((await cache.get(keys[ops++ & 1023] as string)) === undefined) misses++;
  }
} else if (workload === 'W5') {
  while (performance.now() < end) if ((await cache.mget(batches[ops++ & 15] as string[])).includes(undefined)) misses++;
} else {
  // 64 callers in flight, as in W2-64 and W3.
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < end) {
        const i = ops++;
        if (workload === 'W2') {
          if ((await cache.get(keys[i & 1023] as string)) === undefined) misses++;
        } else await cache.set(keys[i & 1023] as string, values[i & 1023]);
      }
    }),
  );
}
const elapsed = performance.now() - started;
process.stdout.write(
  `${workload} ${modulePath ?? 'tiercache'}: ${Math.round((ops / elapsed) * 1000)} ops/s over ${(elapsed / 1000).toFixed(1)} s, ${misses} misses\n`,
);
await cache.close();
await server.stop();
