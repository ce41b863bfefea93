/**
 * Refresh-ahead on every kind of hit. A hit in memory past the refresh point starts a background refresh; so must a hit
 * in Redis, or a cache with `memory: false` (and an instance whose memory no longer holds the key) would let a hot key
 * expire under traffic and make a caller pay for the load. Fake clock, in-memory shared tier: no I/O.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import type { Cache, CacheOptions } from '../../src/index.js';
import { FakeClock, InMemoryRemoteTier } from '../../src/testing/index.js';

const TTL = 10_000;
const OPTIONS = { ttl: TTL, refreshAhead: 0.8 };

let open: Cache[] = [];

afterEach(async () => {
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

function instances(count: number, options: Omit<CacheOptions, 'clock' | 'redis'> = {}) {
  const clock = new FakeClock();
  const tier = new InMemoryRemoteTier({ clock });
  const caches = Array.from({ length: count }, () => createCache({ redis: tier, clock, ...options }));
  open.push(...caches);
  let loads = 0;
  const loader = () => `v${++loads}`;
  return { caches, clock, loader, loads: () => loads };
}

/** Lets background work (refreshes started on a later turn of the event loop) run. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

describe('refreshAhead on a hit served by Redis', () => {
  it('refreshes in the background with memory off, so the key never expires under traffic', async () => {
    const { caches, clock, loader, loads } = instances(1, { memory: false });
    const [cache] = caches as [Cache];
    expect(await cache.getOrSetWithMeta('hot', loader, OPTIONS)).toMatchObject({ value: 'v1', source: 'origin' });

    clock.advance(TTL * 0.8 - 1);
    expect(await cache.getOrSetWithMeta('hot', loader, OPTIONS)).toMatchObject({ value: 'v1', source: 'redis' });
    await settle();
    expect(loads()).toBe(1);

    // Past the refresh point: the hit is answered at once, and one refresh starts behind it, however many hits.
    clock.advance(1);
    const hits = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSetWithMeta('hot', loader, OPTIONS)));
    expect(hits.every((hit) => hit.value === 'v1' && hit.source === 'redis')).toBe(true);
    await settle();
    expect(loads()).toBe(2);
    expect(cache.stats().loader.refreshes).toBe(1);

    // Where the first copy would have expired, the refreshed one is served: no caller waited for the loader.
    clock.advance(TTL * 0.2);
    expect(await cache.getOrSetWithMeta('hot', loader, OPTIONS)).toMatchObject({ value: 'v2', source: 'redis' });
    await settle();
    expect(loads()).toBe(2);
  });

  it('refreshes once across instances that read the key from Redis', async () => {
    const { caches, clock, loader, loads } = instances(3);
    const [a, b, c] = caches as [Cache, Cache, Cache];
    await a.getOrSet('hot', loader, OPTIONS);
    clock.advance(TTL * 0.9);
    // b and c never held the key in memory: their hits come from Redis.
    const hits = await Promise.all([b, c, b, c].map((cache) => cache.getOrSetWithMeta('hot', loader, OPTIONS)));
    expect(hits.map((hit) => hit.source)).toEqual(['redis', 'redis', 'redis', 'redis']);
    await settle();
    expect(loads()).toBe(2);
    clock.advance(TTL * 0.1);
    for (const cache of [a, b, c]) expect(await cache.getOrSet('hot', loader, OPTIONS)).toBe('v2');
    expect(loads()).toBe(2);
  });

  it('answers a hit that arrives during the refresh at once, from Redis, instead of waiting for the loader', async () => {
    const { caches, clock } = instances(1, { memory: false });
    const [cache] = caches as [Cache];
    let loads = 0;
    let finish: (value: string) => void = () => {};
    const gated = () => {
      loads++;
      return loads === 1 ? 'v1' : new Promise<string>((resolve) => (finish = resolve));
    };
    await cache.getOrSet('hot', gated, OPTIONS);
    clock.advance(TTL * 0.9);
    await cache.getOrSet('hot', gated, OPTIONS);
    await settle();
    expect(loads).toBe(2);
    // The refresh's loader has not finished: a hit is still answered, from Redis, without waiting for it.
    expect(await cache.getOrSetWithMeta('hot', gated, OPTIONS)).toMatchObject({ value: 'v1', source: 'redis' });
    finish('v2');
    await settle();
    expect(await cache.getOrSetWithMeta('hot', gated, OPTIONS)).toMatchObject({ value: 'v2', source: 'redis' });
    expect(loads).toBe(2);
  });

  it('lets a miss that arrives while the refresh still runs join it, even without the lock', async () => {
    const { caches, clock } = instances(1, { lock: false });
    const [cache] = caches as [Cache];
    let loads = 0;
    let finish: (value: string) => void = () => {};
    const gated = () => {
      loads++;
      return loads === 1 ? 'v1' : new Promise<string>((resolve) => (finish = resolve));
    };
    await cache.getOrSet('hot', gated, OPTIONS);
    clock.advance(TTL * 0.9);
    expect(await cache.getOrSetWithMeta('hot', gated, OPTIONS)).toMatchObject({ value: 'v1', source: 'memory' });
    await settle();
    expect(loads).toBe(2);
    // The copy expires before the refresh is done: the miss waits for the refresh rather than loading again.
    clock.advance(TTL * 0.1);
    const miss = cache.getOrSetWithMeta('hot', gated, OPTIONS);
    await settle();
    finish('v2');
    expect(await miss).toMatchObject({ value: 'v2', source: 'origin' });
    expect(loads).toBe(2);
  });

  it('does nothing without refreshAhead', async () => {
    const { caches, clock, loader, loads } = instances(1, { memory: false });
    const [cache] = caches as [Cache];
    await cache.getOrSet('k', loader, { ttl: TTL });
    clock.advance(TTL - 1);
    expect(await cache.getOrSet('k', loader, { ttl: TTL })).toBe('v1');
    await settle();
    expect(loads()).toBe(1);
    expect(cache.stats().loader.refreshes).toBe(0);
  });
});
