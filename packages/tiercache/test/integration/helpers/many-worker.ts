/**
 * A cache in a process of its own for the cross-process getOrSetMany test (reads.test.ts). Run with
 * `node --import tsx many-worker.ts` and `MANY_URL`, `MANY_PREFIX`, `MANY_KEYS` (comma-separated), `MANY_COUNTS` (a
 * Redis hash the loader counts each loaded key in, so every load in every process is seen), `MANY_LOADER_MS`.
 * Reports `{ "type": "ready" }` once connected; on the line `go` on stdin runs one getOrSetMany of the keys, reports
 * `{ "type": "done", "values", "loaderCalls" }`, closes the cache and exits.
 */
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { createCache } from '../../../src/index.js';

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`many-worker: ${name} is not set`);
  return value;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const url = env('MANY_URL');
const keys = env('MANY_KEYS').split(',');
const counts = env('MANY_COUNTS');
const loaderMs = Number(env('MANY_LOADER_MS'));
const cache = createCache({ prefix: env('MANY_PREFIX'), redis: url, timeouts: { redisMs: 1000 } });
const counter = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
await counter.connect();
while (cache.stats().redis.state !== 'ready') await sleep(10);
process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);

let loaderCalls = 0;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'go') return;
  void (async () => {
    const values = await cache.getOrSetMany(keys, async (missing) => {
      loaderCalls++;
      const pipeline = counter.pipeline();
      for (const key of missing) pipeline.hincrby(counts, key, 1);
      await pipeline.exec();
      await sleep(loaderMs);
      return new Map(missing.map((key) => [key, `loaded(${key})`]));
    });
    process.stdout.write(`${JSON.stringify({ type: 'done', values, loaderCalls })}\n`);
    await cache.close();
    counter.disconnect();
    process.exit(0);
  })();
});
