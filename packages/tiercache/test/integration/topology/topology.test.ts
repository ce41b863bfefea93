/**
 * One suite, every Redis deployment: the core, resilience, coherence and write-strategy behaviours that the
 * single-server suites prove in depth, re-run on each topology (standalone, cluster, sentinel). Keys
 * are spread over many hash slots on purpose. One deployment per topology for the whole file.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { stopAllRedis } from '../helpers/redis-server.js';
import { closeRawClients, sleep, timed, trackUnhandledRejections, uniquePrefix, waitFor } from '../helpers/support.js';
import { TOPOLOGIES, countKeys } from './topologies.js';

const keys = (n: number, label = 'k'): string[] => Array.from({ length: n }, (_, i) => `${label}${i}`);

describe.each(TOPOLOGIES.map((make) => [make().name, make] as const))('on %s Redis', (_name, make) => {
  const topology = make();
  const caches: Cache[] = [];
  let unhandled: ReturnType<typeof trackUnhandledRejections>;

  beforeAll(async () => {
    unhandled = trackUnhandledRejections();
    await topology.start();
  }, 60_000);

  afterEach(async () => {
    await Promise.all(caches.splice(0).map((cache) => cache.close()));
    await sleep(20);
    expect(unhandled.reasons).toEqual([]);
  });

  afterAll(async () => {
    unhandled.dispose();
    await closeRawClients();
    await topology.stop();
    await stopAllRedis();
  });

  /** A cache on the topology, connected, closed after the test. */
  async function open(prefix: string, options: CacheOptions = {}): Promise<Cache> {
    const cache = createCache({ prefix, redis: topology.redis(), timeouts: { redisMs: 1000 }, ...options });
    caches.push(cache);
    await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
    return cache;
  }

  async function pair(prefix: string, options: CacheOptions = {}): Promise<[Cache, Cache]> {
    const a = await open(prefix, options);
    const b = await open(prefix, options);
    if (options.bus === undefined) {
      await waitFor('tracking to be on in both', () => [a, b].every((c) => c.stats().bus?.tracking === true));
    }
    return [a, b];
  }

  describe('core', () => {
    it('get, set, has, mget, mset, delete and deleteMany answer alike for keys over many slots', async () => {
      const [a, b] = await pair(uniquePrefix('core'), { memory: false, bus: false });
      const names = keys(60);
      await a.mset(names.slice(0, 30).map((key) => ({ key, value: `m:${key}` })));
      await Promise.all(names.slice(30).map((key) => a.set(key, `s:${key}`)));
      expect(await b.mget(names)).toEqual(names.map((key, i) => (i < 30 ? `m:${key}` : `s:${key}`)));
      expect(await b.get('k31')).toBe('s:k31');
      expect(await b.has('k0')).toBe(true);
      expect(await b.has('missing')).toBe(false);
      expect(await a.delete('k0')).toBe(true);
      expect(await a.delete('k0')).toBe(false);
      expect(await a.deleteMany(names.slice(1, 40))).toBe(39);
      expect(await b.mget(names.slice(0, 41))).toEqual([...Array<undefined>(40).fill(undefined), 's:k40']);
      expect(await countKeys(topology, `${a.prefix}*`)).toBe(20);
    });

    it('invalidateTags and clear by one instance are seen by another, and clear leaves the neighbour prefix alone', async () => {
      const prefix = uniquePrefix('tags');
      const [a, b] = await pair(prefix);
      const neighbour = await open(`${prefix.slice(0, -1)}s:`, { memory: false, bus: false });
      await neighbour.mset(keys(20).map((key) => ({ key, value: 1 })));
      const names = keys(40);
      await a.mset(names.map((key, i) => ({ key, value: i, tags: [i % 2 === 0 ? 'even' : 'odd', 'all'] })));
      expect(await b.mget(names)).toEqual(names.map((_, i) => i));

      await a.invalidateTags(['even']);
      await waitFor('B to miss every even key', async () =>
        (await b.mget(names)).every((value, i) => (i % 2 === 0 ? value === undefined : value === i)),
      );

      await a.clear();
      await waitFor('B to miss everything', async () => (await b.mget(names)).every((v) => v === undefined));
      expect(await countKeys(topology, `${a.prefix}*`)).toBe(0);
      expect(await countKeys(topology, `${neighbour.prefix}*`)).toBe(20);
    });
  });

  describe('resilience', () => {
    it('200 concurrent cold getOrSet calls on one key over two instances run the loader once', async () => {
      const [a, b] = await pair(uniquePrefix('stampede'), { bus: { tracking: false } });
      let calls = 0;
      const loader = async (): Promise<string> => {
        calls++;
        await sleep(100);
        return 'loaded';
      };
      const values = await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).getOrSet('hot', loader)),
      );
      expect(values.every((value) => value === 'loaded')).toBe(true);
      expect(calls).toBe(1);
    });

    it('keeps answering from memory and the loader while every master is paused, then hits Redis again', async () => {
      const cache = await open(uniquePrefix('failsafe'), {
        timeouts: { redisMs: 100 },
        breaker: false,
        bus: false,
      });
      await cache.set('kept', 'in memory');
      cache.on('error', () => {});
      const masters = await topology.masterProcesses();
      await Promise.all(masters.map((master) => master.pause(1500)));
      const started = Date.now();
      const { value, ms } = await timed(() => cache.getOrSet('new', () => 'from the loader'));
      expect(value).toBe('from the loader');
      // One Redis timeout for the read, one for the lock, one for the write-back, plus a busy machine's noise.
      expect(ms).toBeLessThan(1000);
      expect(await cache.get('kept')).toBe('in memory');
      expect(Date.now() - started).toBeLessThan(1500);
      await sleep(1500 - (Date.now() - started) + 100);
      await waitFor(
        'a Redis hit',
        async () => (await cache.getWithMeta('kept', { skipMemory: true }))?.source === 'redis',
      );
    });
  });

  describe('coherence', () => {
    it('a change by one instance reaches the other’s memory copy over the bus', async () => {
      const [a, b] = await pair(uniquePrefix('bus'), { bus: { tracking: false } });
      await a.set('k', 'v1');
      // A's own bus message about v1 may still be on its way and drop B's first copy: read until one stays.
      await waitFor('B to keep v1 in memory', async () => (await b.getWithMeta('k'))?.source === 'memory');
      await a.set('k', 'v2');
      await waitFor('B to see v2', async () => (await b.get('k')) === 'v2');
      await a.delete('k');
      await waitFor('B to miss', async () => (await b.get('k')) === undefined);
    });

    it('a foreign DEL by a raw client drops the memory copy in every instance (tracking)', async () => {
      const [a, b] = await pair(uniquePrefix('foreign'));
      const names = keys(30);
      await a.mset(names.map((key) => ({ key, value: key })));
      expect(await a.mget(names)).toEqual(names);
      expect(await b.mget(names)).toEqual(names);
      expect((await b.getWithMeta('k0'))?.source).toBe('memory');
      const raw = topology.raw();
      await Promise.all(names.map((key) => raw.del(`${a.prefix}${key}`)));
      for (const cache of [a, b]) {
        await waitFor('the copies to go', async () =>
          (await Promise.all(names.map((key) => cache.getWithMeta(key)))).every((meta) => meta === undefined),
        );
      }
    });
  });

  describe('write strategies', () => {
    it('write-through writes the origin, then both tiers, and the other instance drops its old copy', async () => {
      const [a, b] = await pair(uniquePrefix('wt'));
      const origin = new Map<string, string>();
      await a.set('user', 'old');
      expect(await b.get('user')).toBe('old');
      const written = await a.writeThrough('user', 'new', (value) => {
        origin.set('user', value);
        return 'ok';
      });
      expect(written).toBe('ok');
      expect(origin.get('user')).toBe('new');
      await waitFor('B to see the new value', async () => (await b.get('user')) === 'new');
    });

    it('write-behind queues over many keys flush to the origin; counters add up across two instances', async () => {
      const [a, b] = await pair(uniquePrefix('wb'), { bus: { tracking: false } });
      const origin = new Map<string, unknown>();
      const options = {
        write: (batch: readonly { key: string; value: unknown }[]) => {
          for (const item of batch) origin.set(item.key, item.value);
        },
        flushInterval: '1h',
      };
      a.writeBehindQueue('orders', options);
      const queueB = b.writeBehindQueue('orders', options);
      const names = keys(50, 'order');
      for (const [i, key] of names.entries()) await (i % 2 === 0 ? a : b).writeBehind(key, i, { queue: 'orders' });
      await queueB.flush('10s');
      expect(origin.size).toBe(50);
      expect(await a.mget(names)).toEqual(names.map((_, i) => i));

      const flushed = new Map<string, number>();
      const flush = (deltas: ReadonlyMap<string, number>) => {
        for (const [id, delta] of deltas) flushed.set(id, (flushed.get(id) ?? 0) + delta);
      };
      const counterA = a.counter('views', { flushEvery: 1000, flushInterval: '1h', flush });
      const counterB = b.counter('views', { flushEvery: 1000, flushInterval: '1h', flush });
      for (let i = 0; i < 40; i++) await (i % 2 === 0 ? counterA : counterB).incr(`p${i % 4}`);
      expect(await counterB.get('p0')).toBe(10);
      await counterA.flush();
      await counterB.flush();
      expect([...flushed.values()].reduce((sum, n) => sum + n, 0)).toBe(40);
      expect(flushed.get('p3')).toBe(10);
    });
  });
});
