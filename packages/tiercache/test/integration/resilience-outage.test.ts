/**
 * Redis stops answering (a TCP proxy that blackholes the connection, or CLIENT PAUSE) while getOrSet traffic runs:
 * every call is bounded by one Redis timeout until the breaker opens, Redis then costs (almost) nothing, and the cache
 * finds Redis again by itself. Figures are printed as `[figures]` lines; the bounds asserted carry a margin for a
 * shared 2-core machine, named where they are used.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LoaderTimeoutError, createCache } from 'tiercache';
import type { AlertNotification, Cache, CacheOptions } from 'tiercache';
import { lockKeyFor } from '../../src/resilience/lock.js';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';
import {
  closeRawClients,
  rawClient,
  sleep,
  timed,
  trackUnhandledRejections,
  uniquePrefix,
  waitFor,
} from './helpers/support.js';

const REDIS_MS = 100;
const LOADER_MS = 10;
/** What the issue allows a call before the breaker opens: one Redis timeout, the loader, 5 ms. */
const ALLOWED_MS = REDIS_MS + LOADER_MS + 5;
/**
 * Scheduling noise on the shared machine (load average around 10 on 2 cores while other suites run): a timer due at
 * 100 ms fires late by tens of ms. The measured p99 is printed; the assertion allows this much on top.
 */
const NOISE_MS = 60;
const OPEN_MS = 1500;
/** Calls measured with the breaker open, and as many on a memory-only cache. */
const MEASURED_CALLS = 3000;

let redis: RedisProcess;
let proxy: TcpProxy | undefined;
let unhandled: ReturnType<typeof trackUnhandledRejections>;
const caches: Cache[] = [];

beforeAll(async () => {
  unhandled = trackUnhandledRejections();
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  await proxy?.close();
  proxy = undefined;
  await sleep(20);
  expect(unhandled.reasons).toEqual([]);
});

afterAll(async () => {
  unhandled.dispose();
  await closeRawClients();
  await stopAllRedis();
});

/** A proxy in front of the test server, closed after the test. */
async function useProxy(): Promise<TcpProxy> {
  proxy = await startTcpProxy(redis.port);
  return proxy;
}

function p(values: readonly number[], quantile: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.max(0, Math.ceil(quantile * sorted.length) - 1)] ?? Number.NaN;
}

const fmt = (ms: number) => ms.toFixed(ms < 10 ? 3 : 1);

async function connected(url: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = createCache({
    prefix: uniquePrefix('outage'),
    redis: url,
    memory: false,
    timeouts: { redisMs: REDIS_MS },
    ...options,
  });
  caches.push(cache);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  return cache;
}

function breakerState(cache: Cache): string {
  return cache.stats().breaker?.state ?? 'none';
}

const slowLoader = async ({ key }: { key: string }) => {
  await sleep(LOADER_MS);
  return `loaded:${key}`;
};

/**
 * Rounds of `width` concurrent getOrSet calls on fresh keys until the breaker opens; every call must return its
 * loader's value. Returns every call's duration.
 */
async function untilOpen(cache: Cache, label: string, width = 10): Promise<number[]> {
  const durations: number[] = [];
  for (let round = 0; round < 30 && breakerState(cache) !== 'open'; round++) {
    const results = await Promise.all(
      Array.from({ length: width }, (_, i) => timed(() => cache.getOrSet(`${label}-${round}-${i}`, slowLoader))),
    );
    results.forEach(({ value, ms }, i) => {
      expect(value).toBe(`loaded:${label}-${round}-${i}`);
      durations.push(ms);
    });
  }
  expect(breakerState(cache)).toBe('open');
  return durations;
}

/**
 * Sequential getOrSet calls with an immediate loader, alternating between the caches call by call, so that whatever
 * else the machine does lands on both alike. Returns each cache's call durations.
 */
async function alternating(subjects: readonly Cache[], calls: number): Promise<number[][]> {
  const out = subjects.map(() => [] as number[]);
  const loader = () => 'v';
  for (let i = 0; i < calls; i++) {
    for (const [s, cache] of subjects.entries()) {
      const start = performance.now();
      await cache.getOrSet(`k${i}`, loader);
      out[s]?.push(performance.now() - start);
    }
  }
  return out;
}

/** A getOrSet call every 2 ms, each awaited at the end, until `done()`; fails after `timeoutMs`. */
async function trafficUntil(cache: Cache, done: () => boolean, timeoutMs: number): Promise<void> {
  const calls: Promise<unknown>[] = [];
  try {
    await waitFor(
      'the breaker to move',
      () => {
        calls.push(cache.getOrSet(`traffic-${calls.length}`, () => 'traffic'));
        return done();
      },
      { timeoutMs, intervalMs: 2 },
    );
  } finally {
    await Promise.all(calls);
  }
}

