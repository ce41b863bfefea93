/**
 * The engine against a real redis-server: nothing lost in the start-up window, connection events, and same-turn
 * batching proved with MONITOR (which commands reached Redis, with their arguments).
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache, CacheEvents, CacheOptions } from 'tiercache';
import { deadUrl, startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { closeRawClients, rawClient, sleep, timed, uniquePrefix, waitFor } from './helpers/support.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

let redis: RedisProcess;
let raw: Redis;
const caches: Cache[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = await rawClient(redis.port);
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

afterAll(async () => {
  await closeRawClients();
  await stopAllRedis();
});

/** A cache used at once, as a short-lived worker uses it: no wait for the connection. */
function fresh(prefix: string, options: CacheOptions = {}): Cache {
  const cache = createCache({ prefix, redis: redis.url, ...options });
  caches.push(cache);
  return cache;
}

async function connected(prefix: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = fresh(prefix, options);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  if (options.bus !== false && options.memory !== false) {
    await waitFor('tracking to be on', () => cache.stats().bus?.tracking === true);
  }
  return cache;
}

async function keysUnder(prefix: string): Promise<string[]> {
  return raw.keys(`${prefix}*`);
}

/**
 * Commands the cache sends while monitored, lowercased name first. The raw client's own probes are left out, and so
 * are the commands a script runs inside Redis: what is left is what went over the cache's connection.
 */
async function monitor(): Promise<{ readonly commands: string[][]; stop(): void }> {
  const probe = /(?:^| )addr=(\S+)/.exec(String(await raw.client('INFO')))?.[1];
  const watcher = await raw.monitor();
  const commands: string[][] = [];
  watcher.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === probe || source === 'lua') return;
    const [name, ...rest] = args;
    commands.push([(name ?? '').toLowerCase(), ...rest]);
  });
  // MONITOR is itself a command: let it take effect before the test starts sending.
  await sleep(20);
  return { commands, stop: () => watcher.disconnect() };
}

const names = (commands: readonly string[][]): string[] => commands.map(([name]) => name ?? '');
const scriptCalls = (commands: readonly string[][]): string[][] =>
  commands.filter(([name]) => name === 'evalsha' || name === 'eval');

describe('the start-up window', () => {
  it('a short-lived writer that awaits 100 sets and closes leaves all 100 keys in Redis', async () => {
    const prefix = uniquePrefix('worker');
    const worker = fresh(prefix);
    for (let i = 0; i < 100; i++) await worker.set(`k${i}`, { i });
    expect(worker.stats().redis.skipped).toBe(0);
    await worker.close();
    expect(await keysUnder(prefix)).toHaveLength(100);
  });

  it('sets made without awaiting them, right before close(), are all sent', async () => {
    const prefix = uniquePrefix('fire-and-forget');
    const worker = fresh(prefix);
    const writes = Array.from({ length: 100 }, (_, i) => worker.set(`k${i}`, i));
    await worker.close();
    await Promise.all(writes);
    expect(await keysUnder(prefix)).toHaveLength(100);
  });

  it('a second instance created at the same moment reads what Redis holds on its first call', async () => {
    const prefix = uniquePrefix('second');
    const writer = fresh(prefix);
    await writer.set('stored', 'from Redis');
    const reader = fresh(prefix);
    expect(await reader.getWithMeta('stored')).toMatchObject({ value: 'from Redis', source: 'redis' });
    expect(reader.health().status).toBe('ok');
  });

  it('health() is ok after the first successful calls of a new cache', async () => {
    const cache = fresh(uniquePrefix('health'));
    await cache.getOrSet('a', () => 1);
    await cache.getOrSet('b', () => 2);
    expect(cache.health()).toMatchObject({ status: 'ok', redis: { state: 'ready', up: true } });
  });

  it('a call made while the connection hangs in its handshake answers within the Redis timeout', async () => {
    const proxy = await startTcpProxy(redis.port, { kind: 'blackhole' });
    proxies.push(proxy);
    const cache = createCache({ prefix: uniquePrefix('hung-connect'), redis: proxy.url, timeouts: { redisMs: 100 } });
    caches.push(cache);
    const calls = await Promise.all(
      Array.from({ length: 20 }, (_, i) => timed(() => cache.getOrSet(`k${i}`, () => `loaded ${i}`))),
    );
    for (const [i, { value }] of calls.entries()) expect(value).toBe(`loaded ${i}`);
    // One Redis timeout for the wait and nothing more, plus the machine's noise.
    expect(Math.max(...calls.map((c) => c.ms))).toBeLessThanOrEqual(100 + 60);
    expect(cache.stats().redis.timeouts).toBeGreaterThan(0);
  });

  it('a call with nothing listening answers at once from the loader, and reports the write', async () => {
    const cache = createCache({ prefix: uniquePrefix('absent'), redis: await deadUrl(), timeouts: { redisMs: 100 } });
    caches.push(cache);
    await waitFor('the first connection attempt to fail', () => cache.stats().redis.connectionErrors > 0);
    const errors: CacheEvents['error'][] = [];
    cache.on('error', (event) => errors.push(event));
    const { value, ms } = await timed(() => cache.getOrSet('k', () => 'from the loader'));
    expect(value).toBe('from the loader');
    expect(ms).toBeLessThanOrEqual(100 + 60);
    await cache.set('written', 1);
    expect(errors.some((e) => e.operation === 'set' && e.key === 'written')).toBe(true);
  });

  it("with writeErrors: 'throw', a write that could not reach Redis rejects", async () => {
    const cache = createCache({ prefix: uniquePrefix('throw'), redis: await deadUrl(), writeErrors: 'throw' });
    caches.push(cache);
    await waitFor('the first connection attempt to fail', () => cache.stats().redis.connectionErrors > 0);
    await expect(cache.set('k', 1)).rejects.toMatchObject({ code: 'TIERCACHE_CONNECTION' });
    // Memory still has it: only the shared tier missed the write.
    expect(await cache.get('k')).toBe(1);
  });
});

