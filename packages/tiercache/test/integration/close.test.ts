import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheClosedError, createCache } from 'tiercache';
import type { Cache } from 'tiercache';
import { deadUrl, startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import {
  closeRawClients,
  rawClient,
  sleep,
  timed,
  trackUnhandledRejections,
  uniquePrefix,
  waitFor,
} from './helpers/support.js';

/** Handle types a cache may open: sockets and timers (the child process of the test server is not one of them). */
const WATCHED = new Set(['TCPSocketWrap', 'TCPWrap', 'Timeout', 'Immediate', 'SimpleShutdownWrap']);

function openHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    if (WATCHED.has(type)) counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return counts;
}

/** Handles open now beyond those of `baseline`, as `type: extra` pairs. */
function extraHandles(baseline: Map<string, number>): string[] {
  return [...openHandles()]
    .filter(([type, n]) => n > (baseline.get(type) ?? 0))
    .map(([type, n]) => `${type}: +${n - (baseline.get(type) ?? 0)}`);
}

/**
 * How long after close() a socket may take to finish closing. Far below ioredis' own 2 s `disconnectTimeout`, which
 * would otherwise hold the process open after close().
 */
const HANDLES_GONE_MS = 1000;

/** Waits up to HANDLES_GONE_MS for every handle beyond `baseline` to close; fails naming those left open. */
async function expectHandlesClosed(baseline: Map<string, number>): Promise<void> {
  const deadline = Date.now() + HANDLES_GONE_MS;
  while (extraHandles(baseline).length > 0 && Date.now() < deadline) await sleep(20);
  expect(extraHandles(baseline), `handles still open ${HANDLES_GONE_MS} ms after close()`).toEqual([]);
}

/** The handles of the test's own probes (a socket for PING or CLIENT PAUSE) close asynchronously; let them. */
async function settledBaseline(): Promise<Map<string, number>> {
  await sleep(50);
  return openHandles();
}

let redis: RedisProcess;
let unhandled: ReturnType<typeof trackUnhandledRejections>;
let pausedUntil = 0;

beforeAll(async () => {
  redis = await startRedis();
  unhandled = trackUnhandledRejections();
});

afterEach(async () => {
  const left = pausedUntil - Date.now();
  if (left > 0) await sleep(left + 50);
  pausedUntil = 0;
  if (!redis.running) await redis.restart();
  expect(unhandled.reasons).toEqual([]);
});

afterAll(async () => {
  unhandled.dispose();
  await closeRawClients();
  await stopAllRedis();
});

async function connectedCache(prefix: string): Promise<Cache> {
  const cache = createCache({ prefix, redis: redis.url, timeouts: { redisMs: 100 } });
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  await cache.set('warm', 1);
  return cache;
}

/** Closes with calls in flight; resolves with how long close() took, after checking every call settled. */
async function closeWithCallsInFlight(cache: Cache): Promise<number> {
  const calls = [
    cache.get('in-flight-get'),
    cache.getOrSet('in-flight-load', async () => {
      await sleep(20);
      return 'loaded';
    }),
    cache.set('in-flight-set', 1),
  ];
  const { ms } = await timed(() => cache.close());
  const outcomes = await Promise.allSettled(calls);
  expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
  expect((outcomes[1] as PromiseFulfilledResult<unknown>).value).toBe('loaded');
  return ms;
}

describe('close()', () => {
  it('resolves quickly and leaves no sockets or timers behind on a healthy server', async () => {
    const baseline = await settledBaseline();
    const cache = await connectedCache(uniquePrefix('close-ok'));
    expect(extraHandles(baseline)).not.toEqual([]);

    expect(await closeWithCallsInFlight(cache)).toBeLessThan(2000);
    await expectHandlesClosed(baseline);
  });

  it('resolves within 2 s and leaves nothing behind while Redis is paused', async () => {
    const baseline = await settledBaseline();
    const cache = await connectedCache(uniquePrefix('close-paused'));
    await redis.pause(3000);
    pausedUntil = Date.now() + 3000;

    expect(await closeWithCallsInFlight(cache)).toBeLessThan(2000);
    // Well before the pause ends: nothing waits for the stalled server.
    await expectHandlesClosed(baseline);
    expect(Date.now()).toBeLessThan(pausedUntil);
  });

  it('resolves within 2 s and leaves nothing behind when Redis was SIGKILLed', async () => {
    const baseline = await settledBaseline();
    const cache = await connectedCache(uniquePrefix('close-killed'));
    await redis.kill('SIGKILL');

    expect(await closeWithCallsInFlight(cache)).toBeLessThan(2000);
    await expectHandlesClosed(baseline);
    // No reconnect timer survived: nothing comes back after a while either.
    await sleep(300);
    expect(extraHandles(baseline)).toEqual([]);
  });

  it('resolves within 2 s and leaves nothing behind when Redis was never started', async () => {
    const url = await deadUrl();
    const baseline = await settledBaseline();
    const cache = createCache({ prefix: uniquePrefix('close-absent'), redis: url, timeouts: { redisMs: 100 } });
    // Let the client fail and schedule a reconnect, the timer close() must cancel.
    await waitFor('a connection failure', () => cache.stats().redis.connectionErrors > 0);

    expect(await closeWithCallsInFlight(cache)).toBeLessThan(2000);
    await expectHandlesClosed(baseline);
    await sleep(300);
    expect(extraHandles(baseline)).toEqual([]);
  });

  it('is idempotent and makes every later call reject with CacheClosedError', async () => {
    const cache = await connectedCache(uniquePrefix('close-twice'));
    await Promise.all([cache.close(), cache.close()]);
    await cache.close();
    await expect(cache.get('k')).rejects.toBeInstanceOf(CacheClosedError);
    await expect(cache.set('k', 1)).rejects.toBeInstanceOf(CacheClosedError);
    await expect(cache.getOrSet('k', () => 1)).rejects.toBeInstanceOf(CacheClosedError);
    await expect(cache.clear()).rejects.toBeInstanceOf(CacheClosedError);
  });

  it('leaves an ioredis client passed in open and usable', async () => {
    const client = await rawClient(redis.port);
    const cache = createCache({ prefix: uniquePrefix('close-borrowed'), redis: client });
    await cache.set('k', 'v');
    await cache.close();
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
  });
});
