/**
 * Latency histograms, batch sizes, key groups, diagnostics_channel and health(), driven through real cache calls on
 * a fake clock and the in-memory remote tier: every figure asserted here is one the test itself caused.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS, createCache } from '../../src/index.js';
import type {
  Cache,
  CacheOptions,
  CounterMessage,
  LoadMessage,
  ReadMessage,
  RedisMessage,
  WriteMessage,
} from '../../src/index.js';
import { Histogram, SIZE_SHAPE } from '../../src/observability/histogram.js';
import { ChaosRemoteTier, FakeClock, InMemoryRemoteTier } from '../../src/testing/index.js';

let open: Cache[] = [];
let subscriptions: [string, (message: unknown) => void][] = [];

afterEach(async () => {
  for (const [name, fn] of subscriptions) unsubscribe(name, fn);
  subscriptions = [];
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

/** A remote tier whose reads take `readMs` of fake time, so Redis round trips have a known duration. */
class SlowTier extends InMemoryRemoteTier {
  readMs = 0;
  readonly #clock: FakeClock;
  constructor(clock: FakeClock) {
    super({ clock });
    this.#clock = clock;
  }
  override get(key: string): Promise<string | undefined> {
    this.#clock.advance(this.readMs);
    return super.get(key);
  }
  override getMany(keys: readonly string[]): ReturnType<InMemoryRemoteTier['getMany']> {
    this.#clock.advance(this.readMs);
    return super.getMany(keys);
  }
}

function setup(options: Omit<CacheOptions, 'clock' | 'redis'> = {}, remote = true) {
  const clock = new FakeClock();
  const tier = new SlowTier(clock);
  const chaos = new ChaosRemoteTier(tier);
  const cache = createCache({ prefix: 'obs', clock, ...(remote ? { redis: chaos } : {}), ...options });
  open.push(cache);
  return { cache, clock, tier, chaos };
}

function listen<T>(name: string): T[] {
  const seen: T[] = [];
  const fn = (message: unknown): void => void seen.push(message as T);
  subscribe(name, fn);
  subscriptions.push([name, fn]);
  return seen;
}

describe('Histogram', () => {
  it('reads p50 and p99 off its buckets within one bucket of the true value', () => {
    const histogram = new Histogram();
    for (let ms = 1; ms <= 1000; ms++) histogram.record(ms);
    const { count, p50, p99, max } = histogram.summary();
    expect(count).toBe(1000);
    expect(max).toBe(1000);
    expect(p50).toBeGreaterThanOrEqual(500);
    expect(p50).toBeLessThanOrEqual(500 * 1.26);
    expect(p99).toBeGreaterThanOrEqual(990);
    expect(p99).toBeLessThanOrEqual(1000);
  });

  it('clamps a lone value to itself and folds values past its range into the last bucket', () => {
    const histogram = new Histogram();
    histogram.record(42);
    expect(histogram.summary()).toMatchObject({ p50: 42, p99: 42, max: 42 });
    histogram.record(1e9);
    expect(histogram.cumulative(histogram.buckets - 2)).toBe(1);
    expect(histogram.cumulative(histogram.buckets - 1)).toBe(2);
  });

  it('counts batch sizes on the size scale', () => {
    const sizes = new Histogram(SIZE_SHAPE);
    for (const size of [1, 1, 3, 64]) sizes.record(size);
    expect(sizes.summary()).toMatchObject({ count: 4, sum: 69, p50: 1, max: 64 });
  });
});