describe('Redis blackholed behind a TCP proxy', () => {
  it('bounds every call by one Redis timeout until the breaker opens, then Redis adds under 1 ms, and the breaker closes by itself', async () => {
    const proxy = await useProxy();
    const alerts: AlertNotification[] = [];
    const cache = await connected(proxy.url, {
      breaker: { threshold: 20, windowMs: 10_000, openMs: OPEN_MS, minDistinctKeys: 2 },
      alerts: { notify: (alert) => void alerts.push(alert), cooldown: 0 },
    });
    const baseline = createCache({ memory: false });
    caches.push(baseline);
    // Warm both paths up (JIT, first connection use) before measuring anything.
    await alternating([cache, baseline], 500);

    proxy.blackhole();
    const beforeOpen = await untilOpen(cache, 'blackholed');
    const openedAt = alerts.find((a) => a.kind === 'breaker-open')?.time ?? Number.NaN;

    // Open: Redis is not called at all. What it still costs is the breaker's "no" on the read and the write. (Calls
    // sent before it opened time out first, so that their handling is not counted against the open breaker.)
    await sleep(REDIS_MS * 2);
    const [withBreaker = [], memoryOnly = []] = await alternating([cache, baseline], MEASURED_CALLS);
    expect(breakerState(cache), 'the breaker stayed open while measuring').toBe('open');

    // Traffic every few ms (the breaker has no timers: it moves when used) until the probe went through and failed,
    // which reopens it: still blackholed.
    await trafficUntil(cache, () => (cache.stats().breaker?.transitions.open ?? 0) >= 2, OPEN_MS * 3);
    const probedAt = alerts.find((a) => a.kind === 'breaker-half-open')?.time ?? Number.NaN;

    // Redis comes back: the next probe succeeds and the breaker closes, with nobody's help.
    proxy.pass();
    const back = performance.now();
    await waitFor(
      'the breaker to close',
      async () => {
        await cache.getOrSet(`after-${performance.now()}`, () => 'after');
        return breakerState(cache) === 'closed';
      },
      { timeoutMs: OPEN_MS + 10_000, intervalMs: 20 },
    );
    const closedAfter = performance.now() - back;
    await cache.getOrSet('written-after', () => 'from the origin, cached again');
    const other = createCache({ prefix: cache.prefix, redis: redis.url, memory: false });
    caches.push(other);
    await waitFor('the other instance to connect', () => other.stats().redis.state === 'ready');
    expect(await other.getWithMeta('written-after')).toMatchObject({
      value: 'from the origin, cached again',
      source: 'redis',
    });

    const p99Before = p(beforeOpen, 0.99);
    const p99Open = p(withBreaker, 0.99);
    const p99Baseline = p(memoryOnly, 0.99);
    console.info(
      `[figures] blackholed, Redis timeout ${REDIS_MS} ms, loader ${LOADER_MS} ms: ${beforeOpen.length} calls before ` +
        `the breaker opened, p50 ${fmt(p(beforeOpen, 0.5))} ms, p99 ${fmt(p99Before)} ms, max ${fmt(Math.max(...beforeOpen))} ms ` +
        `(allowed ${ALLOWED_MS} ms)\n` +
        `[figures] breaker open, immediate loader, ${MEASURED_CALLS} calls each: p50 ${fmt(p(withBreaker, 0.5))} ms vs memory-only ` +
        `${fmt(p(memoryOnly, 0.5))} ms; p99 ${fmt(p99Open)} ms vs ${fmt(p99Baseline)} ms (Redis tier adds ` +
        `${fmt(p99Open - p99Baseline)} ms at p99)\n` +
        `[figures] open → half-open probe after ${Math.round(probedAt - openedAt)} ms (openMs ${OPEN_MS}); ` +
        `Redis back → breaker closed after ${Math.round(closedAfter)} ms`,
    );
    expect(p99Before).toBeLessThanOrEqual(ALLOWED_MS + NOISE_MS);
    expect(p99Open - p99Baseline).toBeLessThanOrEqual(1);
    expect(probedAt - openedAt).toBeGreaterThanOrEqual(OPEN_MS * 0.9);
    expect(probedAt - openedAt).toBeLessThanOrEqual(OPEN_MS * 1.1);
    expect(cache.stats().breaker?.transitions).toEqual({ open: 2, halfOpen: 2, close: 1 });
    expect(alerts.filter((a) => a.kind.startsWith('breaker-')).map((a) => a.kind)).toEqual([
      'breaker-open',
      'breaker-half-open',
      'breaker-open',
      'breaker-half-open',
      'breaker-close',
    ]);
  });

  it('still runs one loader per key in this process when 1000 callers arrive while Redis hangs', async () => {
    const proxy = await useProxy();
    const cache = await connected(proxy.url, { breaker: false });
    proxy.blackhole();
    let loads = 0;
    const { value, ms } = await timed(() =>
      Promise.all(
        Array.from({ length: 1000 }, () =>
          cache.getOrSet('hot', async () => {
            loads++;
            await sleep(LOADER_MS);
            return 'loaded once';
          }),
        ),
      ),
    );
    expect(loads).toBe(1);
    expect(new Set(value)).toEqual(new Set(['loaded once']));
    expect(ms).toBeLessThanOrEqual(ALLOWED_MS + NOISE_MS);
  });
});

