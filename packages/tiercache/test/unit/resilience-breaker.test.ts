/**
 * The circuit breaker as the cache drives it: failures of real cache calls (through ChaosRemoteTier) open it, Redis is
 * then left alone, one probe finds it back. The fake clock makes every count and duration exact; the tier is
 * in-memory, so nothing here does I/O.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CacheTimeoutError,
  ConnectionError,
  RedisReplyError,
  SerializationError,
  createCache,
} from '../../src/index.js';
import type { BreakerTransition, Cache } from '../../src/index.js';
import type { AlertNotification } from '../../src/observability/alerts.js';
import { ChaosRemoteTier, FakeClock, InMemoryRemoteTier } from '../../src/testing/index.js';

const THRESHOLD = 5;
const WINDOW_MS = 10_000;
const OPEN_MS = 30_000;

let open: Cache[] = [];

afterEach(async () => {
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

function setup() {
  const clock = new FakeClock();
  const chaos = new ChaosRemoteTier(new InMemoryRemoteTier({ clock }));
  const alerts: AlertNotification[] = [];
  const cache = createCache({
    redis: chaos,
    clock,
    // Off, so that every read goes down to the tier and each call is exactly one Redis command (the turn batcher
    // too: a batch is one call for the breaker, tested on its own below).
    memory: false,
    batching: false,
    breaker: { threshold: THRESHOLD, windowMs: WINDOW_MS, openMs: OPEN_MS, minDistinctKeys: 2 },
    // Every alert let through, so the breaker's transitions can be read from them in order.
    alerts: { notify: (alert) => void alerts.push(alert), cooldown: 0 },
  });
  open.push(cache);
  const breakerAlerts = () => alerts.filter((a) => a.kind.startsWith('breaker-')).map((a) => a.kind);
  return { cache, clock, chaos, alerts, breakerAlerts };
}

function snapshot(cache: Cache) {
  const breaker = cache.stats().breaker;
  if (breaker === null) throw new Error('expected a breaker');
  return breaker;
}

/** Opens the breaker with THRESHOLD failed reads on distinct keys; returns when it opened. */
async function openBreaker(cache: Cache, chaos: ChaosRemoteTier, clock: FakeClock): Promise<number> {
  chaos.alwaysThrow();
  for (let i = 0; i < THRESHOLD; i++) expect(await cache.get(`opening-${i}`)).toBeUndefined();
  expect(snapshot(cache).state).toBe('open');
  return clock.now();
}

describe('the breaker opens', () => {
  it('after exactly threshold connection failures on distinct keys, and then no call reaches Redis', async () => {
    const { cache, chaos, breakerAlerts } = setup();
    chaos.alwaysThrow();
    for (let i = 0; i < THRESHOLD - 1; i++) {
      // A Redis failure is never the caller's error: a read is a miss.
      expect(await cache.get(`k${i}`)).toBeUndefined();
    }
    expect(snapshot(cache)).toMatchObject({ state: 'closed', failuresInWindow: THRESHOLD - 1 });
    expect(breakerAlerts()).toEqual([]);

    await cache.get(`k${THRESHOLD - 1}`);
    expect(snapshot(cache)).toMatchObject({ state: 'open', transitions: { open: 1, halfOpen: 0, close: 0 } });
    expect(breakerAlerts()).toEqual(['breaker-open']);

    chaos.resetCounts();
    for (let i = 0; i < 20; i++) await cache.get(`later${i}`);
    expect(await cache.getOrSet('loaded', () => 'from the origin')).toBe('from the origin');
    expect(chaos.counts.calls).toBe(0);
    // 20 reads, and the getOrSet's read and its write.
    expect(snapshot(cache).skipped).toBe(22);
  });

  it('counts timeouts as failures like connection errors', async () => {
    const { cache, chaos } = setup();
    chaos.alwaysThrow(() => new CacheTimeoutError('Redis did not answer in time'));
    for (let i = 0; i < THRESHOLD; i++) await cache.get(`k${i}`);
    expect(snapshot(cache).state).toBe('open');
    expect(cache.stats().redis.timeouts).toBe(THRESHOLD);
  });

  it('never opens when every failure is on one key (minDistinctKeys: 2), and opens on a second key', async () => {
    const { cache, chaos } = setup();
    chaos.alwaysThrow();
    for (let i = 0; i < 100; i++) await cache.get('one-broken-key');
    expect(snapshot(cache)).toMatchObject({ state: 'closed', failuresInWindow: THRESHOLD, distinctKeysInWindow: 1 });
    expect(chaos.counts.calls).toBe(100);

    await cache.get('another-key');
    expect(snapshot(cache).state).toBe('open');
  });

  it('does not count replies about the command itself or values that cannot be decoded', async () => {
    const { cache, chaos } = setup();
    const wrongType = new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    wrongType.name = 'ReplyError';
    chaos.alwaysThrow(
      () => new RedisReplyError(`Redis refused the command: ${wrongType.message}`, { cause: wrongType }),
    );
    for (let i = 0; i < 50; i++) await cache.get(`k${i}`);
    chaos.alwaysThrow(() => new SerializationError('not ours to decode'));
    for (let i = 0; i < 50; i++) await cache.get(`k${i}`);
    expect(snapshot(cache)).toMatchObject({ state: 'closed', failuresInWindow: 0 });
    expect(cache.stats().redis.errors).toBe(50);
  });

  it('does not open on threshold failures spread over more than the window', async () => {
    const { cache, chaos, clock } = setup();
    chaos.alwaysThrow();
    for (let i = 0; i < THRESHOLD * 3; i++) {
      await cache.get(`k${i}`);
      // THRESHOLD failures span (THRESHOLD - 1) × step = exactly the window: the oldest has just left it.
      clock.advance(WINDOW_MS / (THRESHOLD - 1));
    }
    expect(snapshot(cache).state).toBe('closed');
  });
});

