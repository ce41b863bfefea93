/**
 * Fail-safe, loader timeouts and refresh-ahead against a real Redis. Logical time (TTL, grace, graceBackoff, the
 * refresh point) comes from a FakeClock shared by the instances, so expiry is exact while Redis keeps the entries
 * (its PX is `ttl + grace` of real time, far longer than these tests). Loader durations and the soft and hard timeouts
 * are real timers.
 */
import { describe, expect, it } from 'vitest';
import { LoaderTimeoutError, createCache } from 'tiercache';
import type { Cache, CacheOptions, LoaderContext } from 'tiercache';
import { FakeClock } from 'tiercache/testing';
import { lockKeyFor } from '../../src/resilience/lock.js';
import { sleep, timed, uniquePrefix, waitFor } from './helpers/support.js';
import { useRedis } from './helpers/fixture.js';

/** Timer lateness allowed on the shared 2-core machine. */
const TIMER_SLACK_MS = 150;
const TTL = 1000;
const GRACE = '1h';

const fixture = useRedis();

/** Two connected instances on one prefix and one fake clock. */
async function pair(options: CacheOptions = {}): Promise<{ a: Cache; b: Cache; clock: FakeClock; prefix: string }> {
  const clock = new FakeClock();
  const prefix = uniquePrefix('failsafe');
  const [a, b] = [0, 1].map(() =>
    createCache({ prefix, redis: fixture.redis.url, clock, timeouts: { redisMs: 1000 }, ...options }),
  );
  if (a === undefined || b === undefined) throw new Error('two caches expected');
  fixture.caches.push(a, b);
  await waitFor('the caches to connect', () => [a, b].every((c) => c.stats().redis.state === 'ready'));
  return { a, b, clock, prefix };
}

/** Caches `value` under `key` through `cache`, then moves the clock past its TTL (well within grace). */
async function expiredWithinGrace(cache: Cache, clock: FakeClock, key: string, value: string): Promise<void> {
  expect(await cache.getOrSetWithMeta(key, () => value, { ttl: TTL, grace: GRACE })).toMatchObject({
    source: 'origin',
  });
  clock.advance(TTL + 500);
}

describe('fail-safe', () => {
  it('serves the stale copy when the loader throws, and calls the loader at most once per graceBackoff', async () => {
    const { a, b, clock } = await pair();
    await expiredWithinGrace(a, clock, 'k', 'v1');
    let attempts = 0;
    const failing = () => {
      attempts++;
      throw new Error('the origin is down');
    };
    const options = { ttl: TTL, grace: GRACE, graceBackoff: 5000 };

    expect(await a.getOrSetWithMeta('k', failing, options)).toMatchObject({ value: 'v1', source: 'stale' });
    expect(attempts).toBe(1);
    // Within the backoff, however many callers and however they arrive: stale, and no loader call.
    const burst = await Promise.all(Array.from({ length: 50 }, () => a.getOrSetWithMeta('k', failing, options)));
    expect(burst.every((r) => r.value === 'v1' && r.source === 'stale')).toBe(true);
    clock.advance(4999);
    for (let i = 0; i < 20; i++) expect(await a.getOrSet('k', failing, options)).toBe('v1');
    expect(attempts).toBe(1);

    // The backoff is over: one more try (one, for 50 concurrent callers), which fails again.
    clock.advance(1);
    const retry = await Promise.all(Array.from({ length: 50 }, () => a.getOrSetWithMeta('k', failing, options)));
    expect(retry.every((r) => r.value === 'v1' && r.source === 'stale')).toBe(true);
    expect(attempts).toBe(2);
    // Counted per answer, and callers that joined one in flight (single-flight) share it: 1 + 1 + 20 + 1.
    expect(a.stats()).toMatchObject({ hits: { stale: 23 }, loader: { errors: 2 } });

    // Another instance finds the stale copy in Redis (it has none in memory) and backs off on its own.
    expect(await b.getOrSetWithMeta('k', failing, options)).toMatchObject({ value: 'v1', source: 'stale' });
    expect(await b.getOrSetWithMeta('k', failing, options)).toMatchObject({ value: 'v1', source: 'stale' });
    expect(attempts).toBe(3);

    // The origin is back: the first call after the backoff loads and caches the new value.
    clock.advance(5000);
    expect(await a.getOrSetWithMeta('k', () => 'v2', options)).toMatchObject({ value: 'v2', source: 'origin' });
    expect(await b.get('k')).toBe('v2');
  });

  it('gives the loader error to the caller when nothing stale is left', async () => {
    const { a, clock } = await pair();
    const error = new Error('the origin is down');
    const failing = () => Promise.reject(error);
    await expect(a.getOrSet('cold', failing, { ttl: TTL, grace: GRACE })).rejects.toBe(error);
    await expect(a.getOrSet('no-grace', () => 'v', { ttl: TTL, grace: 0 })).resolves.toBe('v');
    clock.advance(TTL);
    await expect(a.getOrSet('no-grace', failing, { ttl: TTL, grace: 0 })).rejects.toBe(error);
    await expiredWithinGrace(a, clock, 'graced', 'v');
    clock.advance('1h');
    await expect(a.getOrSet('graced', failing, { ttl: TTL, grace: GRACE })).rejects.toBe(error);
    expect(a.stats().hits.stale).toBe(0);
  });
});

