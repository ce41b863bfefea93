/**
 * An invalidation that arrives while a read or a load of the key is in flight: the caller gets what was read or
 * loaded (it was true when it was read), but it is kept neither in memory nor in Redis, wherever the invalidation came
 * from (this instance, another instance, another client). The placeholder technique of Redis' client-side caching docs.
 */
import { describe, expect, it } from 'vitest';
import type { Cache } from 'tiercache';
import { sleep, uniquePrefix, waitFor } from './helpers/support.js';
import { useRedis } from './helpers/fixture.js';

const fixture = useRedis({ cacheDefaults: { timeouts: { redisMs: 3000 } } });
const { open } = fixture;

async function pair(label: string, tracking: boolean): Promise<{ a: Cache; b: Cache }> {
  const prefix = uniquePrefix(label);
  const a = await open(prefix, { bus: { tracking } });
  const b = await open(prefix, { bus: { tracking } });
  await waitFor('both instances to be listening', () => [a, b].every((c) => c.stats().bus?.tracking === tracking));
  return { a, b };
}

/** A loader that waits for `release()`, and says when it has started. */
function gatedLoader<T>(value: T): { loader: () => Promise<T>; started: Promise<void>; release: () => void } {
  let release!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const startedPromise = new Promise<void>((resolve) => (started = resolve));
  return {
    loader: async () => {
      started();
      await gate;
      return value;
    },
    started: startedPromise,
    release,
  };
}

/** Messages and tracking invalidations an instance has received from the others. */
function heard(cache: Cache): number {
  const bus = cache.stats().bus;
  return (bus?.received ?? 0) + (bus?.trackingInvalidations ?? 0);
}

/** What Redis holds for a key of `cache`, as a tiercache entry's value (undefined when absent). */
async function inRedis(cache: Cache, key: string): Promise<unknown> {
  const stored = await fixture.raw.get(`${cache.prefix}${key}`);
  // A version 2 entry is [v, k, c, e, g, t, d] (docs/wire-format.md).
  return stored === null ? undefined : (JSON.parse(stored) as unknown[])[6];
}

for (const tracking of [true, false]) {
  describe(`an invalidation during a load (tracking ${tracking ? 'on' : 'off'})`, () => {
    const cases: { name: string; remote: boolean; invalidate: (a: Cache, b: Cache) => Promise<unknown> }[] = [
      { name: 'a delete by the loading instance', remote: false, invalidate: (a) => a.delete('k') },
      { name: 'a tag invalidation by the loading instance', remote: false, invalidate: (a) => a.invalidateTags(['t']) },
      { name: 'a delete by another instance', remote: true, invalidate: (_a, b) => b.delete('k') },
      { name: 'a tag invalidation by another instance', remote: true, invalidate: (_a, b) => b.invalidateTags(['t']) },
      { name: 'a clear by another instance', remote: true, invalidate: (_a, b) => b.clear() },
    ];
    for (const { name, remote, invalidate } of cases) {
      it(`${name}: the caller gets the loaded value, which is kept neither in memory nor in Redis`, async () => {
        const { a, b } = await pair('during-load', tracking);
        const gated = gatedLoader('loaded before the invalidation');
        const load = a.getOrSet('k', gated.loader, { tags: ['t'] });
        await gated.started;
        const before = heard(a);
        await invalidate(a, b);
        // The loader finishes only once A has heard of B's change (a bus message or a tracking invalidation).
        if (remote) await waitFor('A to hear of the change', () => heard(a) > before, { timeoutMs: 5000 });
        gated.release();
        expect(await load).toBe('loaded before the invalidation');
        expect(await inRedis(a, 'k')).toBeUndefined();
        expect(await a.getWithMeta('k')).toBeUndefined();
        expect(await b.get('k')).toBeUndefined();
        // Not a broken cache: the next load is kept.
        expect(await a.getOrSet('k', () => 'loaded after', { tags: ['t'] })).toBe('loaded after');
        expect(await a.getWithMeta('k')).toMatchObject({ value: 'loaded after', source: 'memory' });
        expect(await inRedis(a, 'k')).toBe('loaded after');
      });
    }
  });
}

describe('an invalidation during a read from Redis', () => {
  const cases: { name: string; read: (a: Cache) => Promise<unknown> }[] = [
    { name: 'get', read: (a) => a.get('k') },
    { name: 'getWithMeta', read: async (a) => (await a.getWithMeta('k'))?.value },
    { name: 'mget', read: async (a) => (await a.mget(['k']))[0] },
    { name: 'getOrSet', read: (a) => a.getOrSet('k', () => 'not called') },
  ];
  for (const { name, read } of cases) {
    it(`${name} returns what it read but keeps no copy when the same instance deletes the key meanwhile`, async () => {
      const { a, b } = await pair('during-read', true);
      await b.set('k', 'old');
      // Sent in this order on A's connection: Redis answers the read with the old value, then deletes the key.
      const reading = read(a);
      const deleting = a.delete('k');
      expect(await reading).toBe('old');
      expect(await deleting).toBe(true);
      expect(await a.getWithMeta('k')).toBeUndefined();
    });
  }

  it('a read in flight does not overwrite the value the same instance sets meanwhile', async () => {
    const { a, b } = await pair('set-during-read', true);
    await b.set('k', 'old');
    const reading = a.get('k');
    const writing = a.set('k', 'new');
    expect(await reading).toBe('old');
    await writing;
    expect(await a.getWithMeta('k')).toMatchObject({ value: 'new', source: 'memory' });
  });

  it('a read in flight keeps no copy when a tag invalidation or a clear happens meanwhile', async () => {
    const { a, b } = await pair('bulk-during-read', true);
    await b.set('k', 'old', { tags: ['t'] });
    const reading = a.get('k');
    const invalidating = a.invalidateTags(['t']);
    expect(await reading).toBe('old');
    await invalidating;
    expect(await a.getWithMeta('k')).toBeUndefined();

    await b.set('k', 'old again');
    const readingAgain = a.get('k');
    const clearing = a.clear();
    expect(await readingAgain).toBe('old again');
    await clearing;
    expect(await a.getWithMeta('k')).toBeUndefined();
  });
});

describe('the tracking echo of a load’s own write', () => {
  it('does not hide another client’s write that Redis reports in the same message', async () => {
    const { a, b } = await pair('echo', true);
    const gated = gatedLoader('loaded by B');
    const load = b.getOrSet('k', gated.loader);
    await gated.started;
    // Writes wait while Redis is paused for them; when it resumes, B's script write and A's SET run in one turn of
    // its event loop, and BCAST tracking reports the key once, naming only A's connection as the writer.
    await fixture.redis.cli('CLIENT', 'PAUSE', '300', 'WRITE');
    gated.release();
    await sleep(50);
    const write = a.set('k', 'written by A');
    expect(await load).toBe('loaded by B');
    await write;
    expect(await inRedis(a, 'k')).toBe('written by A');
    await waitFor('B to stop serving its own older load', async () => (await b.get('k')) === 'written by A', {
      timeoutMs: 2000,
    });
  });

  it('still lets the load’s copy serve from memory when nobody else wrote the key', async () => {
    const { b } = await pair('echo-own', true);
    expect(await b.getOrSet('k', () => 'loaded by B')).toBe('loaded by B');
    // The echo arrives within a few ms; after it, the copy is still there.
    await waitFor('the echo', () => (b.stats().bus?.trackingInvalidations ?? 0) > 0, { timeoutMs: 2000 });
    await sleep(50);
    expect(await b.getWithMeta('k')).toMatchObject({ value: 'loaded by B', source: 'memory' });
  });
});
