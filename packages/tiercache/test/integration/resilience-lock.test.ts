/**
 * The distributed lock and the late-writer guard against a real Redis, with several cache instances in this process
 * (each its own connections, memory and single-flight, as separate processes would have).
 *
 * A holder loses its lock the way it does in production: its process stalls (a CPU-bound loader, a long GC pause)
 * past the lock TTL, so the extension timer cannot run and Redis expires the lock. The stall here blocks this thread
 * with Atomics.wait, so no timer of any instance runs during it.
 */
import { describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { lockKeyFor } from '../../src/resilience/lock.js';
import { sleep, uniquePrefix, waitFor } from './helpers/support.js';
import { useRedis } from './helpers/fixture.js';
import { deferred } from '../deferred.js';

const fixture = useRedis();

/** `count` connected instances on one prefix, with the same options. */
async function instances(count: number, prefix: string, options: CacheOptions = {}): Promise<Cache[]> {
  const made = Array.from({ length: count }, () =>
    createCache({ prefix, redis: fixture.redis.url, timeouts: { redisMs: 1000 }, ...options }),
  );
  fixture.caches.push(...made);
  await waitFor('the caches to connect', () => made.every((cache) => cache.stats().redis.state === 'ready'));
  return made;
}

function three(made: Cache[]): [Cache, Cache, Cache] {
  const [a, b, c] = made;
  if (a === undefined || b === undefined || c === undefined) throw new Error('expected three caches');
  return [a, b, c];
}

/** Blocks this thread: no timer, no socket read, nothing runs (a CPU-bound loader or a GC pause). */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A loader that reports its start and then returns (or throws) what the test decides, when it decides. */
function gatedLoader<T>(): {
  loader: () => Promise<T>;
  started: Promise<void>;
  finish: (value: T) => void;
  fail: (error: Error) => void;
  calls: () => number;
} {
  const started = deferred<void>();
  const result = deferred<T>();
  let calls = 0;
  return {
    loader: () => {
      calls++;
      started.resolve();
      return result.promise;
    },
    started: started.promise,
    finish: result.resolve,
    fail: result.reject,
    calls: () => calls,
  };
}

const LOST_TTL_MS = 300;
const STALL_MS = 700;

describe('a holder that lost its lock', () => {
  /**
   * A takes the lock, stalls past its TTL, and by the time it resumes B holds the lock for its own load. A must not
   * write its result, and must not delete B's lock however it ends; C, arriving meanwhile, waits for B.
   */
  async function lostLock(prefix: string) {
    const [a, b, c] = three(await instances(3, prefix, { bus: false, lock: { ttlMs: LOST_TTL_MS, waitMs: 5000 } }));
    const lockKey = lockKeyFor(prefix, `${prefix}k`);
    const loadA = gatedLoader<string>();
    const callA = a.getOrSetWithMeta('k', async () => {
      const pending = loadA.loader();
      stall(STALL_MS);
      return pending;
    });
    await loadA.started;
    // A is past its TTL and never got to extend: Redis dropped its lock.
    await waitFor('the lock to expire', async () => (await fixture.raw.exists(lockKey)) === 0, { timeoutMs: 2000 });

    const loadB = gatedLoader<string>();
    const callB = b.getOrSetWithMeta('k', loadB.loader);
    await loadB.started;
    const tokenB = await fixture.raw.get(lockKey);
    expect(tokenB, 'B took the lock A lost').not.toBeNull();
    return { a, b, c, lockKey, tokenB, loadA, callA, loadB, callB };
  }

  it('does not write its late result and leaves the new owner’s lock alone; a third instance waits for the owner', async () => {
    const prefix = uniquePrefix('lost-lock-write');
    const { a, b, c, lockKey, tokenB, loadA, callA, loadB, callB } = await lostLock(prefix);

    loadA.finish('from A (old)');
    // A's caller gets what it asked for; the tiers do not.
    expect(await callA).toMatchObject({ value: 'from A (old)', source: 'origin' });
    expect(await fixture.raw.get(lockKey)).toBe(tokenB);
    expect(await fixture.raw.pttl(lockKey)).toBeGreaterThan(0);
    expect(await fixture.raw.exists(`${prefix}k`)).toBe(0);
    expect(await a.getWithMeta('k')).toBeUndefined();

    let loadedByC = 0;
    const callC = c.getOrSetWithMeta('k', () => {
      loadedByC++;
      return 'from C';
    });
    await waitFor('C to wait on B’s lock', () => c.stats().lock.waits === 1);
    loadB.finish('from B (new)');
    expect(await callB).toMatchObject({ value: 'from B (new)', source: 'origin' });
    expect(await callC).toMatchObject({ value: 'from B (new)', source: 'redis' });
    expect(loadedByC).toBe(0);
    expect(await fixture.raw.exists(lockKey)).toBe(0);
    for (const cache of [a, b, c]) expect(await cache.get('k')).toBe('from B (new)');
  });

  it('releases nothing of the new owner’s when its loader fails after losing the lock', async () => {
    const prefix = uniquePrefix('lost-lock-fail');
    const { lockKey, tokenB, loadA, callA, loadB, callB } = await lostLock(prefix);

    loadA.fail(new Error('origin failed'));
    await expect(callA).rejects.toThrow('origin failed');
    // The failure path releases by compare-and-delete: B's lock stays.
    expect(await fixture.raw.get(lockKey)).toBe(tokenB);
    loadB.finish('from B');
    expect(await callB).toMatchObject({ value: 'from B', source: 'origin' });
    expect(await fixture.raw.exists(lockKey)).toBe(0);
  });
});

describe('a load that a newer write or a delete overtook', () => {
  // With the bus off, only the Lua guard in Redis stands between the old load and the newer state. With it on (the
  // default), the holder also hears of the change and drops its load itself. Either way the result must be the same.
  const configs: [string, CacheOptions][] = [
    ['by the Lua guard alone (bus off)', { bus: false }],
    ['with the bus on (the default)', {}],
  ];

  for (const [label, options] of configs) {
    it(`does not overwrite a newer set, in Redis or in either instance, ${label}`, async () => {
      const prefix = uniquePrefix('newer-set');
      const [a, b, c] = three(await instances(3, prefix, options));
      const load = gatedLoader<string>();
      const call = a.getOrSetWithMeta('k', load.loader);
      await load.started;
      // Set strictly after the load started (the guard compares ms timestamps).
      await sleep(5);
      await b.set('k', 'newer, from set');
      load.finish('older, from the load');

      expect(await call).toMatchObject({ value: 'older, from the load', source: 'origin' });
      expect(await fixture.raw.exists(lockKeyFor(prefix, `${prefix}k`))).toBe(0);
      expect(await c.getWithMeta('k')).toMatchObject({ value: 'newer, from set', source: 'redis' });
      expect(await a.get('k')).toBe('newer, from set');
      expect(await b.getWithMeta('k')).toMatchObject({ value: 'newer, from set', source: 'memory' });
    });

    it(`does not write after a delete of the key, ${label}`, async () => {
      const prefix = uniquePrefix('deleted');
      const [a, b, c] = three(await instances(3, prefix, options));
      await b.set('k', 'before');
      const load = gatedLoader<string>();
      const call = a.getOrSetWithMeta('fresh', load.loader);
      await load.started;
      expect(await fixture.raw.exists(lockKeyFor(prefix, `${prefix}fresh`))).toBe(1);
      expect(await b.delete('fresh')).toBe(false);
      load.finish('loaded before the delete');

      expect(await call).toMatchObject({ value: 'loaded before the delete', source: 'origin' });
      expect(await fixture.raw.exists(`${prefix}fresh`)).toBe(0);
      for (const cache of [a, b, c]) expect(await cache.get('fresh')).toBeUndefined();
      // The untouched key is still there: the guard is per key.
      expect(await c.get('k')).toBe('before');
    });
  }
});

describe('a lock TTL shorter than a live loader', () => {
  it('is extended while the loader runs, so a second instance waits instead of loading again', async () => {
    const prefix = uniquePrefix('extended');
    // A third of the TTL between extensions leaves room for a loaded machine's late timers.
    const [a, b] = three(await instances(3, prefix, { lock: { ttlMs: 500, waitMs: 5000 } }));
    const lockKey = lockKeyFor(prefix, `${prefix}k`);
    let loads = 0;
    const slow = async () => {
      loads++;
      await sleep(1600);
      return 'slow value';
    };
    const first = a.getOrSetWithMeta('k', slow);
    await waitFor('the lock', async () => (await fixture.raw.exists(lockKey)) === 1);
    // More than two TTLs later the lock is still there, extended by its live holder.
    await sleep(1100);
    expect(await fixture.raw.exists(lockKey)).toBe(1);
    const second = b.getOrSetWithMeta('k', slow);
    expect(await first).toMatchObject({ value: 'slow value', source: 'origin' });
    expect(await second).toMatchObject({ value: 'slow value', source: 'redis' });
    expect(loads).toBe(1);
    expect(b.stats().lock).toMatchObject({ acquired: 0, waits: 1, waitTimeouts: 0 });
  });
});

describe('waiting for another instance’s load', () => {
  it('is woken by the holder’s publish as soon as the value lands, not by the next poll', async () => {
    const prefix = uniquePrefix('woken');
    // The default lock TTL (10 s) makes the fallback poll 250 ms: a wake-up by polling would show.
    const [a, b] = three(await instances(3, prefix));
    await waitFor('both subscribers', async () => {
      const reply = (await fixture.raw.pubsub('NUMSUB', `${prefix}__loaded`)) as [string, number];
      return Number(reply[1]) >= 3;
    });
    const load = gatedLoader<string>();
    const holder = a.getOrSetWithMeta('k', load.loader);
    await load.started;
    let wokenAt = 0;
    const waiter = b
      .getOrSetWithMeta('k', () => 'b must not load')
      .then((result) => {
        wokenAt = performance.now();
        return result;
      });
    await waitFor('b to wait', () => b.stats().lock.waits === 1);
    // Off the poll's beat: the next poll is at least 100 ms away.
    await sleep(120);
    const landedAt = performance.now();
    load.finish('from a');
    expect(await holder).toMatchObject({ value: 'from a', source: 'origin' });
    expect(await waiter).toMatchObject({ value: 'from a', source: 'redis' });
    const latency = wokenAt - landedAt;
    console.info(`[figures] lock waiter in another instance woken ${latency.toFixed(1)} ms after the value landed`);
    expect(latency).toBeLessThan(100);
  });

  it('gives up after lock.waitMs and loads itself, leaving the other holder’s lock alone', async () => {
    const prefix = uniquePrefix('wait-out');
    const [a] = three(await instances(3, prefix, { lock: { ttlMs: 10_000, waitMs: 300 } }));
    const lockKey = lockKeyFor(prefix, `${prefix}k`);
    // A holder somewhere that never finishes (and has not died: its lock stays).
    await fixture.raw.set(lockKey, 'another process', 'PX', 10_000);
    const started = performance.now();
    expect(await a.getOrSetWithMeta('k', () => 'loaded anyway')).toMatchObject({
      value: 'loaded anyway',
      source: 'origin',
    });
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(300);
    // waitMs, then at most one poll (250 ms at this TTL) and the load, with room for the machine.
    expect(waited).toBeLessThan(300 + 250 + 300);
    expect(a.stats().lock).toMatchObject({ acquired: 0, waits: 1, waitTimeouts: 1 });
    expect(await fixture.raw.get(lockKey)).toBe('another process');
    // Written without the lock: availability wins over dedupe.
    expect(await a.get('k')).toBe('loaded anyway');
    expect(await fixture.raw.exists(`${prefix}k`)).toBe(1);
  });
});
