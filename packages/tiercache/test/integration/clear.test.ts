import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { callDeltas, closeRawClients, commandCalls, rawClient, uniquePrefix, waitFor } from './helpers/support.js';

let redis: RedisProcess;
let raw: Redis;
const caches: Cache[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = await rawClient(redis.port);
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

afterAll(async () => {
  await closeRawClients();
  await stopAllRedis();
});

async function open(options: CacheOptions): Promise<Cache> {
  const cache = createCache({ redis: redis.url, ...options });
  caches.push(cache);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  return cache;
}

/** Every key in the server that starts with `root` (SCAN, as the cache must; KEYS is fine only in a test). */
async function keysUnder(root: string): Promise<string[]> {
  return (await raw.keys(`${root.replace(/[*?[\]\\]/g, '\\$&')}*`)).sort();
}

describe('clear() over a real Redis', () => {
  it('removes every key under the prefix and none that only share its text', async () => {
    const cache = await open({ prefix: 'app:user' });
    await cache.set('1', 'one');
    await cache.set('2:profile', 'two');
    await cache.mset([{ key: '3', value: 'three' }]);
    await cache.namespace('sessions').set('s1', 'session');
    const outside = ['app:users:1', 'app:users:2', 'app:user', 'app:userx', 'app:use', 'other:1', 'other:app:user:1'];
    for (const key of outside) await redis.cli('SET', key, 'untouched');
    await raw.set('app:usersettings', 'untouched');

    await cache.clear();

    expect(await keysUnder('app:user:')).toEqual([]);
    for (const key of [...outside, 'app:usersettings']) expect(await raw.get(key), key).toBe('untouched');
    // Memory is cleared too: the same instance misses rather than serving its L1 copy.
    expect(await cache.mget(['1', '2:profile', '3'])).toEqual([undefined, undefined, undefined]);
    expect(await cache.namespace('sessions').get('s1')).toBeUndefined();
    expect(cache.stats().hits).toMatchObject({ memory: 0, redis: 0 });
  });

  it('a namespace clears only its own keys', async () => {
    const prefix = uniquePrefix('ns');
    const cache = await open({ prefix });
    const ns = cache.namespace('orders');
    const sibling = cache.namespace('ordersArchive');
    await cache.set('top', 1);
    await ns.set('o1', 1);
    await sibling.set('o1', 1);

    await ns.clear();

    expect(await keysUnder(prefix)).toEqual([`${prefix}ordersArchive:o1`, `${prefix}top`]);
    expect(await ns.get('o1')).toBeUndefined();
    expect(await sibling.get('o1')).toBe(1);
    expect(await cache.get('top')).toBe(1);
  });

  it('clears 5000 keys in SCAN batches, never with KEYS or FLUSHDB', async () => {
    const prefix = uniquePrefix('bulk');
    const cache = await open({ prefix, memory: false });
    await cache.mset(Array.from({ length: 5000 }, (_, i) => ({ key: `k${i}`, value: i })));
    const neighbours = prefix.slice(0, -1);
    const pipeline = raw.pipeline();
    for (let i = 0; i < 1000; i++) pipeline.set(`${neighbours}x:${i}`, 'keep');
    await pipeline.exec();
    expect((await keysUnder(prefix)).length).toBe(5000);

    const before = await commandCalls(raw);
    await cache.clear();
    const deltas = callDeltas(before, await commandCalls(raw));

    expect((await keysUnder(prefix)).length).toBe(0);
    expect((await keysUnder(`${neighbours}x:`)).length).toBe(1000);
    expect(deltas['scan']).toBeGreaterThan(1);
    expect(deltas['unlink']).toBeGreaterThanOrEqual(10);
    // The `info` is this test's own first INFO, counted once it finished; the cache sent only SCAN and UNLINK.
    // `publish` is the bus telling other instances about the clear.
    expect(Object.keys(deltas).sort()).toEqual(['info', 'publish', 'scan', 'unlink']);
  });

  it('takes a prefix with glob characters literally', async () => {
    const prefix = 'a*b[1]?\\z:';
    const cache = await open({ prefix: 'a*b[1]?\\z' });
    expect(cache.prefix).toBe(prefix);
    await cache.set('k', 'v');
    await cache.set('k2', 'v');
    // Each of these matches the prefix read as an unescaped glob, as the naive pattern shows.
    const lookalikes = ['aXXb1!z:k', 'a*b1?z:k', 'ab1Zz:k'];
    const neighbours = ['a*b[1]?\\zz:k', 'a*b[1]!\\z:k', 'a*b[1]?\\z'];
    for (const key of [...lookalikes, ...neighbours]) await raw.set(key, 'untouched');
    expect((await raw.keys(`${prefix}*`)).sort()).toEqual([...lookalikes].sort());

    await cache.clear();

    expect(await raw.exists(`${prefix}k`, `${prefix}k2`)).toBe(0);
    for (const key of [...lookalikes, ...neighbours]) expect(await raw.get(key), key).toBe('untouched');
  });

  it('clears under the keyPrefix of an ioredis client passed in, and leaves that client open', async () => {
    const client = await rawClient(redis.port, { keyPrefix: 'kp:' });
    const prefix = uniquePrefix('kp');
    const cache = createCache({ prefix, redis: client });
    caches.push(cache);
    await cache.set('a', 1);
    await cache.set('b', 2);
    expect(await raw.exists(`kp:${prefix}a`, `kp:${prefix}b`)).toBe(2);
    const outside = [`${prefix}a`, `kp:${prefix.slice(0, -1)}x:a`, `kp:other`, `other:kp:${prefix}a`];
    for (const key of outside) await raw.set(key, 'untouched');

    await cache.clear();

    expect(await raw.exists(`kp:${prefix}a`, `kp:${prefix}b`)).toBe(0);
    for (const key of outside) expect(await raw.get(key), key).toBe('untouched');
    expect(await cache.get('a')).toBeUndefined();

    await cache.close();
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
  });
});
