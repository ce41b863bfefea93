/**
 * Redis down, never there, or stalled: reads never become the caller's error and never wait past the Redis timeout;
 * the cache finds Redis again by itself. Wall-clock bounds here are deliberately loose (the machine is shared): they
 * tell a bounded call (~100 ms) from a hung one (seconds, or ioredis' default 73 s), nothing finer.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheError, CacheTimeoutError, createCache } from 'tiercache';
import type { Cache, CacheEvents, CacheOptions, CacheStats } from 'tiercache';
import { deadUrl, startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { sleep, timed, trackUnhandledRejections, uniquePrefix, waitFor } from './helpers/support.js';

const REDIS_MS = 100;
const LOADER_MS = 10;
/** Timeout + loader + a generous margin for a busy 2-core machine. */
const BOUND_MS = 400;
const KEYS = Array.from({ length: 20 }, (_, i) => `key${i}`);
const ROUNDS = 10;

let redis: RedisProcess;
let unhandled: ReturnType<typeof trackUnhandledRejections>;
const caches: Cache[] = [];

beforeAll(async () => {
  redis = await startRedis();
  unhandled = trackUnhandledRejections();
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  // Let rejections that nobody handled surface before checking.
  await sleep(20);
  expect(unhandled.reasons).toEqual([]);
  if (!redis.running) await redis.restart();
});

afterAll(async () => {
  unhandled.dispose();
  await stopAllRedis();
});

function track(cache: Cache): { cache: Cache; events: CacheEvents['error'][] } {
  caches.push(cache);
  const events: CacheEvents['error'][] = [];
  cache.on('error', (event) => events.push(event));
  return { cache, events };
}

/** A cache with the test timeout; without L1 unless asked, so that every call goes down to Redis. */
async function connected(prefix: string, options: CacheOptions = {}) {
  const tracked = track(
    createCache({ prefix, redis: redis.url, memory: false, timeouts: { redisMs: REDIS_MS }, ...options }),
  );
  await waitFor('the cache to connect', () => tracked.cache.stats().redis.state === 'ready');
  return tracked;
}

/** Redis calls that failed or were not tried, however the cache counted them (errors, skipped, breaker). */
function redisFailures(stats: CacheStats): number {
  const breaker = (stats as { readonly breaker?: { readonly skipped?: number } | null }).breaker;
  return stats.redis.errors + stats.redis.skipped + (breaker?.skipped ?? 0);
}

/**
 * 200 getOrSet calls over 20 keys, in rounds of 20 concurrent calls. Every call must return its loader's value within
 * BOUND_MS. Returns each call's duration.
 */
async function hammer(cache: Cache, label: string): Promise<number[]> {
  const loader = async ({ key }: { key: string }) => {
    await sleep(LOADER_MS);
    return { key, label };
  };
  const durations: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const results = await Promise.all(KEYS.map((key) => timed(() => cache.getOrSet(key, loader))));
    results.forEach(({ value, ms }, i) => {
      expect(value).toEqual({ key: KEYS[i], label });
      durations.push(ms);
    });
  }
  expect(durations).toHaveLength(KEYS.length * ROUNDS);
  expect(Math.max(...durations), `slowest of ${durations.length} calls`).toBeLessThan(BOUND_MS);
  return durations;
}

/** Reads `key` until another instance's fresh write comes back from Redis, or fails after `timeoutMs`. */
async function expectRedisAgain(cache: Cache, prefix: string, timeoutMs = 10_000): Promise<void> {
  await waitFor('the client to reconnect', () => cache.stats().redis.state === 'ready', { timeoutMs });
  const writer = createCache({ prefix, redis: redis.url, memory: false });
  caches.push(writer);
  await waitFor('the writer to connect', () => writer.stats().redis.state === 'ready');
  await writer.set('written-after-recovery', 'from-redis');
  await waitFor(
    'a read served by Redis',
    async () => (await cache.getWithMeta('written-after-recovery'))?.source === 'redis',
    { timeoutMs, intervalMs: 100 },
  );
}

