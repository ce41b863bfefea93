/**
 * Failover of the server under the cache, measured from the SIGKILL: Sentinel here (reads, the cross-instance lock and
 * invalidations between instances must work again within down-after + 3 s), the Cluster in failover-cluster.test.ts.
 * Every probe loop is bounded in count and time and stops by itself; the processes are the file's own, on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, createCacheFromEnv } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { sendCommand, stopAllRedis } from './helpers/redis-server.js';
import { startSentinelSet } from './helpers/redis-sentinel.js';
import type { SentinelSet } from './helpers/redis-sentinel.js';
import { sleep, trackUnhandledRejections, uniquePrefix, waitFor } from './helpers/support.js';

const REDIS_MS = 100;
/** How often a probe that failed is tried again. */
const PROBE_EVERY_MS = 50;

/** Whether `check` passes within `ms`, polled every 10 ms. */
async function within(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(10);
  }
  return false;
}

/** Runs `probe` until it reports success or `limitMs` after `from` has passed; resolves with the ms since `from`. */
async function recoveredAfter(from: number, limitMs: number, probe: (attempt: number) => Promise<boolean>) {
  for (let attempt = 0; Date.now() - from < limitMs; attempt++) {
    if (await probe(attempt).catch(() => false)) return Date.now() - from;
    await sleep(PROBE_EVERY_MS);
  }
  return Number.POSITIVE_INFINITY;
}

