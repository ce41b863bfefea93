/**
 * Tags over a real Redis: every tag is a sorted set `${prefix}__tag:${tag}` of the keys written with it, scored by
 * each key's expiry. Exact (only what was written before the invalidation goes), bounded (the set expires with its
 * last member and sheds expired members on every add) and scoped (a prefix or namespace never reaches a sibling that
 * only shares its text).
 */
import { describe, expect, it } from 'vitest';
import type { Cache, CacheOptions } from 'tiercache';
import { sleep, uniquePrefix, waitFor } from './helpers/support.js';
import { useRedis } from './helpers/fixture.js';

const fixture = useRedis({ cacheDefaults: { timeouts: { redisMs: 1000 } }, checkUnhandled: false });
const { open } = fixture;

async function pair(prefix: string, options: CacheOptions = {}): Promise<{ a: Cache; b: Cache }> {
  const a = await open(prefix, options);
  const b = await open(prefix, options);
  await waitFor('tracking to be on in both', () => [a, b].every((c) => c.stats().bus?.tracking === true));
  return { a, b };
}

describe('tag invalidation is exact', () => {
  it('every instance misses what was tagged before, and nothing written after is affected', async () => {
    const { a, b } = await pair(uniquePrefix('exact'));
    await a.set('p1', 'product 1', { tags: ['products', 'p1'] });
    await a.mset([{ key: 'p2', value: 'product 2', tags: ['products'] }]);
    await a.getOrSet('p3', () => 'product 3', { tags: ['products'] });
    // Written by B itself, so B's memory copies of these two are there to stay (nothing about them is on its way).
    await b.set('other', 'not a product', { tags: ['orders'] });
    await b.set('untagged', 'no tags');
    expect(await b.mget(['p1', 'p2', 'p3', 'other', 'untagged'])).toEqual([
      'product 1',
      'product 2',
      'product 3',
      'not a product',
      'no tags',
    ]);

    await a.invalidateTags(['products']);

    await waitFor('B to drop the tagged copies', async () =>
      (await b.mget(['p1', 'p2', 'p3'])).every((value) => value === undefined),
    );
    expect(await a.mget(['p1', 'p2', 'p3'])).toEqual([undefined, undefined, undefined]);
    expect(await b.getWithMeta('other')).toMatchObject({ value: 'not a product', source: 'memory' });
    expect(await b.getWithMeta('untagged')).toMatchObject({ value: 'no tags', source: 'memory' });
    expect(await fixture.raw.exists(`${a.prefix}__tag:products`)).toBe(0);

    // Written after the invalidation: untouched by it, and indexed afresh for the next one.
    await a.set('p1', 'product 1 again', { tags: ['products'] });
    await b.getOrSet('p4', () => 'product 4', { tags: ['products'] });
    await sleep(50);
    expect(await b.mget(['p1', 'p4'])).toEqual(['product 1 again', 'product 4']);
    expect(await a.mget(['p1', 'p4'])).toEqual(['product 1 again', 'product 4']);
    expect((await fixture.raw.zrange(`${a.prefix}__tag:products`, '0', '-1')).sort()).toEqual([
      `${a.prefix}p1`,
      `${a.prefix}p4`,
    ]);

    await b.invalidateTags(['p1', 'products']);
    await waitFor('A to drop them', async () => (await a.mget(['p1', 'p4'])).every((v) => v === undefined));
  });

  it('removes the keys’ stampede locks too, so a load holding one does not write what it loaded before', async () => {
    // Without tracking, and loading without tags: only the lock tells B's load that it was invalidated.
    const prefix = uniquePrefix('tag-lock');
    const a = await open(prefix, { bus: { tracking: false } });
    const b = await open(prefix, { bus: { tracking: false } });
    // Logically expired after 100 ms, still in Redis (and in the tag set) for its grace.
    await a.set('k', 'old', { tags: ['t'], ttl: 100, grace: 60_000 });
    await sleep(150);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const loaderStarted = new Promise<void>((resolve) => (started = resolve));
    const load = b.getOrSet('k', async () => {
      started();
      await gate;
      return 'loaded before the invalidation';
    });
    await loaderStarted;
    // B holds the key's lock while it loads.
    expect(await fixture.raw.exists(`${prefix}__lock:{${prefix}k}`)).toBe(1);
    await a.invalidateTags(['t']);
    release();
    expect(await load).toBe('loaded before the invalidation');
    expect(await fixture.raw.get(`${prefix}k`)).toBeNull();
    expect(await b.getWithMeta('k')).toBeUndefined();
  });
});

