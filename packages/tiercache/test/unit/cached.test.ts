import { afterEach, describe, expect, it } from 'vitest';
import { ConfigurationError, createCache, defineKey, setDefaultCache } from '../../src/index.js';
import type { Cache } from '../../src/index.js';
import { cached } from '../../src/decorators/index.js';

let open: Cache[] = [];
function memoryCache(): Cache {
  const cache = createCache({ memory: { maxEntries: 1_000 } });
  open.push(cache);
  return cache;
}
afterEach(async () => {
  setDefaultCache(undefined);
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

describe('cached', () => {
  it('serves the second call with the same arguments from the cache', async () => {
    const cache = memoryCache();
    let calls = 0;
    const find = cached(async (id: number, locale: string) => `${id}/${locale}/${++calls}`, {
      key: 'product:{0}:{1}',
      cache,
    });
    expect(await find(1, 'en')).toBe('1/en/1');
    expect(await find(1, 'en')).toBe('1/en/1');
    expect(await find(1, 'fr')).toBe('1/fr/2');
    expect(await cache.get('product:1:en')).toBe('1/en/1');
  });

  it('runs the function once for concurrent calls with one key', async () => {
    let calls = 0;
    const slow = cached(
      async (id: number) => {
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        return id;
      },
      { key: 'slow:{0}', cache: memoryCache() },
    );
    await Promise.all(Array.from({ length: 100 }, () => slow(1)));
    expect(calls).toBe(1);
  });

  it('evicts one key and reloads it on the next call', async () => {
    let calls = 0;
    const user = cached((params: { id: number }) => ({ id: params.id, version: ++calls }), {
      key: 'user:{id}',
      cache: memoryCache(),
    });
    await user({ id: 3 });
    expect(user.key({ id: 3 })).toBe('user:3');
    expect(await user.evict({ id: 3 })).toBe(true);
    expect(await user({ id: 3 })).toEqual({ id: 3, version: 2 });
  });

  it('tags entries from templates of the arguments and with a typed key brings its options', async () => {
    const cache = memoryCache();
    let calls = 0;
    const Order = defineKey<number, [id: number]>('order:{0}', { version: 3, tags: () => ['orders'] });
    const order = cached(async (id: number) => id * 10 + ++calls, { key: Order, cache });
    const line = cached(async (id: number) => id + ++calls, { key: 'line:{0}', tags: ['line:{0}'], cache });
    await order(1);
    await line(2);
    expect(order.key(1)).toBe('order:1@v3');
    await cache.invalidateTags(['orders', 'line:2']);
    expect(await order(1)).toBe(13);
    expect(await line(2)).toBe(6);
  });

  it('uses the default cache when none is given, and says so when there is none', async () => {
    const double = async (n: number) => n;
    const fn = cached(double, { key: 'n:{0}' });
    await expect(fn(1)).rejects.toThrow(
      'No cache for cached(double): pass `cache` in its options or call setDefaultCache(cache) once at startup',
    );
    const cache = memoryCache();
    setDefaultCache(cache);
    expect(await fn(1)).toBe(1);
    expect(await cache.get('n:1')).toBe(1);
  });

  it('rejects a call whose key cannot be made, before running the function', async () => {
    let calls = 0;
    const fn = cached(async (_params: { id?: number }) => ++calls, { key: 'user:{id}', cache: memoryCache() });
    await expect(fn({})).rejects.toThrow('Expected `id` of the key `user:{id}`');
    expect(calls).toBe(0);
  });

  it('refuses a malformed template when it is defined', () => {
    expect(() => cached(async () => 1, { key: 'a:{' })).toThrow(ConfigurationError);
    expect(() => setDefaultCache({} as Cache)).toThrow(ConfigurationError);
  });
});