describe('stats() latency and batch sizes', () => {
  it('times every loader run, overall and in its key group', async () => {
    const { cache, clock } = setup({}, false);
    await cache.getOrSet('user:1', () => {
      clock.advance(40);
      return 'ada';
    });
    await cache.getOrSet('user:2', () => {
      clock.advance(10);
      return 'bob';
    });
    const stats = cache.stats();
    expect(stats.latency.loader).toMatchObject({ count: 2, sum: 50, max: 40 });
    expect(stats.latency.loader.p50).toBeGreaterThanOrEqual(10);
    expect(stats.latency.loader.p50).toBeLessThanOrEqual(12.6);
    expect(stats.groups['user']?.loader).toMatchObject({ calls: 2, errors: 0, latency: { count: 2, max: 40 } });
  });

  it('times a Redis round trip once per batch, not once per key', async () => {
    const { cache, tier } = setup({ memory: false });
    await cache.mset([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    tier.readMs = 7;
    const before = cache.stats().latency.redis.count;
    expect(await Promise.all([cache.get('a'), cache.get('b'), cache.get('c')])).toStrictEqual([1, 2, undefined]);
    const redis = cache.stats().latency.redis;
    expect(redis.count).toBe(before + 1);
    expect(redis.max).toBe(7);
    expect(cache.health().redis.latencyMs).toBe(7);
  });

  it('records the keys of each read batch and the ops of each write batch', async () => {
    const { cache } = setup({ memory: false });
    await Promise.all([cache.set('a', 1), cache.set('b', 2)]);
    await Promise.all([cache.get('a'), cache.get('b'), cache.get('c')]);
    await cache.get('a');
    const { batches } = cache.stats();
    expect(batches.writes).toMatchObject({ count: 1, sum: 2 });
    expect(batches.reads).toMatchObject({ count: 2, sum: 4, max: 3 });
  });

  it('records the loads of each "value or lock" batch', async () => {
    const { cache } = setup();
    await Promise.all([cache.getOrSet('x:1', () => 1), cache.getOrSet('x:2', () => 2)]);
    expect(cache.stats().batches.locks).toMatchObject({ count: 1, sum: 2 });
  });

  it('records nothing with instrumentation off, and still counts', async () => {
    const { cache } = setup({ instrumentation: false });
    await cache.getOrSet('user:1', () => 1);
    await cache.get('user:1');
    const stats = cache.stats();
    expect(stats.hits.memory).toBe(1);
    expect(stats.loader.calls).toBe(1);
    expect(stats.latency.redis.count).toBe(0);
    expect(stats.latency.loader.count).toBe(0);
    expect(stats.batches.reads.count).toBe(0);
    expect(stats.groups).toStrictEqual({});
  });
});

describe('key groups', () => {
  it('counts hits by tier, misses, stale answers and loader calls per first key segment', async () => {
    const { cache, clock, chaos } = setup({ ttl: '1s', grace: '1m' });
    await cache.getOrSet('user:1', () => 'ada');
    await cache.get('user:1');
    await cache.getWithMeta('user:1');
    await cache.getOrSet('user:1', () => 'never');
    expect(await cache.get('product:9')).toBeUndefined();
    const other = createCache({ prefix: 'obs', clock, redis: chaos, memory: false });
    open.push(other);
    expect(await other.get('user:1')).toBe('ada');
    clock.advance(2_000);
    chaos.alwaysThrow();
    const failing = (): never => {
      throw new Error('origin down');
    };
    expect(await cache.getOrSetWithMeta('user:1', failing)).toMatchObject({ source: 'stale', value: 'ada' });
    expect(cache.stats().groups['user']).toMatchObject({
      hits: { memory: 3, redis: 0, stale: 1 },
      misses: 2,
      loader: { calls: 2, errors: 1 },
    });
    expect(cache.stats().groups['product']).toMatchObject({ hits: { memory: 0, redis: 0, stale: 0 }, misses: 1 });
    expect(other.stats().groups['user']?.hits.redis).toBe(1);
  });

  it('folds groups past maxKeyGroups into other', async () => {
    const { cache } = setup({ maxKeyGroups: 2 }, false);
    for (const key of ['a:1', 'b:1', 'c:1', 'd:1']) await cache.get(key);
    expect(Object.keys(cache.stats().groups).sort()).toStrictEqual(['a', 'b', 'other']);
    expect(cache.stats().groups['other']?.misses).toBe(2);
  });

  it('groups by the keyGroup option, and by namespace name by default', async () => {
    const { cache } = setup({ keyGroup: (key) => (key.startsWith('hot') ? 'hot' : 'cold') }, false);
    await cache.get('hot-1');
    await cache.get('hot-2');
    await cache.get('x');
    expect(cache.stats().groups).toMatchObject({ hot: { misses: 2 }, cold: { misses: 1 } });
    const plain = setup({}, false).cache;
    await plain.namespace('users').getOrSet('1', () => 'ada');
    await plain.namespace('users').get('1');
    expect(plain.stats().groups['users']).toMatchObject({ hits: { memory: 1 }, misses: 1, loader: { calls: 1 } });
  });
});

describe('diagnostics_channel', () => {
  it('publishes each read with its outcome and group', async () => {
    const reads = listen<ReadMessage>(CHANNELS.read);
    const { cache } = setup();
    await cache.set('user:1', 'ada');
    await cache.get('user:1');
    await cache.get('user:2');
    await cache.mget(['user:1', 'user:3']);
    expect(reads.map((r) => [r.key, r.group, r.outcome])).toStrictEqual([
      ['user:1', 'user', 'memory'],
      ['user:2', 'user', 'miss'],
      ['user:1', 'user', 'memory'],
      ['user:3', 'user', 'miss'],
    ]);
    expect(reads.every((r) => r.prefix === 'obs:')).toBe(true);
  });

  it('publishes a load twice, at its start and at its end with its duration and error', async () => {
    const loads = listen<LoadMessage>(CHANNELS.load);
    const phases: string[] = [];
    const { cache, clock } = setup({}, false);
    subscribe(CHANNELS.load, (m) => void phases.push((m as LoadMessage).phase));
    await cache.getOrSet('user:1', () => {
      clock.advance(25);
      return 1;
    });
    await expect(
      cache.getOrSet('user:2', () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(phases).toStrictEqual(['start', 'end', 'start', 'end']);
    expect(loads[0]).toBe(loads[1]);
    expect(loads[1]).toMatchObject({ key: 'user:1', group: 'user', phase: 'end', durationMs: 25, error: undefined });
    expect((loads[3]?.error as Error).message).toBe('boom');
  });

  it('publishes each Redis round trip with its size and duration, and each skipped call', async () => {
    const trips = listen<RedisMessage>(CHANNELS.redis);
    const { cache, tier, chaos } = setup({ memory: false, breaker: false });
    tier.readMs = 3;
    await Promise.all([cache.get('a'), cache.get('b')]);
    expect(trips).toMatchObject([{ operation: 'get', size: 2, durationMs: 3, ok: true, skipped: undefined }]);
    chaos.alwaysThrow();
    await cache.get('a');
    expect(trips[1]).toMatchObject({ operation: 'get', ok: false, skipped: undefined });
    expect(trips[1]?.error).toBeDefined();
    chaos.disconnect();
    await cache.get('a');
    expect(trips[2]).toMatchObject({ ok: false, skipped: 'down' });
    expect(cache.stats().redis).toMatchObject({ errors: 1, skipped: 1 });
  });

  it('publishes writes and deletes with their counts', async () => {
    const writes = listen<WriteMessage>(CHANNELS.write);
    const { cache } = setup({}, false);
    await cache.set('a', 1);
    await cache.mset([
      { key: 'b', value: 2 },
      { key: 'c', value: 3 },
    ]);
    await cache.deleteMany(['a', 'b']);
    expect(writes.map((w) => [w.kind, w.count])).toStrictEqual([
      ['write', 1],
      ['write', 2],
      ['delete', 2],
    ]);
    expect(cache.stats()).toMatchObject({ writes: 3, deletes: 2 });
  });
});

describe('the error and breaker counters, each caused and observed', () => {
  it('counts an undecodable entry in decodeErrors and reports it as a decode error event', async () => {
    const { cache, tier } = setup({ memory: false });
    const errors: string[] = [];
    cache.on('error', (e) => void errors.push(e.operation));
    await tier.set('obs:user:1', 'not an entry', 60_000);
    expect(await cache.get('user:1')).toBeUndefined();
    expect(errors).toStrictEqual(['decode']);
    expect(cache.stats()).toMatchObject({ decodeErrors: 1, misses: 1, redis: { errors: 0 } });
  });

  it('counts an oversize loaded value in uncached and reports it', async () => {
    const { cache } = setup({ maxValueBytes: 64 }, false);
    const errors: string[] = [];
    cache.on('error', (e) => void errors.push(e.error.name));
    expect(await cache.getOrSet('big:1', () => 'x'.repeat(500))).toHaveLength(500);
    expect(errors).toStrictEqual(['SerializationError']);
    expect(cache.stats().uncached).toBe(1);
  });

  it('counts a Redis call past its timeout in redis.timeouts and on the redis channel', async () => {
    const clock = new FakeClock();
    const chaos = new ChaosRemoteTier(new InMemoryRemoteTier({ clock }), { timeoutMs: 20 });
    const cache = createCache({ prefix: 'obs', clock, redis: chaos, memory: false, breaker: false });
    open.push(cache);
    const trips = listen<RedisMessage>(CHANNELS.redis);
    const errors: string[] = [];
    cache.on('error', (e) => void errors.push(e.error.name));
    chaos.blackhole();
    expect(await cache.get('slow:1')).toBeUndefined();
    expect(errors).toStrictEqual(['CacheTimeoutError']);
    expect(cache.stats().redis).toMatchObject({ errors: 1, timeouts: 1 });
    expect(trips.at(-1)).toMatchObject({ ok: false, skipped: undefined });
    expect(trips.at(-1)?.error?.name).toBe('CacheTimeoutError');
  });

  it('counts calls the open breaker turns away in breaker.skipped, after a breaker:open event', async () => {
    const { cache, chaos } = setup({
      memory: false,
      batching: false,
      breaker: { threshold: 2, windowMs: 10_000, openMs: 30_000, minDistinctKeys: 2 },
    });
    const trips = listen<RedisMessage>(CHANNELS.redis);
    const opened: string[] = [];
    cache.on('breaker:open', (t) => void opened.push(t.reason));
    chaos.alwaysThrow();
    await cache.get('a:1');
    await cache.get('a:2');
    expect(opened).toHaveLength(1);
    await cache.get('a:3');
    expect(cache.stats().breaker?.skipped).toBe(1);
    expect(trips.at(-1)).toMatchObject({ ok: false, skipped: 'breaker' });
    // Redis connected but cut off by the breaker: memory off, so nothing caches at all.
    expect(cache.health()).toMatchObject({ status: 'down', breaker: 'open', redis: { up: true } });
  });
});

describe('the lock, refresh and bus counters on tiercache:counter', () => {
  const tally = (messages: CounterMessage[], prefix = 'obs:') => {
    const out: Record<string, number> = {};
    for (const m of messages) if (m.prefix === prefix) out[m.counter] = (out[m.counter] ?? 0) + m.by;
    return out;
  };

  it('publishes locks taken, waits for another holder and waits that ran out', async () => {
    const counters = listen<CounterMessage>(CHANNELS.counter);
    const clock = new FakeClock();
    const tier = new InMemoryRemoteTier({ clock });
    const holder = createCache({ prefix: 'obs', clock, redis: tier, bus: false });
    const waiter = createCache({ prefix: 'obs', clock, redis: tier, bus: false, lock: { ttlMs: '10s', waitMs: 30 } });
    open.push(holder, waiter);
    let finish!: (value: string) => void;
    const slow = holder.getOrSet('user:1', () => new Promise<string>((resolve) => (finish = resolve)));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await waiter.getOrSet('user:1', () => 'mine')).toBe('mine');
    finish('theirs');
    await slow;
    expect(tally(counters)).toMatchObject({ locksAcquired: 1, lockWaits: 1, lockWaitTimeouts: 1 });
    expect(holder.stats().lock.acquired).toBe(1);
    expect(waiter.stats().lock).toMatchObject({ waits: 1, waitTimeouts: 1 });
  });

  it('publishes a refresh-ahead started by a hit past the refresh point', async () => {
    const counters = listen<CounterMessage>(CHANNELS.counter);
    const { cache, clock } = setup({ ttl: '10s' }, false);
    await cache.getOrSet('user:1', () => 1, { refreshAhead: 0.5 });
    clock.advance(6_000);
    await cache.getOrSet('user:1', () => 2, { refreshAhead: 0.5 });
    expect(tally(counters)).toMatchObject({ refreshes: 1 });
    expect(cache.stats().loader.refreshes).toBe(1);
  });
});

describe('health()', () => {
  it('is ok with every tier working and reports the parts', async () => {
    const { cache } = setup({ bus: false });
    await cache.set('a', 1);
    expect(cache.health()).toStrictEqual({
      status: 'ok',
      redis: { state: 'ready', up: true, latencyMs: 0 },
      breaker: 'closed',
      bus: null,
      memory: { entries: 1, bytes: expect.any(Number) as number },
      queues: {},
      coherent: null,
    });
  });

  it('is degraded when Redis is down and memory still serves, down without memory, down once closed', async () => {
    const withMemory = setup({ bus: false });
    withMemory.chaos.disconnect();
    expect(withMemory.cache.health()).toMatchObject({ status: 'degraded', redis: { state: 'unavailable', up: false } });
    const withoutMemory = setup({ bus: false, memory: false });
    withoutMemory.chaos.disconnect();
    expect(withoutMemory.cache.health().status).toBe('down');
    const memoryOnly = setup({}, false);
    expect(memoryOnly.cache.health()).toMatchObject({ status: 'ok', redis: { state: 'off', latencyMs: null } });
    await memoryOnly.cache.close();
    expect(memoryOnly.cache.health().status).toBe('down');
  });
});