describe('a Sentinel failover (SIGKILL of the master)', () => {
  let set: SentinelSet;
  const caches: Cache[] = [];
  let unhandled: ReturnType<typeof trackUnhandledRejections>;

  beforeAll(async () => {
    unhandled = trackUnhandledRejections();
    set = await startSentinelSet();
  }, 30_000);

  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
    unhandled.dispose();
    await stopAllRedis();
  });

  function open(prefix: string, options: CacheOptions = {}): Cache {
    const cache = createCache({
      prefix,
      redis: { sentinels: [...set.endpoints], name: set.name },
      timeouts: { redisMs: REDIS_MS },
      lock: { ttlMs: 2000, waitMs: 1500 },
      ...options,
    });
    caches.push(cache);
    return cache;
  }

  /** Whether `writer`'s change of a key reaches `reader`'s memory copy within 500 ms (a fresh key per attempt). */
  async function invalidationArrives(writer: Cache, reader: Cache, key: string): Promise<boolean> {
    await writer.set(key, 'old');
    // The reader holds a copy in memory. The writer's own message about 'old' may arrive after the reader's first
    // read and drop that copy, so read until a read comes from memory.
    if (!(await within(500, async () => (await reader.getWithMeta(key))?.source === 'memory'))) return false;
    await writer.set(key, 'new');
    // The writer's write, reaching Redis, must drop that copy: a broken path leaves 'old' in memory for good.
    return within(500, async () => (await reader.getWithMeta(key))?.value === 'new');
  }

  it('reads, the lock and invalidations across instances work again within down-after + 3 s', async () => {
    const prefix = uniquePrefix('failover-sentinel');
    const a = open(prefix, { writeErrors: 'throw' });
    // B from the environment, as a service would configure it.
    const b = createCacheFromEnv(
      {
        TIERCACHE_REDIS_SENTINELS: set.endpoints.map(({ host, port }) => `${host}:${port}`).join(','),
        TIERCACHE_REDIS_SENTINEL_MASTER: set.name,
        TIERCACHE_PREFIX: prefix,
        TIERCACHE_REDIS_TIMEOUT: `${REDIS_MS}ms`,
        TIERCACHE_LOCK_TTL: '2s',
        TIERCACHE_LOCK_WAIT: '1500ms',
      },
      {},
    );
    caches.push(b);
    // A pair whose invalidations go over the bus's own channel rather than Redis tracking.
    const busPrefix = uniquePrefix('failover-sentinel-bus');
    const c = open(busPrefix, { writeErrors: 'throw', bus: { tracking: false } });
    const d = open(busPrefix, { bus: { tracking: false } });
    await waitFor('the caches to connect through the sentinels', () =>
      [a, b, c, d].every((cache) => cache.stats().redis.state === 'ready'),
    );
    const events: string[] = [];
    a.on('redis:down', ({ at }) => events.push(`down@${at}`));
    a.on('redis:up', ({ at }) => events.push(`up@${at}`));

    // Stored before the kill and replicated (WAIT), never read by B: B's first read of it must come from Redis.
    await a.set('before', 'stored-before');
    expect(Number(await sendCommand(set.master.port, ['WAIT', '1', '2000']))).toBe(1);

    // Both paths work before the kill (so a probe that never succeeds afterwards means a failover broke it); the
    // subscribers may still be subscribing.
    const ready = Date.now();
    expect(await recoveredAfter(ready, 3000, (i) => invalidationArrives(a, b, `tracked:before:${i}`))).toBeLessThan(
      3000,
    );
    expect(await recoveredAfter(ready, 3000, (i) => invalidationArrives(c, d, `bus:before:${i}`))).toBeLessThan(3000);

    const { killedAt, promoted } = await set.killMaster();
    const limitMs = set.downAfterMs + 3000;

    const reads = recoveredAfter(killedAt, limitMs + 2000, async () => {
      const read = await b.getWithMeta<string>('before');
      return read?.source === 'redis' && read.value === 'stored-before';
    });

    let lockLoads = 0;
    const locks = recoveredAfter(killedAt, limitMs + 2000, async (attempt) => {
      const key = `stampede:${attempt}`;
      let calls = 0;
      const loader = async () => {
        calls++;
        lockLoads++;
        await sleep(150);
        return `loaded-${attempt}`;
      };
      // 4 callers in each instance: one load per instance at most (single-flight), one in all only through the lock.
      const values = await Promise.all([a, b, a, b, a, b, a, b].map((cache) => cache.getOrSet(key, loader)));
      return calls === 1 && values.every((value) => value === `loaded-${attempt}`);
    });

    const tracked = recoveredAfter(killedAt, limitMs + 2000, (attempt) =>
      invalidationArrives(a, b, `tracked:${attempt}`),
    );
    const bus = recoveredAfter(killedAt, limitMs + 2000, (attempt) => invalidationArrives(c, d, `bus:${attempt}`));

    const [readMs, lockMs, trackedMs, busMs, promotedAt] = await Promise.all([reads, locks, tracked, bus, promoted]);
    const promotedMs = promotedAt - killedAt;
    const downAt = events.find((e) => e.startsWith('down@'));
    const upAt = events.find((e) => e.startsWith('up@'));
    console.log(
      `sentinel failover: promoted after ${promotedMs} ms; reads back after ${readMs} ms, lock after ${lockMs} ms, ` +
        `invalidations after ${trackedMs} ms (tracking) and ${busMs} ms (bus channel) (bound ${limitMs} ms); redis:down after ${downAt === undefined ? '-' : Number(downAt.slice(5)) - killedAt} ms, ` +
        `redis:up after ${upAt === undefined ? '-' : Number(upAt.slice(3)) - killedAt} ms; loader calls in lock probes ${lockLoads}`,
    );
    // Not vacuous: nothing worked through Redis before the sentinels could even call the master down.
    for (const ms of [readMs, lockMs, trackedMs, busMs]) expect(ms).toBeGreaterThanOrEqual(set.downAfterMs);
    expect(readMs).toBeLessThanOrEqual(limitMs);
    expect(lockMs).toBeLessThanOrEqual(limitMs);
    expect(trackedMs).toBeLessThanOrEqual(limitMs);
    expect(busMs).toBeLessThanOrEqual(limitMs);
    // The cache saw the outage and the recovery, in that order.
    expect(downAt).toBeDefined();
    expect(upAt).toBeDefined();
    expect(events.indexOf(downAt ?? '')).toBeLessThan(events.indexOf(upAt ?? ''));
    expect(a.stats().redis.state).toBe('ready');
    expect(b.stats().redis.state).toBe('ready');
    expect(unhandled.reasons).toEqual([]);
  }, 40_000);
});