describe('connection events', () => {
  it('redis:up once connected, redis:down once when the server dies, redis:up again when it is back', async () => {
    const own = await startRedis();
    const events: string[] = [];
    const cache = createCache({ prefix: uniquePrefix('events'), redis: own.url });
    caches.push(cache);
    cache.on('redis:up', () => events.push('up'));
    cache.on('redis:down', () => events.push('down'));
    await waitFor('the first up', () => events.length === 1);
    expect(events).toEqual(['up']);
    await own.kill('SIGKILL');
    await waitFor('down', () => events.length === 2);
    // Reconnect attempts fail meanwhile; none of them is another event.
    await sleep(600);
    expect(events).toEqual(['up', 'down']);
    await own.restart();
    await waitFor('up again', () => events.length === 3, { timeoutMs: 10_000 });
    expect(events).toEqual(['up', 'down', 'up']);
    await own.stop();
  });

  it('redis:down once when the first connection attempt fails', async () => {
    const cache = createCache({ prefix: uniquePrefix('never-up'), redis: await deadUrl() });
    caches.push(cache);
    const events: string[] = [];
    cache.on('redis:up', () => events.push('up'));
    cache.on('redis:down', () => events.push('down'));
    await waitFor('down', () => events.length > 0);
    await sleep(500);
    expect(events).toEqual(['down']);
  });
});

