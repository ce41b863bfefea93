/**
 * Invalidations made while Redis cannot be reached: applied to the instance's own memory at once, queued, and replayed
 * when Redis answers again, so that no instance goes on serving what was invalidated during the outage. Two outages:
 * Redis killed and restarted empty on the same port, and the harder one, where the data is still in Redis afterwards
 * (the server stalled by CLIENT PAUSE, and the invalidating instance's breaker open so nothing was even sent).
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import {
  closeRawClients,
  rawClient,
  sleep,
  trackUnhandledRejections,
  uniquePrefix,
  waitFor,
} from './helpers/support.js';

let redis: RedisProcess;
let raw: Redis;
let unhandled: ReturnType<typeof trackUnhandledRejections>;
const caches: Cache[] = [];

beforeAll(async () => {
  redis = await startRedis();
  unhandled = trackUnhandledRejections();
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  await closeRawClients();
  await sleep(20);
  expect(unhandled.reasons).toEqual([]);
  if (!redis.running) await redis.restart();
});

afterAll(async () => {
  unhandled.dispose();
  await stopAllRedis();
});

async function open(prefix: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = createCache({ prefix, redis: redis.url, ...options });
  caches.push(cache);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  return cache;
}

const DELETED = Array.from({ length: 10 }, (_, i) => `k${i}`);
const TAGGED = Array.from({ length: 10 }, (_, i) => `g${i}`);
const KEPT = ['kept'];
const ALL = [...DELETED, ...TAGGED, ...KEPT];

/** Both instances hold every key in memory; TAGGED keys carry the tag `t`. */
async function fill(a: Cache, b: Cache): Promise<void> {
  await a.mset(ALL.map((key) => ({ key, value: `old ${key}`, ...(TAGGED.includes(key) ? { tags: ['t'] } : {}) })));
  for (const cache of [a, b]) {
    expect(await cache.mget(ALL)).toEqual(ALL.map((key) => `old ${key}`));
    for (const key of ALL) expect(await cache.getWithMeta(key)).toMatchObject({ source: 'memory' });
  }
}

/** The invalidations made during the outage: deletes of DELETED (one by one and in a batch) and the tag of TAGGED. */
async function invalidate(a: Cache): Promise<void> {
  await a.delete(DELETED[0] as string);
  await a.deleteMany(DELETED.slice(1));
  await a.invalidateTags(['t']);
}

/** The keys `cache` serves an old value for. */
async function servedOld(cache: Cache, keys: readonly string[]): Promise<string[]> {
  const values = await cache.mget(keys);
  return keys.filter((key, i) => values[i] === `old ${key}`);
}

/** The keys B still serves from memory with their old value (no Redis call: a memory hit resolves at once). */
async function heldOld(cache: Cache, keys: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const key of keys) {
    const hit = await cache.getWithMeta(key);
    if (hit?.source === 'memory' && hit.value === `old ${key}`) out.push(key);
  }
  return out;
}

describe('Redis SIGKILLed while A invalidates, then restarted empty on the same port', () => {
  it('within the replay delay neither A nor B serves anything that was invalidated', async () => {
    const prefix = uniquePrefix('replay-kill');
    const options: CacheOptions = { timeouts: { redisMs: 100 } };
    const a = await open(prefix, options);
    const b = await open(prefix, options);
    await fill(a, b);

    await redis.kill('SIGKILL');
    await waitFor('A to see Redis gone', () => a.stats().redis.state === 'unavailable');
    await invalidate(a);
    // Applied to A's memory at once, and queued: one per key, one per tag.
    expect(await servedOld(a, [...DELETED, ...TAGGED])).toEqual([]);
    expect(a.stats().bus?.replayPending).toBe(DELETED.length + 1);
    // B heard nothing: it keeps its copies (there is nobody to ask).
    expect(await heldOld(b, ALL)).toEqual(ALL);

    const restarted = performance.now();
    await redis.restart();
    await waitFor('A to replay', () => a.stats().bus?.replayPending === 0 && (a.stats().bus?.replayed ?? 0) > 0, {
      timeoutMs: 10_000,
    });
    await waitFor('B to stop serving the invalidated copies', async () => (await heldOld(b, ALL)).length === 0, {
      timeoutMs: 10_000,
    });
    const delay = performance.now() - restarted;
    console.log(`replay after a restart: B stopped serving old copies ${Math.round(delay)} ms after the restart`);
    expect(await servedOld(a, ALL)).toEqual([]);
    expect(await servedOld(b, ALL)).toEqual([]);
    expect(a.stats().bus).toMatchObject({ replayPending: 0, replayed: DELETED.length + 1, replayDropped: 0 });
  });
});