describe('softTimeout', () => {
  it('answers the stale copy after softTimeout, and the late result then updates both tiers', async () => {
    const { a, b, clock, prefix } = await pair();
    await expiredWithinGrace(a, clock, 'k', 'v1');
    let calls = 0;
    const slow = async () => {
      calls++;
      await sleep(400);
      return 'v2';
    };
    const options = { ttl: TTL, grace: GRACE, softTimeout: 50 };
    const { value, ms } = await timed(() => a.getOrSetWithMeta('k', slow, options));
    expect(value).toMatchObject({ value: 'v1', source: 'stale' });
    expect(ms).toBeGreaterThanOrEqual(49);
    expect(ms).toBeLessThanOrEqual(50 + TIMER_SLACK_MS);
    // The loader is still running: a caller meanwhile joins it instead of calling the origin again.
    expect(await a.getOrSet('k', slow, options)).toBe('v1');
    expect(calls).toBe(1);

    await waitFor('the late result', async () => (await a.getWithMeta('k'))?.value === 'v2', { timeoutMs: 5000 });
    expect(await a.getWithMeta('k')).toMatchObject({ value: 'v2', source: 'memory' });
    expect(await b.getWithMeta('k')).toMatchObject({ value: 'v2', source: 'redis' });
    expect(await fixture.raw.get(`${prefix}k`)).toContain('v2');
    expect(await fixture.raw.exists(lockKeyFor(prefix, `${prefix}k`))).toBe(0);
    expect(calls).toBe(1);
  });

  it('lets a background loader that fails after the answer go without an unhandled rejection', async () => {
    const { a, clock } = await pair();
    await expiredWithinGrace(a, clock, 'k', 'v1');
    const failsLate = async () => {
      await sleep(150);
      throw new Error('failed after the caller was answered');
    };
    expect(await a.getOrSetWithMeta('k', failsLate, { ttl: TTL, grace: GRACE, softTimeout: 20 })).toMatchObject({
      value: 'v1',
      source: 'stale',
    });
    await waitFor('the loader to fail', () => a.stats().loader.errors === 1);
    await sleep(50);
    expect(fixture.unhandled).toEqual([]);
    expect(a.stats().inflight).toBe(0);
  });
});