describe('same-turn batching', () => {
  it('64 concurrent gets of distinct keys in one turn are one MGET (batching.maxKeys: 64)', async () => {
    const prefix = uniquePrefix('mget-turn');
    const keys = Array.from({ length: 64 }, (_, i) => `k${i}`);
    const writer = await connected(prefix, { memory: false });
    await writer.mset(keys.map((key, i) => ({ key, value: i })));
    const cache = await connected(prefix, { memory: false, batching: { maxKeys: 64 } });
    const watch = await monitor();
    const values = await Promise.all(keys.map((key) => cache.get(key)));
    await sleep(20);
    watch.stop();
    expect(values).toEqual(keys.map((_, i) => i));
    expect(watch.commands).toEqual([['mget', ...keys.map((key) => prefix + key)]]);
  });

  it('by default the 64 gets of a turn are two MGETs of 32, sent back to back', async () => {
    const prefix = uniquePrefix('mget-default');
    const keys = Array.from({ length: 64 }, (_, i) => `k${i}`);
    const writer = await connected(prefix, { memory: false });
    await writer.mset(keys.map((key, i) => ({ key, value: i })));
    const cache = await connected(prefix, { memory: false });
    const watch = await monitor();
    const before = cache.stats().batches.reads.count;
    const values = keys.map((key) => cache.get(key));
    // Both went to the client within this synchronous stretch: the second does not wait for the first one's reply.
    expect(cache.stats().batches.reads.count - before).toBe(2);
    expect(await Promise.all(values)).toEqual(keys.map((_, i) => i));
    await sleep(20);
    watch.stop();
    expect(watch.commands).toEqual([
      ['mget', ...keys.slice(0, 32).map((key) => prefix + key)],
      ['mget', ...keys.slice(32).map((key) => prefix + key)],
    ]);
  });

  it('a lone get is a plain GET', async () => {
    const prefix = uniquePrefix('lone');
    const cache = await connected(prefix, { memory: false });
    await cache.set('k', 1);
    const watch = await monitor();
    expect(await cache.get('k')).toBe(1);
    await sleep(20);
    watch.stop();
    expect(watch.commands).toEqual([['get', `${prefix}k`]]);
  });

  it('64 concurrent sets in one turn are one script call when no memory copy can be echoed (maxKeys: 64)', async () => {
    const prefix = uniquePrefix('set-turn');
    const cache = await connected(prefix, { memory: false, batching: { maxKeys: 64 } });
    // The script's first use on a connection is EVALSHA, refused, then EVAL: done before watching.
    await Promise.all([cache.set('warm1', 1), cache.set('warm2', 2)]);
    const watch = await monitor();
    await Promise.all(Array.from({ length: 64 }, (_, i) => cache.set(`k${i}`, i)));
    await sleep(20);
    watch.stop();
    expect(names(watch.commands)).toEqual(['evalsha']);
    expect(watch.commands[0]?.[2]).toBe('64');
    expect(await keysUnder(prefix)).toHaveLength(66);
  });

  it('by default 64 concurrent sets are two script calls of 32', async () => {
    const prefix = uniquePrefix('set-default');
    const cache = await connected(prefix, { memory: false });
    // The script's first use on a connection is EVALSHA, refused, then EVAL: done before watching.
    await Promise.all([cache.set('warm1', 1), cache.set('warm2', 2)]);
    const watch = await monitor();
    await Promise.all(Array.from({ length: 64 }, (_, i) => cache.set(`k${i}`, i)));
    await sleep(20);
    watch.stop();
    expect(names(watch.commands)).toEqual(['evalsha', 'evalsha']);
    expect(watch.commands.map((c) => c[2])).toEqual(['32', '32']);
    expect(await keysUnder(prefix)).toHaveLength(66);
  });

  it('an instance without memory hears no echo of its own script writes, and still leaves the telling to tracking', async () => {
    const prefix = uniquePrefix('no-echo');
    const cache = await connected(prefix, { memory: false });
    const reader = await connected(prefix);
    await reader.set('k0', 'old');
    expect(await reader.getWithMeta('k0')).toMatchObject({ source: 'memory' });
    await Promise.all(Array.from({ length: 64 }, (_, i) => cache.set(`k${i}`, i)));
    // Tracking is on (so no key messages are published), on a prefix none of its keys has: no echo per written key.
    await waitFor('the reader to drop its copy', async () => (await reader.getWithMeta('k0'))?.source !== 'memory');
    expect(await reader.get('k0')).toBe(0);
    const bus = cache.stats().bus;
    expect(bus).toMatchObject({ tracking: true, trackingInvalidations: 0, published: 0 });
  });

  it('64 concurrent sets of a tracking instance with memory go out as one pipeline of plain SETs', async () => {
    const prefix = uniquePrefix('set-pipeline');
    const cache = await connected(prefix);
    const watch = await monitor();
    await Promise.all(Array.from({ length: 64 }, (_, i) => cache.set(`k${i}`, i)));
    await sleep(20);
    watch.stop();
    // Plain SETs, which Redis' NOLOOP keeps from echoing back to this instance's memory.
    expect(names(watch.commands)).toEqual(Array.from({ length: 64 }, () => 'set'));
    expect(cache.stats().bus?.trackingInvalidations).toBe(0);
    expect(await cache.getWithMeta('k7')).toMatchObject({ value: 7, source: 'memory' });
  });

  it('a read after a write in the same turn sees the write (program order is kept)', async () => {
    const prefix = uniquePrefix('order');
    const cache = await connected(prefix, { memory: false });
    await cache.set('k', 'old');
    const [, afterSet] = await Promise.all([cache.set('k', 'new'), cache.get('k')]);
    expect(afterSet).toBe('new');
    const [beforeDelete] = await Promise.all([cache.get('k'), cache.delete('k')]);
    expect(beforeDelete).toBe('new');
    expect(await cache.get('k')).toBeUndefined();
  });

  it('one bad entry in a batch fails its own read only', async () => {
    const prefix = uniquePrefix('bad-entry');
    const cache = await connected(prefix, { memory: false });
    await cache.mset([
      { key: 'a', value: 'A' },
      { key: 'c', value: 'C' },
    ]);
    await raw.set(`${prefix}b`, 'not an entry');
    const values = await Promise.all(['a', 'b', 'c'].map((key) => cache.get(key)));
    expect(values).toEqual(['A', undefined, 'C']);
    expect(cache.stats().decodeErrors).toBe(1);
  });

  it('one write refused by Redis in a batch fails its own call only', async () => {
    const prefix = uniquePrefix('bad-write');
    const cache = await connected(prefix, { memory: false, writeErrors: 'throw' });
    // The tag's index is a sorted set: a string in its place makes that one write's tag step fail (WRONGTYPE).
    await raw.set(`${prefix}__tag:broken`, 'not a sorted set');
    const results = await Promise.allSettled([
      cache.set('ok1', 1),
      cache.set('tagged', 2, { tags: ['broken'] }),
      cache.set('ok2', 3),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'TIERCACHE_REDIS_REPLY' });
    expect(await raw.exists(`${prefix}ok1`, `${prefix}ok2`)).toBe(2);
  });

  it('batching: false sends one command per call', async () => {
    const prefix = uniquePrefix('unbatched');
    const writer = await connected(prefix, { memory: false });
    await writer.mset(['a', 'b', 'c'].map((key) => ({ key, value: key })));
    const cache = await connected(prefix, { memory: false, batching: false });
    const watch = await monitor();
    await Promise.all(['a', 'b', 'c'].map((key) => cache.get(key)));
    await sleep(20);
    watch.stop();
    expect(names(watch.commands)).toEqual(['get', 'get', 'get']);
  });

  it('a batch larger than batching.maxKeys goes out in several MGETs', async () => {
    const prefix = uniquePrefix('bounded');
    const cache = await connected(prefix, { memory: false, batching: { maxKeys: 10 } });
    const watch = await monitor();
    await Promise.all(Array.from({ length: 25 }, (_, i) => cache.get(`k${i}`)));
    await sleep(20);
    watch.stop();
    expect(watch.commands.map((c) => [c[0], c.length - 1])).toEqual([
      ['mget', 10],
      ['mget', 10],
      ['mget', 5],
    ]);
  });
});