describe('when Redis is SIGKILLed', () => {
  it('every getOrSet returns the loader value within the timeout, get is a miss, and both are counted', async () => {
    const prefix = uniquePrefix('killed');
    const { cache } = await connected(prefix);
    await cache.set('present', 'cached before the crash');
    expect(await cache.get('present')).toBe('cached before the crash');

    await redis.kill('SIGKILL');
    await hammer(cache, 'killed');
    const read = await timed(() => cache.get('present'));
    expect(read.value).toBeUndefined();
    expect(read.ms).toBeLessThan(BOUND_MS);

    const stats = cache.stats();
    expect(stats.redis.state).toBe('unavailable');
    expect(stats.loader.calls).toBe(KEYS.length * ROUNDS);
    expect(redisFailures(stats)).toBeGreaterThanOrEqual(KEYS.length * ROUNDS + 1);
  });

  it('after a restart of the same server the cache uses Redis again by itself', async () => {
    const prefix = uniquePrefix('restart');
    const { cache } = await connected(prefix, { memory: {} });
    await redis.kill('SIGKILL');
    expect(await cache.getOrSet('during', () => 'loaded while down')).toBe('loaded while down');
    await waitFor('the cache to notice', () => cache.stats().redis.state === 'unavailable');

    await redis.restart();
    await expectRedisAgain(cache, prefix);
    // And it writes there again: another instance sees this instance's load.
    await cache.getOrSet('after', () => 'loaded after recovery');
    const reader = createCache({ prefix, redis: redis.url, memory: false });
    caches.push(reader);
    await waitFor('the reader to connect', () => reader.stats().redis.state === 'ready');
    expect(await reader.getWithMeta('after')).toMatchObject({ value: 'loaded after recovery', source: 'redis' });
  });
});

describe('when Redis was never started', () => {
  it('every getOrSet returns the loader value within the timeout and get is a miss', async () => {
    const { cache } = track(
      createCache({
        prefix: uniquePrefix('absent'),
        redis: await deadUrl(),
        timeouts: { redisMs: REDIS_MS },
        memory: false,
      }),
    );
    // Straight away, while the client is still trying its first connection.
    await hammer(cache, 'absent');
    expect((await timed(() => cache.get('anything'))).value).toBeUndefined();
    const stats = cache.stats();
    expect(stats.redis.state).toBe('unavailable');
    expect(redisFailures(stats)).toBeGreaterThanOrEqual(KEYS.length * ROUNDS + 1);
    expect(stats.redis.connectionErrors).toBeGreaterThanOrEqual(1);
  });
});

describe('when Redis is paused (CLIENT PAUSE 3000 ALL)', () => {
  let pausedUntil = 0;

  beforeEach(() => {
    pausedUntil = 0;
  });

  afterEach(async () => {
    // The next test needs a server that answers.
    const left = pausedUntil - Date.now();
    if (left > 0) await sleep(left + 50);
  });

  it('every getOrSet returns the loader value within the timeout, get is a miss, and both are counted', async () => {
    const prefix = uniquePrefix('paused');
    const { cache } = await connected(prefix);
    await cache.set('present', 'cached before the pause');

    await redis.pause(3000);
    pausedUntil = Date.now() + 3000;
    await hammer(cache, 'paused');
    const read = await timed(() => cache.get('present'));
    expect(read.value).toBeUndefined();
    expect(read.ms).toBeLessThan(BOUND_MS);
    expect(Date.now(), 'the calls outlasted the pause, so they did not test it').toBeLessThan(pausedUntil);

    const stats = cache.stats();
    // The socket is open and the client ready: nothing but the timeout tells it the server is stalled.
    expect(stats.redis.timeouts).toBeGreaterThanOrEqual(1);
    expect(redisFailures(stats)).toBeGreaterThanOrEqual(KEYS.length * ROUNDS + 1);
  });

  it('with the breaker off, getOrSet still answers within one Redis timeout plus the loader time', async () => {
    // A longer timeout than elsewhere, so one timeout (~260 ms with the loader) and two or three in a row (≥ 510 ms)
    // stay far apart on a busy machine.
    const redisMs = 250;
    const bound = redisMs + LOADER_MS + 220;
    const prefix = uniquePrefix('paused-no-breaker');
    const { cache } = await connected(prefix, { breaker: false, timeouts: { redisMs } });
    await redis.pause(3000);
    pausedUntil = Date.now() + 3000;

    const durations: number[] = [];
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        KEYS.map((key) =>
          timed(() =>
            cache.getOrSet(key, async () => {
              await sleep(LOADER_MS);
              return `loaded:${key}`;
            }),
          ),
        ),
      );
      results.forEach(({ value, ms }, i) => {
        expect(value).toBe(`loaded:${KEYS[i]}`);
        durations.push(ms);
      });
    }
    expect(Date.now(), 'the calls outlasted the pause, so they did not test it').toBeLessThan(pausedUntil);
    expect(Math.max(...durations), `slowest of ${durations.length} calls`).toBeLessThan(bound);
  });
});

