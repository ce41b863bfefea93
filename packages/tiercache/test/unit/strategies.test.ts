import { afterEach, describe, expect, it } from 'vitest';
import { ConfigurationError, createCache } from '../../src/index.js';
import type { Cache, CacheOptions, WriteBehindItem } from '../../src/index.js';
import { ChaosRemoteTier, InMemoryRemoteTier } from '../../src/testing/index.js';
import { fakeClock } from './fake-clock.js';
import type { FakeClock } from './fake-clock.js';

let open: Cache[] = [];

afterEach(async () => {
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

function shared(): { clock: FakeClock; tier: InMemoryRemoteTier } {
  const clock = fakeClock();
  return { clock, tier: new InMemoryRemoteTier({ clock }) };
}

function cacheOn(
  redis: NonNullable<CacheOptions['redis']>,
  clock: FakeClock,
  options: Omit<CacheOptions, 'clock'> = {},
): Cache {
  const cache = createCache({ prefix: 'app', redis, clock, ...options });
  open.push(cache);
  return cache;
}

describe('writeThrough', () => {
  it('writes the origin first, then both tiers, and resolves with the writer result', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    const order: string[] = [];
    const result = await cache.writeThrough('stock:1', 7, async (value) => {
      order.push(`origin ${value} cached=${String(await cache.get('stock:1'))}`);
      return 'row-1';
    });
    expect(result).toBe('row-1');
    expect(order).toEqual(['origin 7 cached=undefined']);
    expect(await cache.get('stock:1')).toBe(7);
    expect(tier.keys()).toContain('app:stock:1');
  });

  it('leaves the cache untouched and rejects with the writer error when the origin fails', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    await cache.set('stock:1', 5);
    const failure = new Error('origin down');
    await expect(cache.writeThrough('stock:1', 9, () => Promise.reject(failure))).rejects.toBe(failure);
    expect(await cache.get('stock:1')).toBe(5);
    const other = cacheOn(tier, clock);
    expect(await other.get('stock:1')).toBe(5);
  });

  it('resolves after a Redis failure that follows the origin write, with memory updated and the invalidation queued', async () => {
    const { clock, tier } = shared();
    const chaos = new ChaosRemoteTier(tier);
    const cache = cacheOn(chaos, clock, { breaker: false });
    await cache.set('stock:1', 1);
    chaos.alwaysThrow(new Error('READONLY'));
    await expect(cache.writeThrough('stock:1', 2, () => 'ok')).resolves.toBe('ok');
    expect(await cache.get('stock:1')).toBe(2);
    expect(cache.stats().bus?.replayPending).toBe(1);
  });

  it('refuses a writer that is not a function before calling anything', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    await expect(cache.writeThrough('k', 1, 'nope' as never)).rejects.toThrow(
      'Expected `writer` to be a function, got `"nope"` (string)',
    );
  });
});

