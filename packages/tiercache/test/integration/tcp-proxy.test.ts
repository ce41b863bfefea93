import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache } from 'tiercache';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { closeRawClients, rawClient, sleep, timed, uniquePrefix, waitFor } from './helpers/support.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

const REDIS_MS = 100;
/** Generous: the machine is shared, and only the order of magnitude matters (a hang would be seconds or forever). */
const MARGIN_MS = 300;

let redis: RedisProcess;
let proxy: TcpProxy;
const caches: Cache[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  await proxy.close();
});

afterAll(async () => {
  await closeRawClients();
  await stopAllRedis();
});

/** A cache reading Redis through the proxy, with no L1 so that every read goes over the wire. */
async function throughProxy(prefix: string): Promise<Cache> {
  proxy = await startTcpProxy(redis.port);
  const cache = createCache({ prefix, redis: proxy.url, memory: false, timeouts: { redisMs: REDIS_MS } });
  caches.push(cache);
  await waitFor('the cache to connect through the proxy', () => cache.stats().redis.state === 'ready');
  return cache;
}

/** Writes a value straight to Redis (not through the proxy) in the cache's format. */
async function seed(prefix: string, key: string, value: unknown): Promise<void> {
  const writer = createCache({ prefix, redis: redis.url, memory: false });
  try {
    await waitFor('the writer to connect', () => writer.stats().redis.state === 'ready');
    await writer.set(key, value);
  } finally {
    await writer.close();
  }
}

describe('the TCP proxy in front of Redis', () => {
  it('a blackholed connection makes get a miss within the Redis timeout', async () => {
    const prefix = uniquePrefix('blackhole');
    await seed(prefix, 'k', 'v');
    const cache = await throughProxy(prefix);
    expect(await cache.get('k')).toBe('v');

    proxy.blackhole();
    const read = await timed(() => cache.get('k'));
    expect(read.value).toBeUndefined();
    expect(read.ms).toBeGreaterThanOrEqual(REDIS_MS - 5);
    expect(read.ms).toBeLessThan(REDIS_MS + MARGIN_MS);
    expect(cache.stats().redis.timeouts).toBeGreaterThanOrEqual(1);
    // The socket stays open in a blackhole: nothing tells the client the network is gone.
    expect(cache.stats().redis.state).toBe('ready');
  });

  it('leaving a blackhole resets the broken connections and the cache reads through the new one', async () => {
    const prefix = uniquePrefix('blackhole-recover');
    await seed(prefix, 'k', 'v');
    const cache = await throughProxy(prefix);
    proxy.blackhole();
    expect(await cache.get('k')).toBeUndefined();
    const acceptedBefore = proxy.accepted;

    proxy.pass();
    await waitFor('a reconnect through the proxy', () => proxy.accepted > acceptedBefore);
    await waitFor('the cache to be ready again', () => cache.stats().redis.state === 'ready');
    expect(await cache.get('k')).toBe('v');
  });

  it('delay slows each round trip by the delay both ways but still answers', async () => {
    const prefix = uniquePrefix('delay');
    await seed(prefix, 'k', 'v');
    proxy = await startTcpProxy(redis.port);
    const cache = createCache({ prefix, redis: proxy.url, memory: false, timeouts: { redisMs: 2000 } });
    caches.push(cache);
    await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');

    proxy.delay(60);
    const read = await timed(() => cache.get('k'));
    expect(read.value).toBe('v');
    expect(read.ms).toBeGreaterThanOrEqual(110);
  });

  it('a command sent under delay is not overtaken by one sent after switching back to pass', async () => {
    proxy = await startTcpProxy(redis.port);
    const client = await rawClient(proxy.port);
    const key = `${uniquePrefix('order')}k`;
    proxy.delay(150);
    const write = client.set(key, 'written first');
    await sleep(20);
    proxy.pass();
    // Sent after the SET; if it overtook the SET through the proxy it would read nothing.
    expect(await client.get(key)).toBe('written first');
    expect(await write).toBe('OK');
  });

  it('hold lets a command reach Redis while its reply waits for the mode to change', async () => {
    const prefix = uniquePrefix('hold');
    proxy = await startTcpProxy(redis.port);
    const cache = createCache({ prefix, redis: proxy.url, memory: false, timeouts: { redisMs: 5000 } });
    caches.push(cache);
    await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
    const raw = await rawClient(redis.port);

    proxy.hold();
    let settled = false;
    const write = cache.set('k', 'v').then(() => (settled = true));
    await waitFor('the SET to reach Redis', async () => (await raw.exists(`${prefix}k`)) === 1);
    await sleep(50);
    expect(settled).toBe(false);

    proxy.pass();
    await write;
    expect(settled).toBe(true);
  });

  it('reset drops every connection and refuses new ones until pass', async () => {
    const prefix = uniquePrefix('reset');
    await seed(prefix, 'k', 'v');
    const cache = await throughProxy(prefix);

    proxy.reset();
    await waitFor('the cache to see the connection drop', () => cache.stats().redis.state !== 'ready');
    const read = await timed(() => cache.get('k'));
    expect(read.value).toBeUndefined();
    expect(read.ms).toBeLessThan(REDIS_MS + MARGIN_MS);
    expect(cache.stats().redis.skipped).toBeGreaterThanOrEqual(1);
    expect(proxy.open).toBe(0);

    proxy.pass();
    await waitFor('the cache to reconnect', () => cache.stats().redis.state === 'ready');
    expect(await cache.get('k')).toBe('v');
  });
});
