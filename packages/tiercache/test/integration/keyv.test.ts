import keyvTestSuite from '@keyv/test-suite';
import { createCache as createCacheManager } from 'cache-manager';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from 'tiercache';
import { KeyvTiercache } from 'tiercache/keyv';
import { useRedis } from './helpers/fixture.js';
import { uniquePrefix } from './helpers/support.js';

const fixture = useRedis();
let cache: Cache | undefined;
beforeAll(async () => {
  cache = await fixture.open(uniquePrefix('keyv'));
  fixture.caches.splice(0); // kept for the whole file, not closed after each test
});
afterAll(() => cache?.close());
const store = () => {
  if (cache === undefined) throw new Error('the cache opens in beforeAll');
  return new KeyvTiercache(cache);
};

describe('the published @keyv/test-suite against KeyvTiercache over a real redis-server', () => {
  keyvTestSuite(vitest, Keyv, store);
});

describe('KeyvTiercache over Redis', () => {
  it('lets a second instance read what cache-manager wrote through the first', async () => {
    const prefix = uniquePrefix('keyv-shared');
    const [one, two] = await Promise.all([fixture.open(prefix), fixture.open(prefix)]);
    const writer = createCacheManager({ stores: [new Keyv({ store: new KeyvTiercache(one) })] });
    const reader = createCacheManager({ stores: [new Keyv({ store: new KeyvTiercache(two) })] });
    let loads = 0;
    await writer.wrap('report', async () => ({ loads: ++loads }), 60_000);
    expect(await reader.wrap('report', async () => ({ loads: ++loads }), 60_000)).toEqual({ loads: 1 });
    expect(loads).toBe(1);
    expect(await fixture.raw.exists(`${one.prefix}keyv:report`)).toBe(1);
  });
});