describe('counter', () => {
  it('answers live totals and flushes 100 increments in at most 8 batches when flushEvery is 16', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    const flushes: Map<string, number>[] = [];
    const counter = cache.counter('views', {
      flushEvery: 16,
      flush: (deltas) => {
        flushes.push(new Map(deltas));
      },
    });
    let last = 0;
    for (let i = 0; i < 100; i++) last = await counter.incr('p1');
    expect(last).toBe(100);
    expect(await counter.get('p1')).toBe(100);
    await cache.close();
    const total = flushes.reduce((sum, d) => sum + (d.get('p1') ?? 0), 0);
    expect(total).toBe(100);
    expect(flushes.length).toBeLessThanOrEqual(8);
    expect(flushes.length).toBeGreaterThanOrEqual(6);
  });

  it('retries a failed flush with the same batch id and the same deltas', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    const calls: { id: string; delta: number | undefined }[] = [];
    let fail = true;
    const counter = cache.counter('views', {
      flushEvery: 1000,
      flush: (deltas, batchId) => {
        calls.push({ id: batchId, delta: deltas.get('p') });
        if (fail) throw new Error('db down');
      },
    });
    await counter.incr('p', 3);
    await expect(counter.flush()).rejects.toThrow('db down');
    await counter.incr('p', 2);
    fail = false;
    await counter.flush();
    expect(calls[0]).toEqual(calls[1]);
    expect(calls[0]?.delta).toBe(3);
    expect(calls[2]?.delta).toBe(2);
    expect(calls[2]?.id).not.toBe(calls[0]?.id);
  });

  it('seeds a total from load the first time an id is counted', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    let loads = 0;
    const counter = cache.counter('views', {
      flush: () => undefined,
      load: () => {
        loads++;
        return 41;
      },
    });
    expect(await counter.incr('p')).toBe(42);
    expect(await counter.incr('p')).toBe(43);
    expect(loads).toBe(1);
  });

  it('shares totals between instances and lets either flush what the other counted', async () => {
    const { clock, tier } = shared();
    const flushed: number[] = [];
    const flush = (deltas: ReadonlyMap<string, number>): void => {
      flushed.push(deltas.get('p') ?? 0);
    };
    const a = cacheOn(tier, clock).counter('views', { flush });
    const b = cacheOn(tier, clock).counter('views', { flush });
    await a.incr('p', 5);
    expect(await b.incr('p', 1)).toBe(6);
    await b.flush();
    expect(flushed).toEqual([6]);
    expect(await a.unflushed()).toBe(0);
  });

  it('keeps increments in memory while Redis fails and merges them back when it returns', async () => {
    const { clock, tier } = shared();
    const chaos = new ChaosRemoteTier(tier);
    const cache = cacheOn(chaos, clock, { breaker: false });
    const flushed: number[] = [];
    const counter = cache.counter('views', { flush: (d) => void flushed.push(d.get('p') ?? 0) });
    await counter.incr('p', 10);
    chaos.alwaysThrow(new Error('LOADING'));
    expect(await counter.incr('p', 2)).toBe(12);
    expect(await counter.unflushed()).toBe(2);
    chaos.heal();
    expect(await counter.incr('p', 1)).toBe(13);
    await counter.flush();
    expect(flushed).toEqual([13]);
  });

  it('validates its options with precise messages', () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    expect(() => cache.counter('views', { flushEvery: 0, flush: () => undefined })).toThrow(
      'Expected `flushEvery` to be a positive integer, got `0` (number)',
    );
    expect(() => cache.counter('views', {} as never)).toThrow(ConfigurationError);
    expect(() => cache.counter('bad name', { flush: () => undefined })).toThrow('counter name');
  });
});

describe('warm', () => {
  it('writes every entry in batches, reports progress per batch and counts entries it cannot write', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    const progress: number[] = [];
    async function* entries(): AsyncGenerator<{ key: string; value: number }> {
      for (let i = 0; i < 25; i++) yield { key: i === 7 ? '__reserved' : `list:${i}`, value: i };
    }
    const result = await cache.warm(entries(), {
      batchSize: 10,
      ttl: '1m',
      onProgress: (p) => progress.push(p.written),
    });
    expect(result).toEqual({ written: 24, failed: 1 });
    expect(progress).toEqual([9, 19, 24]);
    expect(await cache.get('list:24')).toBe(24);
    expect(tier.pttl('app:list:3')).toBe(60_000);
  });

  it('refuses a batchSize of 0', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    await expect(cache.warm([], { batchSize: 0 })).rejects.toThrow(
      'Expected `batchSize` to be a positive integer of at most 100000, got `0` (number)',
    );
  });
});