describe('Redis paused (CLIENT PAUSE ALL)', () => {
  it('bounds every call by one Redis timeout until the breaker opens, and the breaker closes once the pause ends', async () => {
    // The threshold counts failed round trips: a turn's ten reads are one batch, and so are their ten writes.
    const cache = await connected(redis.url, {
      breaker: { threshold: 4, windowMs: 10_000, openMs: 500, minDistinctKeys: 2 },
    });
    const pauseMs = 1500;
    await redis.pause(pauseMs);
    const pausedUntil = Date.now() + pauseMs;
    const beforeOpen = await untilOpen(cache, 'paused');
    expect(Date.now(), 'the breaker opened while Redis was still paused').toBeLessThan(pausedUntil);
    await sleep(Math.max(0, pausedUntil - Date.now()) + 50);
    const back = performance.now();
    await waitFor(
      'the breaker to close',
      async () => {
        await cache.getOrSet(`after-${performance.now()}`, () => 'after');
        return breakerState(cache) === 'closed';
      },
      { timeoutMs: 10_000, intervalMs: 20 },
    );
    console.info(
      `[figures] paused, Redis timeout ${REDIS_MS} ms, loader ${LOADER_MS} ms: ${beforeOpen.length} calls before the ` +
        `breaker opened, p99 ${fmt(p(beforeOpen, 0.99))} ms, max ${fmt(Math.max(...beforeOpen))} ms; breaker closed ` +
        `${Math.round(performance.now() - back)} ms after the pause ended (openMs 500)`,
    );
    expect(p(beforeOpen, 0.99)).toBeLessThanOrEqual(ALLOWED_MS + NOISE_MS);
  });
});

/** Handle types a cache may open: sockets and timers. */
const WATCHED = new Set(['TCPSocketWrap', 'TCPWrap', 'Timeout', 'Immediate', 'SimpleShutdownWrap']);

function openHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    if (WATCHED.has(type)) counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

function extraHandles(baseline: Map<string, number>): string[] {
  return [...openHandles()]
    .filter(([type, n]) => n > (baseline.get(type) ?? 0))
    .map(([type, n]) => `${type}: +${n - (baseline.get(type) ?? 0)}`);
}

describe('close() during an outage', () => {
  it('resolves within 2 s with a lock waiter, a background loader and a hung call, and leaves no handle open', async () => {
    const proxy = await useProxy();
    const raw = await rawClient(redis.port);
    await sleep(50);
    const baseline = openHandles();
    const cache = createCache({
      prefix: uniquePrefix('close-outage'),
      redis: proxy.url,
      timeouts: { redisMs: REDIS_MS },
      lock: { ttlMs: 10_000, waitMs: 10_000 },
    });
    await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');

    // Another process holds the lock of `held`: this call waits for it.
    await raw.set(lockKeyFor(cache.prefix, `${cache.prefix}held`), 'someone else', 'PX', 10_000);
    const waiting = cache.getOrSet('held', () => 'loaded by the waiter');
    await waitFor('the call to wait on the lock', () => cache.stats().lock.waits === 1);
    // A loader past its hard timeout keeps running in the background.
    const timedOut = cache.getOrSet(
      'slow',
      async () => {
        await sleep(300);
        return 'late';
      },
      { hardTimeout: 50 },
    );
    await expect(timedOut).rejects.toBeInstanceOf(LoaderTimeoutError);

    proxy.blackhole();
    const hung = cache.getOrSet('during', () => 'loaded during the outage');
    const { ms } = await timed(() => cache.close());
    const outcomes = await Promise.allSettled([waiting, hung]);
    console.info(`[figures] close() during a blackhole with a waiter and a background loader: ${Math.round(ms)} ms`);
    expect(ms).toBeLessThan(2000);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);

    await proxy.close();
    await closeRawClients();
    await waitFor('every handle the cache opened to close', () => extraHandles(baseline).length === 0, {
      timeoutMs: 1000,
    }).catch(() => undefined);
    expect(extraHandles(baseline), 'handles still open 1 s after close()').toEqual([]);
  });
});
