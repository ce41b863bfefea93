/**
 * How fast another instance stops serving an old value: two caches on one real redis-server, instance A changes a key
 * (set, delete, invalidateTags, clear) and instance B's memory copy must go. Measured over 1000 changes with tracking
 * on (Redis sends B every write under the prefix) and off (A publishes key messages on the bus), and for writes made
 * behind the caches' back (a raw client, redis-cli). The delay is counted from the moment A's call starts, so it
 * includes A's own round trips. The target is ≤ 5 ms on loopback: the median is held to it. The 1 % tail on this
 * shared 2-core machine is the scheduler's (p99 94 ms was seen while a 4-process stampede test ran alongside), so the
 * p99 bound is loose; a missing or timer-driven invalidation still fails it, and the give-up bound. Figures printed.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Cache, CacheOptions } from 'tiercache';
import { uniquePrefix, waitFor } from './helpers/support.js';
import { useRedis } from './helpers/fixture.js';

const CHANGES = 1000;
/** The target, held by the median. */
const P50_BOUND_MS = 5;
/** The tail, asserted loosely: the machine is shared by two cores' worth of other test suites. */
const P99_BOUND_MS = 150;
/** A copy still there after this long counts as never dropped. */
const GIVE_UP_MS = 2000;

type Kind = 'set' | 'delete' | 'tags' | 'clear';
const KINDS: readonly Kind[] = ['set', 'delete', 'tags', 'clear'];

const fixture = useRedis({ cacheDefaults: { timeouts: { redisMs: 1000 } }, checkUnhandled: false });
const { open } = fixture;

/** Two instances on one prefix, each listening on the bus (and tracking, when on) before the test starts. */
async function pair(label: string, tracking: boolean): Promise<{ a: Cache; b: Cache }> {
  const prefix = uniquePrefix(label);
  const options: CacheOptions = { bus: { tracking } };
  const a = await open(prefix, options);
  const b = await open(prefix, options);
  await waitFor('tracking to be on in both instances (or off, as asked)', () =>
    [a, b].every((cache) => cache.stats().bus?.tracking === tracking),
  );
  return { a, b };
}

function memoryEntries(cache: Cache): number {
  return cache.stats().memory?.entries ?? 0;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function summary(delays: readonly number[]): { p50: number; p99: number; max: number } {
  const sorted = [...delays].sort((x, y) => x - y);
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted.at(-1) ?? 0) };
}

/**
 * Waits, turn by turn of the event loop (so bus and tracking messages are read as soon as they arrive), until B's
 * memory holds fewer entries than `before`; returns the time since `start` in ms.
 */
async function dropDelay(b: Cache, before: number, start: number): Promise<number> {
  while (memoryEntries(b) >= before) {
    if (performance.now() - start > GIVE_UP_MS) return GIVE_UP_MS;
    await nextTurn();
  }
  return performance.now() - start;
}

/**
 * One change by A of a key B holds in memory (B wrote it itself, so no invalidation of the setup is still on its
 * way); resolves with the delay until B's copy is gone, after checking what B reads afterwards.
 */
async function change(a: Cache, b: Cache, kind: Kind, i: number, tracking: boolean): Promise<number> {
  const key = `k${i}`;
  // Tag invalidations and clears always publish a message; sets and deletes only when Redis is not tracking.
  const messages = (b.stats().bus?.received ?? 0) + (kind === 'tags' || kind === 'clear' || !tracking ? 1 : 0);
  const tag = `t${i}`;
  await b.set(key, `old ${i}`, { tags: [tag] });
  expect(await b.getWithMeta(key)).toMatchObject({ value: `old ${i}`, source: 'memory' });
  const before = memoryEntries(b);
  const start = performance.now();
  const done =
    kind === 'set'
      ? a.set(key, `new ${i}`)
      : kind === 'delete'
        ? a.delete(key)
        : kind === 'tags'
          ? a.invalidateTags([tag])
          : a.clear();
  const delay = await dropDelay(b, before, start);
  await done;
  // Nothing about this change may still be on its way when the next one starts.
  await waitFor('B to receive the bus message', () => b.stats().bus?.received === messages, { intervalMs: 1 });
  expect(await b.get(key), `what B reads after the ${kind} of ${key}`).toBe(kind === 'set' ? `new ${i}` : undefined);
  return delay;
}

