/**
 * A cache in a process of its own, for the cross-process stampede tests (resilience-stampede.test.ts). Run with
 * `node --import tsx stampede-worker.ts` and these environment variables:
 *
 * - `STAMPEDE_URL`: the Redis URL; `STAMPEDE_PREFIX`: the cache prefix;
 * - `STAMPEDE_LOCK_TTL_MS`, `STAMPEDE_LOCK_WAIT_MS`: the lock options.
 *
 * It talks JSON lines: commands on stdin, reports on stdout.
 *
 * - `{ "cmd": "run", "id", "key", "callers", "loaderMs", "counterKey" }`: starts `callers` concurrent `getOrSet` of
 *   `key`. Their loader does `INCR counterKey` (so every loader call in every process is counted in Redis), reports
 *   `{ "type": "loading", "id" }`, sleeps `loaderMs` and returns `{ "pid" }`. Once some caller waits on another
 *   process's lock, `{ "type": "waiting", "id" }`; once all have settled, `{ "type": "done", "id", ... }` with the
 *   values they got, their latency, and what the cache counted for this command (loader calls, lock).
 * - `{ "cmd": "close" }`: closes the cache and exits.
 *
 * It first reports `{ "type": "ready", "pid" }`, once its cache and its own Redis client are connected.
 */
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
// From source, as the tests use it: tsx maps the .js suffix to the .ts file.
import { createCache } from '../../../src/index.js';

interface RunCommand {
  readonly cmd: 'run';
  readonly id: string;
  readonly key: string;
  readonly callers: number;
  readonly loaderMs: number;
  readonly counterKey: string;
}

type Command = RunCommand | { readonly cmd: 'close' };

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`stampede-worker: ${name} is not set`);
  return value;
}

function report(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const url = env('STAMPEDE_URL');
const cache = createCache({
  prefix: env('STAMPEDE_PREFIX'),
  redis: url,
  // A generous Redis timeout: the machine is shared, and these tests are about the lock, not about outages.
  timeouts: { redisMs: 1000 },
  lock: { ttlMs: Number(env('STAMPEDE_LOCK_TTL_MS')), waitMs: Number(env('STAMPEDE_LOCK_WAIT_MS')) },
});
const counter = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
await counter.connect();
while (cache.stats().redis.state !== 'ready') await sleep(10);

async function run(command: RunCommand): Promise<void> {
  const { id, key, callers, loaderMs, counterKey } = command;
  const loader = async (): Promise<{ pid: number }> => {
    await counter.incr(counterKey);
    report({ type: 'loading', id, at: Date.now() });
    await sleep(loaderMs);
    return { pid: process.pid };
  };
  const before = cache.stats();
  const waitsBefore = before.lock.waits;
  let announced = false;
  const watch = setInterval(() => {
    if (!announced && cache.stats().lock.waits > waitsBefore) {
      announced = true;
      report({ type: 'waiting', id });
    }
  }, 5);
  const started = performance.now();
  const outcomes = await Promise.allSettled(
    Array.from({ length: callers }, async () => {
      const result = await cache.getOrSetWithMeta(key, loader);
      return { pid: (result.value as { pid: number }).pid, source: result.source, ms: performance.now() - started };
    }),
  );
  clearInterval(watch);
  const values = new Set<number>();
  const sources: Record<string, number> = {};
  const errors: string[] = [];
  let maxMs = 0;
  for (const outcome of outcomes) {
    if (outcome.status === 'rejected') {
      errors.push(String(outcome.reason));
      continue;
    }
    values.add(outcome.value.pid);
    sources[outcome.value.source] = (sources[outcome.value.source] ?? 0) + 1;
    maxMs = Math.max(maxMs, outcome.value.ms);
  }
  const stats = cache.stats();
  report({
    type: 'done',
    id,
    at: Date.now(),
    values: [...values],
    sources,
    errors: errors.slice(0, 5),
    maxMs,
    // This command's share of the counters, which the cache keeps for its whole life.
    loaderCalls: stats.loader.calls - before.loader.calls,
    lock: {
      acquired: stats.lock.acquired - before.lock.acquired,
      waits: stats.lock.waits - before.lock.waits,
      waitTimeouts: stats.lock.waitTimeouts - before.lock.waitTimeouts,
    },
  });
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = JSON.parse(line) as Command;
  if (command.cmd === 'close') {
    lines.close();
    void Promise.allSettled([cache.close(), counter.quit()]).then(() => process.exit(0));
    return;
  }
  run(command).catch((error: unknown) => report({ type: 'failed', id: command.id, error: String(error) }));
});
report({ type: 'ready', pid: process.pid });