describe('hardTimeout', () => {
  it('rejects with LoaderTimeoutError when nothing is stale, releases the lock at once, and caches the late result', async () => {
    const { a, b, prefix } = await pair();
    const lockKey = lockKeyFor(prefix, `${prefix}cold`);
    let aborted: boolean | undefined;
    const slow = async ({ signal }: LoaderContext) => {
      await sleep(400);
      aborted = signal.aborted;
      return 'late';
    };
    const call = timed(() => a.getOrSet('cold', slow, { hardTimeout: 100 }));
    await waitFor('the lock', async () => (await fixture.raw.exists(lockKey)) === 1, { intervalMs: 5 });
    const outcome = await call.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(LoaderTimeoutError);
    // The lock is gone while the loader still runs, so other processes can try.
    await waitFor('the lock to be released', async () => (await fixture.raw.exists(lockKey)) === 0, {
      timeoutMs: 1000,
    });
    expect(await fixture.raw.exists(`${prefix}cold`)).toBe(0);

    await waitFor('the late result in Redis', async () => (await fixture.raw.exists(`${prefix}cold`)) === 1, {
      timeoutMs: 5000,
    });
    expect(aborted).toBe(true);
    expect(await a.getWithMeta('cold')).toMatchObject({ value: 'late', source: 'memory' });
    expect(await b.getWithMeta('cold')).toMatchObject({ value: 'late', source: 'redis' });
    expect(a.stats().loader).toMatchObject({ calls: 1, errors: 0 });
  });

  it('does not let a late result overwrite a newer set made after the hard timeout gave up the lock', async () => {
    // The bus off: only the creation-time guard in Redis protects the newer value.
    const { a, b, clock, prefix } = await pair({ bus: false });
    const slow = () => sleep(300).then(() => 'late and older');
    await expect(a.getOrSet('k', slow, { hardTimeout: 50 })).rejects.toBeInstanceOf(LoaderTimeoutError);
    // Newer by the (fake) clock the entries are stamped with: the guard compares ms timestamps.
    clock.advance(1);
    await b.set('k', 'newer');
    await waitFor('the loader to finish', () => a.stats().inflight === 0, { timeoutMs: 5000 });
    expect(await fixture.raw.get(`${prefix}k`)).toContain('newer');
    expect(await a.get('k')).toBe('newer');
  });

  it('answers in about hardTimeout', async () => {
    const { a } = await pair();
    const slow = () => sleep(1000).then(() => 'late');
    const started = performance.now();
    await expect(a.getOrSet('cold', slow, { hardTimeout: 100 })).rejects.toBeInstanceOf(LoaderTimeoutError);
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThanOrEqual(99);
    expect(ms).toBeLessThanOrEqual(100 + TIMER_SLACK_MS);
  });

  it('answers the stale copy instead of the error when there is one', async () => {
    const { a, clock } = await pair();
    await expiredWithinGrace(a, clock, 'k', 'v1');
    const slow = () => sleep(300).then(() => 'v2');
    const { value, ms } = await timed(() => a.getOrSetWithMeta('k', slow, { ttl: TTL, grace: GRACE, hardTimeout: 60 }));
    expect(value).toMatchObject({ value: 'v1', source: 'stale' });
    expect(ms).toBeLessThanOrEqual(60 + TIMER_SLACK_MS);
    await waitFor('the late result', async () => (await a.getWithMeta('k'))?.value === 'v2', { timeoutMs: 5000 });
  });
});

describe('refreshAhead', () => {
  it('a hit past the refresh point starts exactly one background refresh across two instances', async () => {
    const { a, b, clock } = await pair();
    let loads = 0;
    const loader = async () => {
      loads++;
      await sleep(200);
      return `v${loads}`;
    };
    const options = { ttl: 10_000, refreshAhead: 0.5 };
    expect(await a.getOrSetWithMeta('hot', loader, options)).toMatchObject({ value: 'v1', source: 'origin' });
    expect(await b.getOrSetWithMeta('hot', loader, options)).toMatchObject({ value: 'v1', source: 'redis' });

    // Before the refresh point: plain hits.
    clock.advance(4999);
    await Promise.all([a.getOrSet('hot', loader, options), b.getOrSet('hot', loader, options)]);
    await sleep(50);
    expect(loads).toBe(1);

    // Past it: both instances serve their copy at once, and hot traffic on both during the refresh changes nothing.
    clock.advance(1001);
    const during: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      for (const cache of [a, b]) during.push(cache.getOrSetWithMeta('hot', loader, options));
      await sleep(5);
    }
    const answers = (await Promise.all(during)) as { value: string; source: string }[];
    expect(answers.slice(0, 2)).toEqual([
      expect.objectContaining({ value: 'v1', source: 'memory' }),
      expect.objectContaining({ value: 'v1', source: 'memory' }),
    ]);
    await waitFor('the refreshed value in both instances', async () => {
      const [fromA, fromB] = await Promise.all([
        a.getOrSet('hot', loader, options),
        b.getOrSet('hot', loader, options),
      ]);
      return fromA === 'v2' && fromB === 'v2';
    });
    expect(loads).toBe(2);
    const refreshes = a.stats().loader.calls + b.stats().loader.calls;
    expect(refreshes).toBe(2);
  });
});