describe('the cold path', () => {
  it('a cold getOrSet asks "the value, or else the lock" in one round trip, loads, then writes', async () => {
    const prefix = uniquePrefix('cold');
    const cache = await connected(prefix);
    await cache.getOrSet('warm', () => 'scripts loaded on this connection');
    const watch = await monitor();
    let sentBeforeLoader: string[] = [];
    const value = await cache.getOrSet('k', async () => {
      // MONITOR reports asynchronously: give it time to show what was sent before the loader ran.
      await sleep(50);
      sentBeforeLoader = names(watch.commands);
      return 'loaded';
    });
    await sleep(20);
    watch.stop();
    expect(value).toBe('loaded');
    // One script call before the loader (no GET, then SET NX), one after it (the guarded write).
    expect(sentBeforeLoader).toEqual(['evalsha']);
    // (and, off the caller's path, the MGET that checks the write script's tracking echo)
    expect(names(watch.commands)).toEqual(['evalsha', 'evalsha', 'mget']);
    expect(await cache.getWithMeta('k')).toMatchObject({ source: 'memory' });
    expect(await raw.exists(`${prefix}__lock:{${prefix}k}`)).toBe(0);
  });

  it('without memory a cold getOrSet answers once its write is sent; with memory once Redis kept or refused it', async () => {
    const answered = async (memory: boolean): Promise<number> => {
      const prefix = uniquePrefix(memory ? 'verdict' : 'sent');
      const cache = await connected(prefix, { ...(memory ? {} : { memory: false }), timeouts: { redisMs: 2_000 } });
      const { ms, value } = await timed(() =>
        cache.getOrSet('k', async () => {
          // Held replies: Redis runs no write command for 400 ms, the guarded write included.
          await raw.client('PAUSE', 400, 'WRITE');
          return 'loaded';
        }),
      );
      expect(value).toBe('loaded');
      await waitFor('the write to land', async () => (await raw.exists(`${prefix}k`)) === 1);
      return ms;
    };
    expect(await answered(false)).toBeLessThan(250);
    expect(await answered(true)).toBeGreaterThanOrEqual(350);
  });

  it("one Redis key named from two views (the root's `b:c`, namespace `b`'s `c`) is loaded once", async () => {
    // Single-flight is per view; the stampede lock makes the second view's load wait for the first one's value.
    const cache = await connected(uniquePrefix('views'));
    let calls = 0;
    const loader = async (): Promise<string> => {
      calls++;
      await sleep(50);
      return 'loaded';
    };
    const values = await Promise.all([
      cache.getOrSet('b:c', loader),
      cache.namespace('b').getOrSet('c', loader),
      cache.getOrSet('b:c', loader),
    ]);
    expect(values).toEqual(['loaded', 'loaded', 'loaded']);
    expect(calls).toBe(1);
  });

  /** The commands 100 concurrent cold getOrSets of distinct keys send, the scripts already loaded. */
  async function coldLoads(name: string, options: CacheOptions): Promise<string[][]> {
    const cache = await connected(uniquePrefix(name), options);
    await cache.getOrSet('warm', () => 'scripts loaded on this connection');
    const watch = await monitor();
    const values = await Promise.all(Array.from({ length: 100 }, (_, i) => cache.getOrSet(`k${i}`, () => i)));
    await sleep(20);
    watch.stop();
    expect(values).toEqual(Array.from({ length: 100 }, (_, i) => i));
    return watch.commands;
  }

  it('100 concurrent cold getOrSets of distinct keys take their locks in one script call (maxKeys: 100)', async () => {
    const commands = await coldLoads('cold-many', { batching: { maxKeys: 100 } });
    const scripts = scriptCalls(commands);
    // One read-or-lock for all 100 keys (200 KEYS), then the turn's 100 guarded writes in one pipeline.
    expect(scripts[0]?.[2]).toBe('200');
    expect(scripts).toHaveLength(101);
    // Besides them, only the checks of the scripts' tracking echoes (an MGET of what was written, off the caller's path).
    expect(new Set(names(commands.filter((c) => !scripts.includes(c))))).toEqual(new Set(['mget']));
  });

  it('by default they take them in script calls of at most 32 keys, sent back to back', async () => {
    const commands = await coldLoads('cold-default', {});
    // The read-or-lock steps (2 KEYS a load) come first: 32 + 32 + 32 + 4 loads, then the 100 guarded writes.
    expect(
      scriptCalls(commands)
        .slice(0, 4)
        .map((c) => c[2]),
    ).toEqual(['64', '64', '64', '8']);
  });
});

describe('deleteMany', () => {
  it('counts each key that existed in either tier, also for several keys while Redis answers', async () => {
    const prefix = uniquePrefix('count');
    const cache = await connected(prefix, { bus: false });
    await cache.mset([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    // `a` now lives only in this instance's memory, `b` in both, `c` nowhere.
    await raw.del(`${prefix}a`);
    expect(await cache.deleteMany(['a', 'b', 'c'])).toBe(2);
    expect(await cache.deleteMany(['a', 'b', 'c'])).toBe(0);
  });
});