describe('the data still in Redis after the outage (CLIENT PAUSE, the breaker open in A)', () => {
  /**
   * A's breaker opens first (its reads time out while Redis is paused), so its invalidations are not even sent: after
   * the pause Redis still holds every old value, and B, which heard nothing, still holds them in memory.
   */
  async function outage(heartbeatMs: number): Promise<{ a: Cache; b: Cache }> {
    const prefix = uniquePrefix('replay-pause');
    raw = await rawClient(redis.port);
    const a = await open(prefix, {
      timeouts: { redisMs: 100 },
      breaker: { threshold: 2, minDistinctKeys: 2, openMs: 300 },
      bus: { heartbeatMs },
    });
    // B's heartbeat is slow on purpose: the pause must not make B flush its memory by itself.
    const b = await open(prefix, { timeouts: { redisMs: 100 }, bus: { heartbeatMs: 60_000 } });
    await waitFor('tracking in both', () => [a, b].every((c) => c.stats().bus?.tracking === true));
    await fill(a, b);

    await redis.pause(1200);
    expect(await a.get('miss-1')).toBeUndefined();
    expect(await a.get('miss-2')).toBeUndefined();
    expect(a.stats().breaker?.state).toBe('open');
    await invalidate(a);
    expect(a.stats().bus?.replayPending).toBe(DELETED.length + 1);
    expect(await servedOld(a, [...DELETED, ...TAGGED])).toEqual([]);
    expect(await heldOld(b, ALL)).toEqual(ALL);

    // The pause ends (the raw client's PING waits for it); every old value is still in Redis.
    await raw.ping();
    for (const key of ALL) expect(await raw.get(`${prefix}${key}`), key).not.toBeNull();
    return { a, b };
  }

  it('an idle A replays by itself, and B stops serving every invalidated copy', async () => {
    const heartbeatMs = 200;
    const { a, b } = await outage(heartbeatMs);
    const resumed = performance.now();
    // Nobody calls A: its replay must not wait for traffic.
    await waitFor('B to stop serving the invalidated copies', async () => (await heldOld(b, ALL)).length === 1, {
      timeoutMs: 5000,
      intervalMs: 10,
    });
    const delay = performance.now() - resumed;
    console.log(`replay with A idle: B stopped serving old copies ${Math.round(delay)} ms after Redis resumed`);
    expect(await heldOld(b, ALL)).toEqual(KEPT);
    expect(await servedOld(b, ALL)).toEqual(KEPT);
    expect(await servedOld(a, ALL)).toEqual(KEPT);
    expect(a.stats().bus).toMatchObject({ replayPending: 0, replayed: DELETED.length + 1 });
  });

  it('A’s first reads once Redis answers do not bring back what A invalidated during the outage', async () => {
    const { a, b } = await outage(60_000);
    // Past the breaker's openMs: A's next Redis call is its probe.
    await sleep(350);
    expect(await servedOld(a, ALL)).toEqual(KEPT);
    for (const key of [...DELETED, ...TAGGED]) expect(await a.getWithMeta(key), key).toBeUndefined();
    await waitFor('B to stop serving the invalidated copies', async () => (await heldOld(b, ALL)).length === 1, {
      timeoutMs: 5000,
    });
    expect(await servedOld(b, ALL)).toEqual(KEPT);
    expect(a.stats().breaker?.state).toBe('closed');
  });
});