describe('tag bookkeeping is bounded', () => {
  it('a tag set expires with its longest-lived member and sheds expired members on every add', async () => {
    const prefix = uniquePrefix('bounded');
    const a = await open(prefix);
    const tagKey = `${prefix}__tag:t`;
    await a.set('short', 1, { tags: ['t'], ttl: 200 });
    const shortTtl = await fixture.raw.pttl(tagKey);
    expect(shortTtl).toBeGreaterThan(0);
    expect(shortTtl).toBeLessThanOrEqual(200);

    await a.set('long', 2, { tags: ['t'], ttl: 60_000, grace: 30_000 });
    const longTtl = await fixture.raw.pttl(tagKey);
    // The Redis TTL of an entry is its ttl plus grace; the tag set lives exactly as long as its longest member.
    expect(longTtl).toBeGreaterThan(89_000);
    expect(longTtl).toBeLessThanOrEqual(90_000);
    expect(Math.abs(longTtl - (await fixture.raw.pttl(`${prefix}long`)))).toBeLessThan(50);
    expect(await fixture.raw.zcard(tagKey)).toBe(2);

    await sleep(300);
    // The next write of the tag prunes the member that expired.
    await a.getOrSet('third', () => 3, { tags: ['t'], ttl: 1000 });
    expect((await fixture.raw.zrange(tagKey, '0', '-1')).sort()).toEqual([`${prefix}long`, `${prefix}third`]);

    // And a set whose members all expired is gone by itself.
    await a.set('alone', 4, { tags: ['lonely'], ttl: 150 });
    expect(await fixture.raw.exists(`${prefix}__tag:lonely`)).toBe(1);
    await sleep(300);
    expect(await fixture.raw.exists(`${prefix}__tag:lonely`)).toBe(0);
  });

  it('2000 short-lived tagged writes leave no key and no tag set behind once they expire', async () => {
    const prefix = uniquePrefix('bounded-bulk');
    const a = await open(prefix, { memory: false });
    for (let batch = 0; batch < 2; batch++) {
      await a.mset(
        Array.from({ length: 1000 }, (_, i) => ({
          key: `k${batch}-${i}`,
          value: i,
          ttl: 1000,
          tags: ['all', `batch${batch}`, `item${i % 10}`],
        })),
      );
    }
    const indexed = await fixture.raw.zcard(`${prefix}__tag:all`);
    expect(indexed).toBeGreaterThan(0);
    expect(indexed).toBeLessThanOrEqual(2000);
    const ttl = await fixture.raw.pttl(`${prefix}__tag:all`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
    await sleep(1200);
    let cursor = '0';
    const left: string[] = [];
    do {
      const [next, keys] = await fixture.raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      left.push(...keys);
    } while (cursor !== '0');
    expect(left).toEqual([]);
  });
});

describe('tags and clear are scoped', () => {
  it('a clear or a tag invalidation under app:user never touches app:users:*, in Redis or in memory', async () => {
    const user = await pair('app:user');
    const users = await pair('app:users');
    // Each instance writes one key itself, so each holds that copy in memory with nothing about it on its way.
    for (const { a, b } of [user, users]) {
      await a.set('1', `${a.prefix}1`, { tags: ['t'] });
      await b.set('2', `${b.prefix}2`, { tags: ['t'] });
      expect(await a.getWithMeta('1')).toMatchObject({ source: 'memory' });
      expect(await b.getWithMeta('2')).toMatchObject({ source: 'memory' });
    }
    expect(await user.b.get('1')).toBe('app:user:1');

    await user.a.invalidateTags(['t']);
    await waitFor('app:user to miss everywhere', async () =>
      (await Promise.all([user.a.get('1'), user.a.get('2'), user.b.get('1'), user.b.get('2')])).every(
        (v) => v === undefined,
      ),
    );
    await user.a.set('3', 'app:user:3');
    expect(await user.b.get('3')).toBe('app:user:3');
    await user.a.clear();
    await waitFor('app:user to be cleared everywhere', async () => (await user.b.get('3')) === undefined);
    await sleep(50);

    expect(await fixture.raw.keys('app:user:*')).toEqual([]);
    expect((await fixture.raw.keys('app:users:*')).sort()).toEqual(['app:users:1', 'app:users:2', 'app:users:__tag:t']);
    expect((await fixture.raw.zrange('app:users:__tag:t', '0', '-1')).sort()).toEqual(['app:users:1', 'app:users:2']);
    expect(await users.a.getWithMeta('1')).toMatchObject({ value: 'app:users:1', source: 'memory' });
    expect(await users.b.getWithMeta('2')).toMatchObject({ value: 'app:users:2', source: 'memory' });
  });

  it('a namespace’s tag invalidation and clear stay inside it, and never reach a sibling sharing its text', async () => {
    const prefix = uniquePrefix('ns-tags');
    const { a, b } = await pair(prefix);
    await a.namespace('order').set('1', 'order', { tags: ['t'] });
    // Written by B, so B's copies of these stay in its memory unless something invalidates them.
    await b.namespace('orders').set('1', 'orders', { tags: ['t'] });
    await b.set('1', 'root', { tags: ['t'] });
    expect(await b.namespace('order').get('1')).toBe('order');

    await a.namespace('order').invalidateTags(['t']);
    await waitFor('B to drop order:1', async () => (await b.namespace('order').get('1')) === undefined);
    await sleep(50);
    expect(await b.namespace('orders').getWithMeta('1')).toMatchObject({ value: 'orders', source: 'memory' });
    expect(await b.getWithMeta('1')).toMatchObject({ value: 'root', source: 'memory' });
    expect(await fixture.raw.exists(`${prefix}orders:__tag:t`, `${prefix}__tag:t`)).toBe(2);

    await a.namespace('order').set('2', 'again');
    expect(await b.namespace('order').get('2')).toBe('again');
    await a.namespace('order').clear();
    await waitFor('B to drop order:2', async () => (await b.namespace('order').get('2')) === undefined);
    await sleep(50);
    expect(await b.namespace('orders').getWithMeta('1')).toMatchObject({ value: 'orders', source: 'memory' });
    expect(await fixture.raw.get(`${prefix}orders:1`)).not.toBeNull();
  });
});