describe('write-behind', () => {
  it("shows each queue's depth in health() as of its last stats(), without a round trip of its own", async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    let release = (): void => {};
    const origin = new Promise<void>((resolve) => (release = resolve));
    const queue = cache.writeBehindQueue<number>('slow', { write: () => origin });
    expect(cache.health().queues).toEqual({ slow: { pending: 0 } });
    await Promise.all([1, 2, 3].map((i) => cache.writeBehind(`s:${i}`, i, { queue: 'slow' })));
    await queue.stats();
    expect(cache.health().queues).toEqual({ slow: { pending: 3 } });
    release();
    await queue.flush();
    await queue.stats();
    expect(cache.health().queues).toEqual({ slow: { pending: 0 } });
  });

  it('sets the cache at once and writes the latest value of each key to the origin', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    const origin = new Map<string, unknown>();
    const batches: WriteBehindItem<number>[][] = [];
    const queue = cache.writeBehindQueue<number>('orders', {
      write: (batch) => {
        batches.push([...batch]);
        for (const item of batch) origin.set(item.key, item.value);
      },
    });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) writes.push(cache.writeBehind(`o:${i % 5}`, i, { queue: 'orders' }));
    await Promise.all(writes);
    expect(await cache.get('o:4')).toBe(49);
    await queue.flush();
    expect(Object.fromEntries(origin)).toEqual({ 'o:0': 45, 'o:1': 46, 'o:2': 47, 'o:3': 48, 'o:4': 49 });
    expect((await queue.stats()).depth).toBe(0);
    expect(batches.flat().length).toBeLessThan(50);
  });

  it('retries a failing writer with backoff and lands everything once it recovers', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    let failing = true;
    const origin = new Map<string, unknown>();
    const queue = cache.writeBehindQueue('events', {
      backoff: 1,
      maxAttempts: 100,
      write: (batch) => {
        if (failing) throw new Error('db down');
        for (const item of batch) origin.set(item.key, item.value);
      },
    });
    for (let i = 0; i < 10; i++) await cache.writeBehind(`e:${i}`, i, { queue: 'events' });
    await queue.flush('50ms');
    expect(origin.size).toBe(0);
    expect((await queue.stats()).retrying).toBeGreaterThan(0);
    failing = false;
    await queue.flush();
    expect(origin.size).toBe(10);
    expect((await queue.stats()).deadLetters).toBe(0);
  });

  it('moves a poison record to the dead letters after maxAttempts and replays it on request', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    const origin = new Map<string, unknown>();
    let poisonAccepted = false;
    const queue = cache.writeBehindQueue<string>('events', {
      backoff: 0,
      maxAttempts: 3,
      write: (batch) => {
        if (!poisonAccepted && batch.some((item) => item.value === 'poison')) throw new Error('bad row');
        for (const item of batch) origin.set(item.key, item.value);
      },
    });
    await cache.writeBehind('a', 'fine', { queue: 'events' });
    await cache.writeBehind('b', 'poison', { queue: 'events' });
    await cache.writeBehind('c', 'also fine', { queue: 'events' });
    await queue.flush();
    expect([...origin.keys()].sort()).toEqual(['a', 'c']);
    const dead = await queue.deadLetters();
    expect(dead.map((d) => [d.key, d.value, d.reason])).toEqual([['b', 'poison', 'bad row']]);
    poisonAccepted = true;
    expect(await queue.replay()).toBe(1);
    await queue.flush();
    expect(origin.get('b')).toBe('poison');
    expect((await queue.stats()).deadLetters).toBe(0);
  });

  it('lets another instance take over records the first read and never wrote, after claimIdle', async () => {
    const { clock, tier } = shared();
    const a = cacheOn(tier, clock);
    const b = cacheOn(tier, clock);
    const written: string[] = [];
    a.writeBehindQueue('jobs', { write: () => new Promise<void>(() => undefined), claimIdle: '10s' });
    const queueB = b.writeBehindQueue('jobs', {
      claimIdle: '10s',
      write: (batch) => void written.push(...batch.map((item) => item.key)),
    });
    await a.writeBehind('j1', 1, { queue: 'jobs' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    await queueB.flush('30ms');
    expect(written).toEqual([]);
    clock.advance(11_000);
    await queueB.flush();
    expect(written).toEqual(['j1']);
    open = open.filter((cache) => cache !== a);
  });

  it('keeps the queue in memory without Redis and drains it on close', async () => {
    const clock = fakeClock();
    const cache = createCache({ clock });
    const origin: unknown[] = [];
    const queue = cache.writeBehindQueue('log', { flushInterval: '1h', write: (batch) => void origin.push(...batch) });
    await cache.writeBehind('x', 1, { queue: 'log' });
    expect((await queue.stats()).durable).toBe(false);
    await cache.close();
    expect(origin).toHaveLength(1);
  });

  it('rejects writeBehind to a queue that was never registered', async () => {
    const { clock, tier } = shared();
    const cache = cacheOn(tier, clock);
    await expect(cache.writeBehind('k', 1, { queue: 'nope' })).rejects.toThrow(
      'Expected `queue` to name a queue registered with writeBehindQueue(), got `"nope"` (string)',
    );
  });
});