describe('while open', () => {
  it('stays open for exactly openMs (well within ±10 %), then lets one probe through', async () => {
    const { cache, chaos, clock } = setup();
    const openedAt = await openBreaker(cache, chaos, clock);
    expect(snapshot(cache)).toMatchObject({ openedAt, nextProbeAt: openedAt + OPEN_MS });

    chaos.resetCounts();
    clock.advance(OPEN_MS - 1);
    await cache.get('too-early');
    expect(chaos.counts.calls).toBe(0);
    expect(snapshot(cache).state).toBe('open');

    clock.advance(1);
    await cache.get('probe');
    // The probe reached Redis (and failed: the chaos is still on).
    expect(chaos.counts.byOperation.get).toBe(1);
    const openFor = clock.now() - openedAt;
    expect(openFor).toBe(OPEN_MS);
    expect(openFor).toBeGreaterThanOrEqual(OPEN_MS * 0.9);
    expect(openFor).toBeLessThanOrEqual(OPEN_MS * 1.1);
  });

  it('reopens for another full openMs when the probe fails', async () => {
    const { cache, chaos, clock, breakerAlerts } = setup();
    await openBreaker(cache, chaos, clock);
    clock.advance(OPEN_MS);
    chaos.resetCounts();
    await cache.get('failed-probe');
    expect(chaos.counts.calls).toBe(1);
    const reopenedAt = clock.now();
    expect(snapshot(cache)).toMatchObject({
      state: 'open',
      openedAt: reopenedAt,
      nextProbeAt: reopenedAt + OPEN_MS,
      transitions: { open: 2, halfOpen: 1, close: 0 },
    });
    expect(breakerAlerts()).toEqual(['breaker-open', 'breaker-half-open', 'breaker-open']);

    clock.advance(OPEN_MS - 1);
    await cache.get('still-open');
    expect(chaos.counts.calls).toBe(1);
    clock.advance(1);
    await cache.get('second-probe');
    expect(chaos.counts.calls).toBe(2);
  });

  it('lets exactly one probe through among 100 concurrent callers, and closes when it succeeds', async () => {
    const { cache, chaos, clock, breakerAlerts } = setup();
    await openBreaker(cache, chaos, clock);
    clock.advance(OPEN_MS);
    // Redis is back but slow, so the probe is still out while the other 99 calls arrive.
    chaos.heal().delay(20);
    chaos.resetCounts();
    let loads = 0;
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        cache.getOrSetWithMeta(`concurrent-${i}`, () => {
          loads++;
          return `value-${i}`;
        }),
      ),
    );
    expect(results.map((r) => r.value)).toEqual(Array.from({ length: 100 }, (_, i) => `value-${i}`));
    expect(loads).toBe(100);
    expect(chaos.counts.byOperation.get).toBe(1);
    const stats = snapshot(cache);
    expect(stats).toMatchObject({ state: 'closed', transitions: { open: 1, halfOpen: 1, close: 1 } });
    // 99 reads and their 99 background writes turned away while the probe was out.
    expect(stats.skipped).toBe(198);
    expect(breakerAlerts()).toEqual(['breaker-open', 'breaker-half-open', 'breaker-close']);

    // Closed: calls reach Redis again, and the window starts empty.
    chaos.resetCounts();
    await cache.get('after-close');
    expect(chaos.counts.byOperation.get).toBe(1);
    expect(snapshot(cache).failuresInWindow).toBe(0);
  });

  it('announces each transition as a cache event, in stats() and as an alert, with what opened it', async () => {
    const { cache, chaos, clock, alerts } = setup();
    const events: string[] = [];
    const transitions: BreakerTransition[] = [];
    const disposers = (['breaker:open', 'breaker:half-open', 'breaker:close'] as const).map((name) =>
      cache.on(name, (transition) => {
        events.push(name);
        transitions.push(transition);
      }),
    );
    expect(snapshot(cache)).toMatchObject({ state: 'closed', transitions: { open: 0, halfOpen: 0, close: 0 } });
    const openedAt = await openBreaker(cache, chaos, clock);
    expect(transitions[0]).toMatchObject({
      state: 'open',
      previous: 'closed',
      reason: 'threshold',
      at: openedAt,
      nextProbeAt: openedAt + OPEN_MS,
      failures: THRESHOLD,
      distinctKeys: THRESHOLD,
    });
    const opened = alerts.find((a) => a.kind === 'breaker-open');
    expect(opened?.message).toContain('threshold');
    expect(opened?.time).toBe(openedAt);

    clock.advance(OPEN_MS);
    chaos.heal();
    await cache.get('probe');
    expect(events).toEqual(['breaker:open', 'breaker:half-open', 'breaker:close']);
    expect(transitions.map((t) => [t.reason, t.at])).toEqual([
      ['threshold', openedAt],
      ['open-elapsed', openedAt + OPEN_MS],
      ['probe-succeeded', openedAt + OPEN_MS],
    ]);
    expect(snapshot(cache)).toMatchObject({ state: 'closed', transitions: { open: 1, halfOpen: 1, close: 1 } });
    const redisErrors = alerts.filter((a) => a.kind === 'redis-error');
    expect(redisErrors.map((a) => a.key)).toEqual(Array.from({ length: THRESHOLD }, (_, i) => `opening-${i}`));
    expect(redisErrors.every((a) => a.error instanceof ConnectionError)).toBe(true);

    // A disposed listener hears nothing more; the breaker still counts.
    for (const dispose of disposers) dispose();
    await openBreaker(cache, chaos, clock);
    expect(events).toHaveLength(3);
    expect(snapshot(cache).transitions.open).toBe(2);
  });
});