async function measureChanges(tracking: boolean): Promise<Record<Kind | 'all', ReturnType<typeof summary>>> {
  const { a, b } = await pair(tracking ? 'lat-tracking' : 'lat-bus', tracking);
  const byKind = new Map<Kind, number[]>(KINDS.map((kind) => [kind, []]));
  for (let i = 0; i < CHANGES; i++) {
    const kind = KINDS[i % KINDS.length] as Kind;
    byKind.get(kind)?.push(await change(a, b, kind, i, tracking));
  }
  const all = [...byKind.values()].flat();
  expect(all).toHaveLength(CHANGES);
  const result = {
    all: summary(all),
    ...(Object.fromEntries(KINDS.map((kind) => [kind, summary(byKind.get(kind) ?? [])])) as Record<
      Kind,
      ReturnType<typeof summary>
    >),
  };
  console.log(`coherence delay over ${CHANGES} changes, tracking ${tracking ? 'on' : 'off'} (ms):`, result);
  return result;
}

describe('another instance stops serving the old value', () => {
  it('within a median of a few ms (and a bounded p99) over 1000 sets, deletes, tag invalidations and clears, with tracking on', async () => {
    const result = await measureChanges(true);
    expect(result.all.max).toBeLessThan(GIVE_UP_MS);
    expect(result.all.p50).toBeLessThan(P50_BOUND_MS);
    expect(result.all.p99).toBeLessThan(P99_BOUND_MS);
  });

  it('within a median of a few ms (and a bounded p99) over 1000 sets, deletes, tag invalidations and clears, with bus messages only', async () => {
    const result = await measureChanges(false);
    expect(result.all.max).toBeLessThan(GIVE_UP_MS);
    expect(result.all.p50).toBeLessThan(P50_BOUND_MS);
    expect(result.all.p99).toBeLessThan(P99_BOUND_MS);
  });
});

describe('writes made behind the cache’s back (tracking)', () => {
  it('a raw client’s SET or DEL of a key under the prefix drops B’s copy within the same bound', async () => {
    const { a, b } = await pair('foreign-raw', true);
    const delays: number[] = [];
    for (let i = 0; i < 200; i++) {
      const key = `f${i}`;
      await a.set(key, `cached ${i}`);
      // B reads it from Redis (a copy that came from Redis, not written by B) until it keeps it in memory.
      await waitFor('B to hold the value in memory', async () => (await b.getWithMeta(key))?.source === 'memory');
      expect(await b.get(key)).toBe(`cached ${i}`);
      const before = memoryEntries(b);
      const start = performance.now();
      const write =
        i % 2 === 0 ? fixture.raw.set(`${b.prefix}${key}`, 'not an entry') : fixture.raw.del(`${b.prefix}${key}`);
      delays.push(await dropDelay(b, before, start));
      await write;
      expect(await b.get(key)).toBeUndefined();
    }
    const result = summary(delays);
    console.log('coherence delay of 200 raw-client SET/DEL (ms):', result);
    expect(result.max).toBeLessThan(GIVE_UP_MS);
    expect(result.p50).toBeLessThan(P50_BOUND_MS);
    expect(result.p99).toBeLessThan(P99_BOUND_MS);
  });

  it('redis-cli SET and DEL drop B’s copy, and a key outside the prefix sharing its text does not', async () => {
    const { a, b } = await pair('foreign-cli', true);
    for (const [i, command] of (['SET', 'DEL', 'SET', 'DEL'] as const).entries()) {
      const key = `c${i}`;
      await a.set(key, 'cached');
      await a.set(`${key}-kept`, 'cached');
      for (const k of [key, `${key}-kept`]) {
        await waitFor('B to hold the value in memory', async () => (await b.getWithMeta(k))?.source === 'memory');
      }
      const before = memoryEntries(b);
      // A key that only shares the prefix's text (no trailing ':') is not under it: B keeps its copies.
      await fixture.redis.cli('SET', `${b.prefix.slice(0, -1)}${key}`, 'elsewhere');
      await fixture.redis.cli(
        ...(command === 'SET' ? ['SET', `${b.prefix}${key}`, 'from redis-cli'] : ['DEL', `${b.prefix}${key}`]),
      );
      // Counted from redis-cli's exit (its process start alone can take longer than the bound on a busy machine).
      const delay = await dropDelay(b, before, performance.now());
      expect(delay, `${command} ${key}`).toBeLessThan(P99_BOUND_MS);
      expect(memoryEntries(b)).toBe(before - 1);
      expect(await b.getWithMeta(`${key}-kept`)).toMatchObject({ value: 'cached', source: 'memory' });
      // A value that is not a tiercache entry reads as a miss (counted as a decode error), never as the old value.
      expect(await b.get(key)).toBeUndefined();
    }
  });
});
