import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache, SerializationError } from 'tiercache';
import type { Cache, CacheEvents, CacheOptions } from 'tiercache';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { uniquePrefix, waitFor } from './helpers/support.js';

let redis: RedisProcess;
const caches: Cache[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

afterAll(stopAllRedis);

/** A cache on the test server, connected before it is returned so the first call already reaches Redis. */
async function open(prefix: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = createCache({ prefix, redis: redis.url, ...options });
  caches.push(cache);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  return cache;
}

/** An envelope as a worker in another language would write it (docs/wire-format.md): version 2, or 1 (an object). */
function envelope(data: string, { v = 2, k = 0, ttlMs = 60_000 } = {}): string {
  const now = Date.now();
  if (v === 1) return `{"v":1,"k":${k},"c":${now},"e":${now + ttlMs},"g":${now + ttlMs},"t":[],"d":${data}}`;
  return `[${v},${k},${now},${now + ttlMs},${now + ttlMs},[],${data}]`;
}

/** A stored version 2 entry's fields by name. */
function fields(printed: string): Record<string, unknown> {
  const [v, k, c, e, g, t, d] = JSON.parse(printed) as unknown[];
  return { v, k, c, e, g, t, d };
}

function richValue() {
  return {
    date: new Date('2024-02-29T12:34:56.789Z'),
    big: 2n ** 70n + 1n,
    negativeBig: -42n,
    map: new Map<unknown, unknown>([
      ['a', 1],
      [2, { when: new Date(0) }],
    ]),
    set: new Set<unknown>([1, 'two', 3n]),
    bytes: new Uint8Array([0, 1, 127, 128, 255]),
    missing: undefined,
    nested: { list: [undefined, new Date(1), [new Set([new Map([['deep', 7n]])])]], plain: { a: [1, 'x', null] } },
    specials: [NaN, Infinity, -Infinity, -0],
    $t: 'a user key that looks like the tag key',
  };
}

function expectRich(value: unknown) {
  // toStrictEqual compares class, own undefined properties, Map/Set contents, BigInt and -0 exactly.
  expect(value).toStrictEqual(richValue());
  const v = value as ReturnType<typeof richValue>;
  expect(v.date).toBeInstanceOf(Date);
  expect(v.bytes).toBeInstanceOf(Uint8Array);
  expect(Object.prototype.hasOwnProperty.call(v, 'missing')).toBe(true);
  expect(Object.is(v.specials[3], -0)).toBe(true);
}

describe('values over a real Redis', () => {
  it('rich values round-trip through memory and through Redis', async () => {
    const prefix = uniquePrefix('rich');
    const writer = await open(prefix);
    await writer.set('k', richValue());

    const fromMemory = await writer.getWithMeta('k');
    expect(fromMemory?.source).toBe('memory');
    expectRich(fromMemory?.value);

    const emptyL1 = await open(prefix);
    const fromRedis = await emptyL1.getWithMeta('k');
    expect(fromRedis?.source).toBe('redis');
    expectRich(fromRedis?.value);
    // The copy read from Redis is now in the reader's L1.
    const again = await emptyL1.getWithMeta('k');
    expect(again?.source).toBe('memory');
    expectRich(again?.value);

    const noL1 = await open(prefix, { memory: false });
    expectRich(await noL1.get('k'));
    expect((await noL1.getWithMeta('k'))?.source).toBe('redis');
  });

  it('rich values round-trip through mset and mget on an instance without memory', async () => {
    const prefix = uniquePrefix('rich-many');
    const writer = await open(prefix, { memory: false });
    await writer.mset([
      { key: 'a', value: richValue() },
      { key: 'b', value: new Map([['x', new Set([1n])]]) },
    ]);
    const reader = await open(prefix, { memory: false });
    const [a, b, c] = await reader.mget(['a', 'b', 'c']);
    expectRich(a);
    expect(b).toStrictEqual(new Map([['x', new Set([1n])]]));
    expect(c).toBeUndefined();
  });

  it('the first getOrSet comes from the origin, the second from memory, a fresh instance from Redis', async () => {
    const prefix = uniquePrefix('sources');
    let calls = 0;
    const loader = () => {
      calls++;
      return { id: 7, at: new Date(5) };
    };
    const first = await open(prefix);
    const origin = await first.getOrSetWithMeta('user:7', loader, { ttl: 60_000 });
    expect(origin.source).toBe('origin');
    expect(origin.value).toStrictEqual({ id: 7, at: new Date(5) });
    expect(origin.expiresInMs).toBeGreaterThan(59_000);
    expect(origin.expiresInMs).toBeLessThanOrEqual(60_000);

    const memory = await first.getOrSetWithMeta('user:7', loader);
    expect(memory.source).toBe('memory');
    expect(memory.value).toStrictEqual({ id: 7, at: new Date(5) });
    expect(memory.expiresInMs).toBeGreaterThan(0);
    expect(memory.expiresInMs).toBeLessThanOrEqual(60_000);

    const fresh = await open(prefix);
    const remote = await fresh.getOrSetWithMeta('user:7', loader);
    expect(remote.source).toBe('redis');
    expect(remote.value).toStrictEqual({ id: 7, at: new Date(5) });
    expect(remote.expiresInMs).toBeGreaterThan(0);
    expect(remote.expiresInMs).toBeLessThanOrEqual(60_000);

    expect(calls).toBe(1);
    expect(first.stats()).toMatchObject({ hits: { memory: 1, redis: 0 }, misses: 1, loader: { calls: 1 } });
    expect(fresh.stats()).toMatchObject({ hits: { memory: 0, redis: 1 }, misses: 0, loader: { calls: 0 } });
  });
});

describe('the stored entry, as other tools see it', () => {
  it('redis-cli GET prints the JSON envelope at exactly prefix + key, with PTTL of ttl + grace', async () => {
    const prefix = uniquePrefix('wire');
    const cache = await open(prefix);
    const before = Date.now();
    await cache.set('order:1', { total: 12.5, items: ['a', 'b'] }, { ttl: '1m', grace: 30_000, tags: ['orders'] });
    const after = Date.now();

    const printed = await redis.cli('GET', `${prefix}order:1`);
    expect((JSON.parse(printed) as unknown[]).length).toBe(7);
    const entry = fields(printed);
    expect(entry).toMatchObject({ v: 2, k: 0, t: ['orders'], d: { total: 12.5, items: ['a', 'b'] } });
    const c = entry['c'] as number;
    expect(c).toBeGreaterThanOrEqual(before);
    expect(c).toBeLessThanOrEqual(after);
    expect(entry['e']).toBe(c + 60_000);
    expect(entry['g']).toBe(c + 90_000);

    const pttl = Number(await redis.cli('PTTL', `${prefix}order:1`));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(90_000);
    // Seconds of slack for a slow machine, far below the 30 s grace that a PX of ttl alone would lose.
    expect(pttl).toBeGreaterThan(85_000);
  });

  it('a value with tagged types is marked k:1 and its tags are readable JSON', async () => {
    const prefix = uniquePrefix('wire-tagged');
    const cache = await open(prefix);
    await cache.set('t', { at: new Date('2024-01-02T03:04:05.000Z'), n: 10n });
    const entry = fields(await redis.cli('GET', `${prefix}t`));
    expect(entry['k']).toBe(1);
    expect(entry['d']).toEqual({
      at: { $t: 'Date', v: '2024-01-02T03:04:05.000Z' },
      n: { $t: 'BigInt', v: '10' },
    });
  });

  it('an envelope written by redis-cli, as a worker in another language would, is read', async () => {
    const prefix = uniquePrefix('interop');
    await redis.cli('SET', `${prefix}plain`, envelope('{"x":1,"y":[true,null]}'), 'PX', '60000');
    await redis.cli('SET', `${prefix}tagged`, envelope('{"$t":"Set","v":[1,{"$t":"BigInt","v":"5"}]}', { k: 1 }));
    // Version 1, as tiercache wrote entries before version 2: still read.
    await redis.cli('SET', `${prefix}v1`, envelope('{"$t":"Set","v":[1,{"$t":"BigInt","v":"5"}]}', { k: 1, v: 1 }));
    const cache = await open(prefix, { memory: false });
    expect(await cache.get('plain')).toStrictEqual({ x: 1, y: [true, null] });
    expect(await cache.get('tagged')).toStrictEqual(new Set([1, 5n]));
    expect(await cache.get('v1')).toStrictEqual(new Set([1, 5n]));
  });
});

describe('a rolling upgrade from version 1', () => {
  it('a fresh version 1 entry answers a cold getOrSet without a load, and a stale one is replaced by version 2', async () => {
    const prefix = uniquePrefix('upgrade');
    await redis.cli('SET', `${prefix}fresh`, envelope('{"n":1}', { v: 1 }), 'PX', '60000');
    await redis.cli('SET', `${prefix}stale`, envelope('{"n":1}', { v: 1, ttlMs: -1 }), 'PX', '60000');
    const cache = await open(prefix);
    let loads = 0;
    const load = (): { n: number } => ({ n: 10 + ++loads });
    // The "value or lock" script reads the version 1 header: fresh, so no lock and no load.
    expect(await cache.getOrSetWithMeta('fresh', load)).toMatchObject({ value: { n: 1 }, source: 'redis' });
    expect(loads).toBe(0);
    expect(await cache.getOrSet('stale', load)).toStrictEqual({ n: 11 });
    expect((await redis.cli('GET', `${prefix}stale`)).startsWith('[2,0,')).toBe(true);
    await cache.close();
  });
});

describe('bad stored entries', () => {
  it('corrupt or unknown-version entries read as misses and are counted', async () => {
    const prefix = uniquePrefix('corrupt');
    const bad = {
      notJson: 'definitely {not json',
      notEntry: '[1,2,3]',
      futureVersion: envelope('"v3 data"', { v: 3 }),
      objectOfVersion2: '{"v":2,"k":0,"c":1,"e":2,"g":3,"t":[],"d":"x"}',
      noVersion: '{"d":"x"}',
      missingTimes: '{"v":1,"k":0,"t":[],"d":"x"}',
      badTag: envelope('{"$t":"Function","v":"alert(1)"}', { k: 1 }),
    };
    for (const [key, raw] of Object.entries(bad)) await redis.cli('SET', `${prefix}${key}`, raw);
    const cache = await open(prefix);
    const events: CacheEvents['error'][] = [];
    cache.on('error', (event) => events.push(event));

    for (const key of Object.keys(bad)) expect(await cache.get(key), key).toBeUndefined();
    expect(cache.stats().decodeErrors).toBe(Object.keys(bad).length);
    expect(cache.stats().misses).toBe(Object.keys(bad).length);
    expect(events.map((e) => [e.operation, e.key])).toEqual(Object.keys(bad).map((key) => ['decode', key]));
    for (const event of events) expect(event.error).toBeInstanceOf(SerializationError);

    const many = await cache.mget(Object.keys(bad));
    expect(many).toEqual(Object.keys(bad).map(() => undefined));
    expect(cache.stats().decodeErrors).toBe(2 * Object.keys(bad).length);
  });

  it('getOrSet over a corrupt entry runs the loader and replaces the entry with a good one', async () => {
    const prefix = uniquePrefix('heal');
    await redis.cli('SET', `${prefix}k`, 'garbage');
    const cache = await open(prefix);
    const result = await cache.getOrSetWithMeta('k', () => 'fresh');
    expect(result).toMatchObject({ value: 'fresh', source: 'origin' });
    expect(fields(await redis.cli('GET', `${prefix}k`))).toMatchObject({ v: 2, d: 'fresh' });
  });

  it('a stored entry larger than maxValueBytes reads as a miss', async () => {
    const prefix = uniquePrefix('oversize');
    const big = 'x'.repeat(5000);
    await redis.cli('SET', `${prefix}big`, envelope(JSON.stringify(big)));
    const small = await open(prefix, { maxValueBytes: 1000, memory: false });
    expect(await small.get('big')).toBeUndefined();
    expect(await small.mget(['big'])).toEqual([undefined]);
    expect(small.stats().decodeErrors).toBe(2);
    // The entry itself is fine: a cache with a larger cap reads it.
    const large = await open(prefix, { memory: false });
    expect(await large.get('big')).toBe(big);
  });

  it('hostile __proto__ and constructor keys written by redis-cli stay data and leave Object.prototype alone', async () => {
    const prefix = uniquePrefix('proto');
    const hostile = '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"a":1}';
    await redis.cli('SET', `${prefix}plain`, envelope(hostile));
    // k:1 makes the reader walk and revive the tree, the path where a naive merge would pollute.
    await redis.cli(
      'SET',
      `${prefix}tagged`,
      envelope(`{"x":{"$t":"Date","v":"2020-01-01T00:00:00.000Z"},"o":${hostile}}`, { k: 1 }),
    );
    await redis.cli(
      'SET',
      `${prefix}map`,
      envelope('{"$t":"Map","v":[["__proto__",{"polluted":"yes"}],["k",{"__proto__":{"polluted":"yes"}}]]}', { k: 1 }),
    );
    const cache = await open(prefix);

    const plain = (await cache.get('plain')) as Record<string, unknown>;
    const tagged = (await cache.get('tagged')) as { x: Date; o: Record<string, unknown> };
    const map = (await cache.get('map')) as Map<string, Record<string, unknown>>;

    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // Once more from L1, which holds what was decoded.
    const again = await cache.getWithMeta<Record<string, unknown>>('plain');
    expect(again?.source).toBe('memory');
    const plainFromMemory = again?.value;
    expect(plainFromMemory).toEqual(plain);
    for (const object of [plain, plainFromMemory ?? {}, tagged.o, map.get('k') as Record<string, unknown>]) {
      expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
      expect(Object.prototype.hasOwnProperty.call(object, '__proto__')).toBe(true);
      expect(object['polluted']).toBeUndefined();
    }
    expect(plain['a']).toBe(1);
    expect(tagged.x).toEqual(new Date('2020-01-01T00:00:00.000Z'));
    expect(map.get('__proto__')).toEqual({ polluted: 'yes' });

    // Written back and read by another instance, the hostile key is still only data.
    await cache.set('copy', plain);
    const other = await open(prefix, { memory: false });
    const copy = (await other.get('copy')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(copy, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('unencodable values are refused with a SerializationError naming the key, and nothing is written', async () => {
    const prefix = uniquePrefix('unencodable');
    const cache = await open(prefix);
    const circular: Record<string, unknown> = { a: 1 };
    circular['self'] = circular;
    await expect(cache.set('circular', circular)).rejects.toSatisfy(
      (error) => error instanceof SerializationError && error.key === 'circular',
    );
    await expect(cache.set('fn', { f: () => 1 })).rejects.toBeInstanceOf(SerializationError);
    await expect(
      cache.mset([
        { key: 'good', value: 1 },
        { key: 'bad', value: Symbol('s') },
      ]),
    ).rejects.toBeInstanceOf(SerializationError);
    expect(await redis.cli('--scan', '--pattern', `${prefix}*`)).toBe('');
  });
});