describe('writes while Redis is down', () => {
  let pausedUntil = 0;

  afterEach(async () => {
    const left = pausedUntil - Date.now();
    if (left > 0) await sleep(left + 50);
    pausedUntil = 0;
  });

  it('set and delete with Redis dead resolve, update memory, and emit an error event for each', async () => {
    const prefix = uniquePrefix('write-dead');
    const { cache, events } = await connected(prefix, { memory: {} });
    await redis.kill('SIGKILL');
    await waitFor('the cache to notice', () => cache.stats().redis.state === 'unavailable');

    await cache.set('k', 'written while down');
    expect(await cache.getWithMeta('k')).toMatchObject({ value: 'written while down', source: 'memory' });
    expect(await cache.delete('k')).toBe(true);
    expect(await cache.get('k')).toBeUndefined();

    const ops = events.filter((e) => e.operation === 'set' || e.operation === 'delete');
    expect(ops.map((e) => [e.operation, e.key])).toEqual([
      ['set', 'k'],
      ['delete', 'k'],
    ]);
    for (const event of ops) expect(event.error).toBeInstanceOf(CacheError);
  });

  it('set and delete with Redis paused resolve after the timeout, update memory, and emit timeout errors', async () => {
    const prefix = uniquePrefix('write-paused');
    const { cache, events } = await connected(prefix, { memory: {} });
    await redis.pause(2000);
    pausedUntil = Date.now() + 2000;

    const write = await timed(() => cache.set('k', 'written while paused'));
    expect(write.ms).toBeLessThan(BOUND_MS);
    expect(await cache.getWithMeta('k')).toMatchObject({ value: 'written while paused', source: 'memory' });
    const removal = await timed(() => cache.delete('k'));
    expect(removal.ms).toBeLessThan(BOUND_MS);
    expect(await cache.get('k')).toBeUndefined();

    // The get after the delete also asked Redis (and timed out): only the writes matter here.
    const writes = events.filter((e) => e.operation === 'set' || e.operation === 'delete');
    expect(writes.map((e) => [e.operation, e.key, e.error.constructor])).toEqual([
      ['set', 'k', CacheTimeoutError],
      ['delete', 'k', CacheTimeoutError],
    ]);
    expect(cache.stats().redis.timeouts).toBeGreaterThanOrEqual(2);
  });

  it("with writeErrors: 'throw', set and delete reject with a CacheError when Redis is dead, after updating memory", async () => {
    const prefix = uniquePrefix('throw-dead');
    const { cache } = await connected(prefix, { memory: {}, writeErrors: 'throw' });
    await redis.kill('SIGKILL');
    await waitFor('the cache to notice', () => cache.stats().redis.state === 'unavailable');

    await expect(cache.set('k', 'v')).rejects.toBeInstanceOf(CacheError);
    expect(await cache.get('k')).toBe('v');
    await expect(cache.delete('k')).rejects.toBeInstanceOf(CacheError);
    expect(await cache.get('k')).toBeUndefined();
    await expect(cache.mset([{ key: 'm', value: 1 }])).rejects.toBeInstanceOf(CacheError);
    await expect(cache.deleteMany(['m'])).rejects.toBeInstanceOf(CacheError);
    await expect(cache.clear()).rejects.toBeInstanceOf(CacheError);
  });

  it("with writeErrors: 'throw', set and delete reject with a CacheTimeoutError when Redis is paused", async () => {
    const prefix = uniquePrefix('throw-paused');
    const { cache } = await connected(prefix, { memory: {}, writeErrors: 'throw' });
    await redis.pause(2000);
    pausedUntil = Date.now() + 2000;

    await expect(cache.set('k', 'v')).rejects.toBeInstanceOf(CacheTimeoutError);
    expect(await cache.get('k')).toBe('v');
    await expect(cache.delete('k')).rejects.toBeInstanceOf(CacheTimeoutError);
  });

  it("with writeErrors: 'throw', set rejects with a CacheError when Redis was never started", async () => {
    const { cache } = track(
      createCache({ prefix: uniquePrefix('throw-absent'), redis: await deadUrl(), writeErrors: 'throw' }),
    );
    await expect(cache.set('k', 'v')).rejects.toBeInstanceOf(CacheError);
    expect(await cache.get('k')).toBe('v');
  });
});
