import keyvTestSuite from '@keyv/test-suite';
import { createCache as createCacheManager } from 'cache-manager';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { afterAll, describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import { KeyvTiercache } from '../../src/keyv/index.js';

// One memory-only tiercache behind every adapter the suite makes, so namespaces really share a store.
const shared = createCache({ memory: { maxEntries: 10_000 }, ttl: '1h' });
afterAll(() => shared.close());

describe('the published @keyv/test-suite against KeyvTiercache', () => {
  keyvTestSuite(vitest, Keyv, () => new KeyvTiercache(shared));
});

describe('KeyvTiercache', () => {
  it('stores values in the tiercache under Keyv namespace keys', async () => {
    const cache = createCache({ memory: { maxEntries: 100 } });
    const keyv = new Keyv({ store: new KeyvTiercache(cache), namespace: 'app' });
    await keyv.set('user', { id: 1 });
    expect(await cache.has('app:user')).toBe(true);
    expect(await keyv.get('user')).toEqual({ id: 1 });
    await cache.close();
  });

  it('clears only its own namespace, nested ones included', async () => {
    const cache = createCache({ memory: { maxEntries: 100 } });
    const nested = new Keyv({ store: new KeyvTiercache(cache), namespace: 'app:v2' });
    const other = new Keyv({ store: new KeyvTiercache(cache), namespace: 'app' });
    await nested.set('a', 1);
    await other.set('b', 2);
    await nested.clear();
    expect(await nested.get('a')).toBeUndefined();
    expect(await other.get('b')).toBe(2);
    await cache.close();
  });

  it('gives a set without a TTL the cache ttl and one with a TTL its own', async () => {
    let now = 0;
    const cache = createCache({ memory: { maxEntries: 100 }, ttl: '1m', clock: { now: () => now } });
    const store = new KeyvTiercache(cache);
    await store.set('a', 'forever?');
    await store.set('b', 'short', 1_000);
    now = 2_000;
    expect(await store.get('a')).toBe('forever?');
    expect(await store.get('b')).toBeUndefined();
    now = 61_000;
    expect(await store.get('a')).toBeUndefined();
    await cache.close();
  });

  it('closes a cache it created on disconnect, and leaves one it was given open', async () => {
    const given = createCache({ memory: { maxEntries: 100 } });
    await new KeyvTiercache(given).disconnect();
    expect(await given.getOrSet('k', () => 1)).toBe(1);
    await given.close();

    const owned = new KeyvTiercache({ memory: { maxEntries: 100 } });
    await owned.disconnect();
    await expect(owned.opts.cache.getOrSet('k', () => 1)).rejects.toThrow('The cache is closed');
  });

  it('works under cache-manager 7: wrap loads once, then serves from tiercache', async () => {
    const cache = createCache({ memory: { maxEntries: 100 } });
    const manager = createCacheManager({ stores: [new Keyv({ store: new KeyvTiercache(cache) })] });
    let loads = 0;
    const load = async () => ({ id: 7, loads: ++loads });
    expect(await manager.wrap('product:7', load, 60_000)).toEqual({ id: 7, loads: 1 });
    expect(await manager.wrap('product:7', load, 60_000)).toEqual({ id: 7, loads: 1 });
    expect(loads).toBe(1);
    expect(await cache.has('keyv:product:7')).toBe(true);
    await manager.del('product:7');
    expect(await manager.wrap('product:7', load, 60_000)).toEqual({ id: 7, loads: 2 });
    await cache.close();
  });
});
