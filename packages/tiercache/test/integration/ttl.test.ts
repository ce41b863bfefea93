import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { sleep, uniquePrefix, waitFor } from './helpers/support.js';

let redis: RedisProcess;
const caches: Cache[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

afterAll(stopAllRedis);

async function open(prefix: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = createCache({ prefix, redis: redis.url, ...options });
  caches.push(cache);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  return cache;
}

const DAY = 24 * 60 * 60_000;

describe('TTL over a real Redis', () => {
  it('an entry expires in memory and in Redis after its TTL, and Redis drops the key', async () => {
    const prefix = uniquePrefix('ttl');
    const writer = await open(prefix);
    const reader = await open(prefix, { memory: false });
    await writer.set('k', 'v', { ttl: 200 });

    expect(await writer.getWithMeta('k')).toMatchObject({ value: 'v', source: 'memory' });
    expect(await reader.getWithMeta('k')).toMatchObject({ value: 'v', source: 'redis' });
    const pttl = Number(await redis.cli('PTTL', `${prefix}k`));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(200);

    await sleep(300);
    expect(await writer.get('k')).toBeUndefined();
    expect(await reader.get('k')).toBeUndefined();
    expect(await redis.cli('EXISTS', `${prefix}k`)).toBe('0');
    expect(writer.stats().misses).toBe(1);
    expect(reader.stats().misses).toBe(1);
  });

  it('the memory copy expires by itself, without asking Redis', async () => {
    const prefix = uniquePrefix('ttl-l1');
    const writer = await open(prefix, { memory: false });
    // Without the bus: with it, the DEL below (a foreign write) would rightly drop the reader's copy at once.
    const reader = await open(prefix, { bus: false });
    await writer.set('k', 'v', { ttl: 200 });
    expect((await reader.getWithMeta('k'))?.source).toBe('redis');
    // From here only the reader's L1 holds the value.
    await redis.cli('DEL', `${prefix}k`);
    expect(await reader.getWithMeta('k')).toMatchObject({ value: 'v', source: 'memory' });

    await sleep(300);
    expect(await reader.get('k')).toBeUndefined();
    expect(reader.stats().memory?.entries).toBe(0);
  });

  it('after its TTL an entry within grace is a miss but Redis keeps it until ttl + grace', async () => {
    const prefix = uniquePrefix('grace');
    const cache = await open(prefix, { memory: false });
    await cache.set('k', 'v', { ttl: 200, grace: 600 });
    const pttl = Number(await redis.cli('PTTL', `${prefix}k`));
    expect(pttl).toBeGreaterThan(600);
    expect(pttl).toBeLessThanOrEqual(800);

    await sleep(300);
    expect(await cache.get('k')).toBeUndefined();
    expect(await redis.cli('EXISTS', `${prefix}k`)).toBe('1');

    await sleep(600);
    expect(await redis.cli('EXISTS', `${prefix}k`)).toBe('0');
  });

  it('getOrSet reloads once the TTL has passed', async () => {
    const prefix = uniquePrefix('reload');
    const cache = await open(prefix);
    let calls = 0;
    const loader = () => ++calls;
    expect(await cache.getOrSet('k', loader, { ttl: 200 })).toBe(1);
    expect(await cache.getOrSet('k', loader, { ttl: 200 })).toBe(1);
    await sleep(300);
    expect(await cache.getOrSetWithMeta('k', loader, { ttl: 200 })).toMatchObject({ value: 2, source: 'origin' });
  });

  it('a 30-day TTL is kept in Redis and the value stays readable', async () => {
    const prefix = uniquePrefix('30d');
    const cache = await open(prefix);
    await cache.set('set', 'long', { ttl: '30d' });
    await cache.mset([{ key: 'mset', value: 'long', ttl: 30 * DAY }]);
    await cache.getOrSet('loaded', () => 'long', { ttl: '30d' });
    // 30 days is past 2^31-1 ms (~24.8 days): a setTimeout-based expiry would overflow and fire after 1 ms
    // (BentoCache #61). Give such a timer the time to fire.
    await sleep(50);

    for (const key of ['set', 'mset', 'loaded']) {
      const pttl = Number(await redis.cli('PTTL', `${prefix}${key}`));
      expect(pttl, key).toBeLessThanOrEqual(30 * DAY);
      expect(pttl, key).toBeGreaterThan(30 * DAY - 60_000);
      expect(await cache.getWithMeta(key), key).toMatchObject({ value: 'long', source: 'memory' });
    }
    const fresh = await open(prefix);
    const read = await fresh.getWithMeta('set');
    expect(read).toMatchObject({ value: 'long', source: 'redis' });
    expect(read?.expiresInMs).toBeGreaterThan(30 * DAY - 60_000);
    expect(await fresh.getWithMeta('set')).toMatchObject({ value: 'long', source: 'memory' });
  });
});
