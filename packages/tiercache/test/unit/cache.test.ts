import { afterEach, describe, expect, it } from 'vitest';
import {
  CacheClosedError,
  ConfigurationError,
  ErrorCode,
  InvalidKeyError,
  SerializationError,
  createCache,
} from '../../src/index.js';
import type { Cache, CacheEvents, CacheOptions } from '../../src/index.js';
import { createEntry, encodeEntry } from '../../src/entry.js';
import { DEFAULTS } from '../../src/options.js';
import { DAY, HOUR, MINUTE, SECOND, fakeClock } from './fake-clock.js';
import type { FakeClock } from './fake-clock.js';
import { deferred } from '../deferred.js';

let open: Cache[] = [];

/** A memory-only cache on a fake clock; closed after each test. */
function setup(options: Omit<CacheOptions, 'clock'> = {}): { cache: Cache; clock: FakeClock } {
  const clock = fakeClock();
  const cache = createCache({ ...options, clock });
  open.push(cache);
  return { cache, clock };
}

afterEach(async () => {
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

describe('get, set and has', () => {
  it('misses a key that was never set', async () => {
    const { cache } = setup();
    expect(await cache.get('nope')).toBeUndefined();
    expect(await cache.getWithMeta('nope')).toBeUndefined();
    expect(await cache.has('nope')).toBe(false);
  });

  it('returns what was set, with its source and time left', async () => {
    const { cache, clock } = setup({ ttl: '1m' });
    await cache.set('user:1', { name: 'Ada', born: new Date('1815-12-10T00:00:00.000Z') });
    expect(await cache.get('user:1')).toStrictEqual({ name: 'Ada', born: new Date('1815-12-10T00:00:00.000Z') });
    expect(await cache.has('user:1')).toBe(true);
    clock.advance(15 * SECOND);
    expect(await cache.getWithMeta('user:1')).toMatchObject({ source: 'memory', expiresInMs: 45 * SECOND });
  });

  it('overwrites a value and restarts its TTL', async () => {
    const { cache, clock } = setup({ ttl: '10s' });
    await cache.set('k', 1);
    clock.advance(8 * SECOND);
    await cache.set('k', 2);
    clock.advance(8 * SECOND);
    expect(await cache.get('k')).toBe(2);
  });

  it('caches falsy values and undefined as hits', async () => {
    const { cache } = setup();
    await cache.mset([
      { key: 'zero', value: 0 },
      { key: 'empty', value: '' },
      { key: 'false', value: false },
      { key: 'null', value: null },
      { key: 'undef', value: undefined },
    ]);
    expect(await cache.mget(['zero', 'empty', 'false', 'null'])).toStrictEqual([0, '', false, null]);
    expect(await cache.has('undef')).toBe(true);
    expect(await cache.getWithMeta('undef')).toMatchObject({ value: undefined, source: 'memory' });
  });

  it('counts memory hits, misses and writes', async () => {
    const { cache } = setup();
    await cache.set('a', 1);
    await cache.get('a');
    await cache.get('a');
    await cache.get('b');
    const stats = cache.stats();
    expect(stats.hits).toMatchObject({ memory: 2, redis: 0 });
    expect(stats.misses).toBe(1);
    expect(stats.writes).toBe(1);
    expect(stats.redis.state).toBe('off');
    expect(stats.memory?.entries).toBe(1);
    expect(stats.memory?.bytes).toBeGreaterThan(0);
  });
});

describe('TTL', () => {
  it('expires an entry exactly at its TTL on the injected clock', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'v', { ttl: '10s' });
    clock.advance(10 * SECOND - 1);
    expect(await cache.get('k')).toBe('v');
    clock.advance(1);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.has('k')).toBe(false);
  });

  it('uses the cache-wide ttl when a call gives none', async () => {
    const { cache, clock } = setup({ ttl: '2m' });
    await cache.set('k', 'v');
    clock.advance(2 * MINUTE - 1);
    expect(await cache.get('k')).toBe('v');
    clock.advance(1);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('defaults to a five-minute ttl', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'v');
    clock.advance(5 * MINUTE - 1);
    expect(await cache.get('k')).toBe('v');
    clock.advance(1);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('caps the life of a memory copy at memory.maxTtl whatever the ttl', async () => {
    const { cache, clock } = setup({ memory: { maxTtl: '1m' } });
    await cache.set('k', 'v', { ttl: '1h' });
    clock.advance(MINUTE - 1);
    expect(await cache.getWithMeta('k')).toMatchObject({ source: 'memory', expiresInMs: HOUR - MINUTE + 1 });
    clock.advance(1);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('keeps a 30-day entry in memory when memory.maxTtl allows it', async () => {
    const { cache, clock } = setup({ memory: { maxTtl: '365d' } });
    await cache.set('month', 'v', { ttl: '30d' });
    clock.advance(29 * DAY);
    expect(await cache.get('month')).toBe('v');
    clock.advance(2 * DAY);
    expect(await cache.get('month')).toBeUndefined();
  });

  it('gives mset entries their own ttl', async () => {
    const { cache, clock } = setup({ ttl: '1h' });
    await cache.mset([
      { key: 'short', value: 1, ttl: '1s' },
      { key: 'long', value: 2 },
    ]);
    clock.advance(SECOND);
    expect(await cache.mget(['short', 'long'])).toStrictEqual([undefined, 2]);
  });
});

describe('grace', () => {
  it('serves the expired copy as stale when the loader fails within grace, and only then', async () => {
    const { cache, clock } = setup({ grace: '1m' });
    await cache.set('k', 'old', { ttl: '10s' });
    clock.advance(10 * SECOND);
    // get never answers a stale copy: only a failed load may fall back to it.
    expect(await cache.get('k')).toBeUndefined();
    let calls = 0;
    const failing = () => {
      calls++;
      throw new Error('origin down');
    };
    clock.advance(10 * SECOND);
    expect(await cache.getOrSetWithMeta('k', failing)).toStrictEqual({
      value: 'old',
      source: 'stale',
      expiresInMs: -10 * SECOND,
    });
    expect(calls).toBe(1);
    expect(cache.stats().loader.errors).toBe(1);
  });

  it('does not call a failing loader again for graceBackoff after serving stale', async () => {
    const { cache, clock } = setup({ grace: '1m' });
    await cache.set('k', 'old', { ttl: '10s' });
    clock.advance(15 * SECOND);
    let calls = 0;
    const failing = () => {
      calls++;
      throw new Error('origin down');
    };
    expect(await cache.getOrSet('k', failing, { graceBackoff: '5s' })).toBe('old');
    clock.advance(5 * SECOND - 1);
    expect(await cache.getOrSet('k', failing, { graceBackoff: '5s' })).toBe('old');
    expect(calls).toBe(1);
    clock.advance(1);
    expect(await cache.getOrSet('k', failing, { graceBackoff: '5s' })).toBe('old');
    expect(calls).toBe(2);
  });

  it('gives the loader error to the caller once the grace window is over', async () => {
    const { cache, clock } = setup({ grace: '1m' });
    await cache.set('k', 'old', { ttl: '10s' });
    clock.advance(10 * SECOND + MINUTE);
    const boom = new Error('origin down');
    await expect(
      cache.getOrSet('k', () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('serves no stale copy without grace', async () => {
    const { cache, clock } = setup();
    await cache.set('k', 'old', { ttl: '10s' });
    clock.advance(10 * SECOND);
    const boom = new Error('origin down');
    await expect(
      cache.getOrSet('k', () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });
});

describe('jitter', () => {
  it('shortens each ttl by up to the fraction, so keys written together do not all expire together', async () => {
    const { cache, clock } = setup({ jitter: 0.5, ttl: 1000 * SECOND });
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    await cache.mset(keys.map((key) => ({ key, value: key })));
    const alive = async () => (await cache.mget(keys)).filter((value) => value !== undefined).length;
    clock.advance(500 * SECOND - 1);
    expect(await alive()).toBe(50);
    clock.advance(250 * SECOND);
    const atThreeQuarters = await alive();
    // 50 uniform draws over [500 s, 1000 s]: all on one side of 750 s has a chance of about 2^-49.
    expect(atThreeQuarters).toBeGreaterThan(0);
    expect(atThreeQuarters).toBeLessThan(50);
    clock.advance(250 * SECOND + 1);
    expect(await alive()).toBe(0);
  });

  it('leaves ttls exact when it is 0, the default', async () => {
    const { cache, clock } = setup({ ttl: 1000 * SECOND });
    await cache.mset(Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: i })));
    clock.advance(1000 * SECOND - 1);
    expect((await cache.mget(Array.from({ length: 20 }, (_, i) => `k${i}`))).every((v) => v !== undefined)).toBe(true);
  });
});

describe('delete, deleteMany, mget and mset', () => {
  it('deletes a key and says whether it existed', async () => {
    const { cache } = setup();
    await cache.set('k', 1);
    expect(await cache.delete('k')).toBe(true);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.delete('k')).toBe(false);
  });

  it('deletes many keys and counts those that existed', async () => {
    const { cache } = setup();
    await cache.mset([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
      { key: 'c', value: 3 },
    ]);
    expect(await cache.deleteMany(['a', 'c', 'missing'])).toBe(2);
    expect(await cache.mget(['a', 'b', 'c'])).toStrictEqual([undefined, 2, undefined]);
    expect(await cache.deleteMany([])).toBe(0);
    expect(cache.stats().deletes).toBe(3);
  });

  it('reads many keys in order with undefined for each miss', async () => {
    const { cache } = setup();
    await cache.mset([
      { key: 'a', value: 'A' },
      { key: 'c', value: new Set(['C']) },
    ]);
    expect(await cache.mget(['c', 'x', 'a', 'a'])).toStrictEqual([new Set(['C']), undefined, 'A', 'A']);
    expect(await cache.mget([])).toStrictEqual([]);
    expect(cache.stats().hits.memory).toBe(3);
    expect(cache.stats().misses).toBe(1);
  });

  it('writes nothing from an mset batch that holds one bad entry', async () => {
    const { cache } = setup();
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    await expect(
      cache.mset([
        { key: 'good', value: 1 },
        { key: 'bad', value: circular },
      ]),
    ).rejects.toBeInstanceOf(SerializationError);
    await expect(
      cache.mset([
        { key: 'good', value: 1 },
        { key: '', value: 2 },
      ]),
    ).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await cache.get('good')).toBeUndefined();
    expect(cache.stats().writes).toBe(0);
  });
});

describe('getOrSet', () => {
  it('loads on a miss, then serves memory with a shrinking expiresInMs', async () => {
    const { cache, clock } = setup();
    let calls = 0;
    const loader = () => {
      calls++;
      return { n: calls };
    };
    const first = await cache.getOrSetWithMeta('k', loader, { ttl: '1m' });
    expect(first).toStrictEqual({ value: { n: 1 }, source: 'origin', expiresInMs: MINUTE });
    clock.advance(10 * SECOND);
    const second = await cache.getOrSetWithMeta('k', loader, { ttl: '1m' });
    expect(second).toStrictEqual({ value: { n: 1 }, source: 'memory', expiresInMs: 50 * SECOND });
    clock.advance(30 * SECOND);
    const third = await cache.getOrSetWithMeta('k', loader, { ttl: '1m' });
    expect(third.source).toBe('memory');
    expect(third.expiresInMs).toBe(20 * SECOND);
    expect(calls).toBe(1);
  });

  it('runs the loader again once the value has expired', async () => {
    const { cache, clock } = setup();
    let calls = 0;
    const loader = () => ++calls;
    expect(await cache.getOrSet('k', loader, { ttl: '5s' })).toBe(1);
    clock.advance(5 * SECOND);
    expect(await cache.getOrSetWithMeta('k', loader, { ttl: '5s' })).toMatchObject({ value: 2, source: 'origin' });
  });

  it('passes the unprefixed key to the loader and caches what an async loader resolves', async () => {
    const { cache } = setup({ prefix: 'app' });
    const seen: string[] = [];
    const value = await cache.getOrSet('user:7', async ({ key }) => {
      seen.push(key);
      await Promise.resolve();
      return new Map([[key, 7n]]);
    });
    expect(seen).toStrictEqual(['user:7']);
    expect(value).toStrictEqual(new Map([['user:7', 7n]]));
    expect(await cache.get('user:7')).toStrictEqual(new Map([['user:7', 7n]]));
  });

  it('runs the loader once for 1000 concurrent calls on one cold key, and all get its value', async () => {
    const { cache } = setup();
    const gate = deferred<{ id: number }>();
    let calls = 0;
    const loader = () => {
      calls++;
      return gate.promise;
    };
    const waiting = Array.from({ length: 1000 }, () => cache.getOrSet('cold', loader));
    expect(cache.stats().inflight).toBe(1);
    gate.resolve({ id: 42 });
    const values = await Promise.all(waiting);
    expect(calls).toBe(1);
    expect(values).toHaveLength(1000);
    for (const value of values) expect(value).toStrictEqual({ id: 42 });
    const stats = cache.stats();
    expect(stats.loader.calls).toBe(1);
    expect(stats.inflight).toBe(0);
    expect(await cache.getOrSet('cold', loader)).toStrictEqual({ id: 42 });
    expect(calls).toBe(1);
  });

  it('runs one loader per key when different keys are loaded at once', async () => {
    const { cache } = setup();
    const calls: string[] = [];
    const loader = async ({ key }: { key: string }) => {
      calls.push(key);
      await Promise.resolve();
      return key.toUpperCase();
    };
    const values = await Promise.all(['a', 'b', 'a', 'b', 'c'].map((key) => cache.getOrSet(key, loader)));
    expect(values).toStrictEqual(['A', 'B', 'A', 'B', 'C']);
    expect(calls.sort()).toStrictEqual(['a', 'b', 'c']);
  });

  it('gives a loader error to every waiter, does not cache it, and counts it', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    let calls = 0;
    const failing = () => {
      calls++;
      return gate.promise;
    };
    const waiting = Array.from({ length: 50 }, () => cache.getOrSet('k', failing));
    const boom = new Error('origin down');
    gate.reject(boom);
    const results = await Promise.allSettled(waiting);
    expect(calls).toBe(1);
    for (const result of results) expect(result).toStrictEqual({ status: 'rejected', reason: boom });
    expect(cache.stats().loader).toMatchObject({ calls: 1, errors: 1 });
    expect(cache.stats().inflight).toBe(0);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.getOrSet('k', () => 'recovered')).toBe('recovered');
    expect(cache.stats().loader).toMatchObject({ calls: 2, errors: 1 });
  });

  it('rejects, rather than throws, when the loader throws synchronously', async () => {
    const { cache } = setup();
    const boom = new Error('sync');
    const promise = cache.getOrSet('k', () => {
      throw boom;
    });
    await expect(promise).rejects.toBe(boom);
    expect(cache.stats().loader.errors).toBe(1);
  });

  it('rejects a loader that is not a function with a ConfigurationError', async () => {
    const { cache } = setup();
    await expect(cache.getOrSet('k', 'value' as never)).rejects.toThrow(
      'Expected the loader to be a function, got `"value"` (string)',
    );
    await expect(cache.getOrSet('k', () => 1, { ttl: -5 })).rejects.toBeInstanceOf(ConfigurationError);
  });

  it('returns an oversize loaded value uncached, counts it and reports it', async () => {
    const { cache } = setup({ maxValueBytes: 200 });
    const events: CacheEvents['error'][] = [];
    cache.on('error', (event) => events.push(event));
    const big = 'x'.repeat(500);
    let calls = 0;
    const loader = () => {
      calls++;
      return big;
    };
    expect(await cache.getOrSetWithMeta('big', loader)).toMatchObject({ value: big, source: 'origin' });
    expect(await cache.getOrSet('big', loader)).toBe(big);
    expect(calls).toBe(2);
    expect(await cache.get('big')).toBeUndefined();
    expect(cache.stats().uncached).toBe(2);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ operation: 'set', key: 'big' });
    expect(events[0]?.error).toBeInstanceOf(SerializationError);
    expect(events[0]?.error.message).toMatch(/exceeds maxValueBytes \(200 B\)/);
  });

  it('rejects a loaded value that cannot be encoded with a SerializationError naming the key', async () => {
    const { cache } = setup();
    const error = await cache.getOrSet('fn', () => ({ run: () => 1 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SerializationError);
    expect(error).toMatchObject({ key: 'fn', code: ErrorCode.Serialization });
  });
});

describe('bad keys', () => {
  const tooLong = 'k'.repeat(1025);
  const badKeys: [string, unknown][] = [
    ['an empty string', ''],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['an object', { id: 1 }],
    ['a string over maxKeyLength', tooLong],
    ['a key starting with __, which is reserved for locks', '__lock'],
  ];

  const calls: [string, (cache: Cache, key: never) => Promise<unknown>][] = [
    ['get', (cache, key) => cache.get(key)],
    ['getWithMeta', (cache, key) => cache.getWithMeta(key)],
    ['set', (cache, key) => cache.set(key, 1)],
    ['has', (cache, key) => cache.has(key)],
    ['delete', (cache, key) => cache.delete(key)],
    ['deleteMany', (cache, key) => cache.deleteMany(['ok', key])],
    ['mget', (cache, key) => cache.mget(['ok', key])],
    ['mset', (cache, key) => cache.mset([{ key, value: 1 }])],
    ['getOrSet', (cache, key) => cache.getOrSet(key, () => 1)],
    ['getOrSetWithMeta', (cache, key) => cache.getOrSetWithMeta(key, () => 1)],
  ];

  for (const [method, call] of calls) {
    it.each(badKeys)(`${method} rejects %s with an InvalidKeyError instead of throwing`, async (_name, key) => {
      const { cache } = setup();
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = call(cache, key as never);
      }).not.toThrow();
      const error = await promise?.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidKeyError);
      expect(error).toMatchObject({ code: ErrorCode.InvalidKey });
    });
  }

  it('names the limit and the bad key in the message', async () => {
    const { cache } = setup();
    await expect(cache.get('')).rejects.toThrow(
      'Expected the key to be a non-empty string of at most 1024 characters, got `""` (string)',
    );
  });

  it('says why a key starting with __ is refused, and accepts __ elsewhere in a key', async () => {
    const { cache } = setup();
    await expect(cache.get('__x')).rejects.toThrow(
      'Keys starting with `__` are reserved for tiercache, got `"__x"` (string)',
    );
    await cache.set('a__b', 1);
    await cache.set('_a', 2);
    expect(await cache.mget(['a__b', '_a'])).toStrictEqual([1, 2]);
  });

  it('accepts a key of exactly maxKeyLength characters', async () => {
    const { cache } = setup({ maxKeyLength: 8 });
    await cache.set('12345678', 'ok');
    expect(await cache.get('12345678')).toBe('ok');
    await expect(cache.get('123456789')).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it('rejects mget and deleteMany arguments that are not arrays', async () => {
    const { cache } = setup();
    await expect(cache.mget('a' as never)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.deleteMany('a' as never)).rejects.toBeInstanceOf(InvalidKeyError);
  });
});

describe('values set cannot hold', () => {
  it('rejects a circular value with a SerializationError whose key is the key', async () => {
    const { cache } = setup();
    const circular: Record<string, unknown> = { id: 1 };
    circular['self'] = circular;
    const error = await cache.set('loop', circular).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SerializationError);
    expect(error).toMatchObject({ key: 'loop', code: ErrorCode.Serialization });
    expect((error as Error).message).toBe('Cannot cache the value of `loop`: a circular value cannot be cached');
    expect(await cache.get('loop')).toBeUndefined();
  });

  it('rejects a function value with a SerializationError whose key is the key', async () => {
    const { cache } = setup();
    await expect(cache.set('fn', { handler: () => 1 })).rejects.toMatchObject({
      name: 'SerializationError',
      key: 'fn',
      message: 'Cannot cache the value of `fn`: a function cannot be cached',
    });
    await expect(cache.set('sym', Symbol('s'))).rejects.toMatchObject({ key: 'sym' });
  });

  it('refuses a value over maxValueBytes, counted in UTF-8 bytes, and keeps the previous one', async () => {
    const { cache, clock } = setup({ maxValueBytes: 200 });
    await cache.set('k', 'small');
    // 85 two-byte characters: the entry is under 200 characters but over 200 bytes.
    const value = 'é'.repeat(85);
    const entry = encodeEntry(createEntry(value, clock.now(), DEFAULTS.ttl, 0, []));
    expect(entry.length).toBeLessThan(200);
    expect(Buffer.byteLength(entry)).toBeGreaterThan(200);
    const error = await cache.set('k', value).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SerializationError);
    expect(error).toMatchObject({ key: 'k' });
    expect((error as Error).message).toBe(
      `Cannot cache the value of \`k\`: its encoded size ${Buffer.byteLength(entry)} B exceeds maxValueBytes (200 B)`,
    );
    expect(await cache.get('k')).toBe('small');
  });

  it('accepts an entry of exactly maxValueBytes and refuses one byte more', async () => {
    const { cache, clock } = setup({ maxValueBytes: 200 });
    const overhead = encodeEntry(createEntry('', clock.now(), DEFAULTS.ttl, 0, [])).length;
    const fits = 'a'.repeat(200 - overhead);
    await cache.set('k', fits);
    expect(await cache.get('k')).toBe(fits);
    await expect(cache.set('k', `${fits}a`)).rejects.toBeInstanceOf(SerializationError);
  });
});

describe('namespaces', () => {
  it('keep the same key apart and live under prefix:name:', async () => {
    const { cache } = setup({ prefix: 'app' });
    const user = cache.namespace('user');
    const users = cache.namespace('users');
    expect(user.prefix).toBe('app:user:');
    expect(users.prefix).toBe('app:users:');
    await user.set('1', 'one user');
    await users.set('1', 'many users');
    await cache.set('1', 'root');
    expect(await user.get('1')).toBe('one user');
    expect(await users.get('1')).toBe('many users');
    expect(await cache.get('1')).toBe('root');
  });

  it('clear only their own keys, not those of a sibling that shares a textual prefix', async () => {
    const { cache } = setup({ prefix: 'app' });
    const user = cache.namespace('user');
    const users = cache.namespace('users');
    await user.mset([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    await users.set('a', 3);
    await cache.set('user', 4);
    await user.clear();
    expect(await user.mget(['a', 'b'])).toStrictEqual([undefined, undefined]);
    expect(await users.get('a')).toBe(3);
    expect(await cache.get('user')).toBe(4);
  });

  it('are cleared with the cache that holds them', async () => {
    const { cache } = setup({ prefix: 'app' });
    const user = cache.namespace('user');
    await user.set('a', 1);
    await cache.set('b', 2);
    await cache.clear();
    expect(await user.get('a')).toBeUndefined();
    expect(await cache.get('b')).toBeUndefined();
    expect(cache.stats().memory?.entries).toBe(0);
  });

  it('nest, and share the memory, stats and single-flight of their cache', async () => {
    const { cache } = setup();
    const deep = cache.namespace('a').namespace('b');
    expect(deep.prefix).toBe('tiercache:a:b:');
    await deep.set('k', 1);
    expect(await deep.get('k')).toBe(1);
    expect(cache.stats().hits.memory).toBe(1);
    expect(cache.stats().memory?.entries).toBe(1);
  });

  it.each<[string, unknown]>([
    ['empty', ''],
    ['with a colon', 'a:b'],
    ['with a space', 'a b'],
    ['with a glob character', 'a*'],
    ['not a string', 5],
  ])('refuse a name that is %s', (_name, name) => {
    const { cache } = setup();
    expect(() => cache.namespace(name as string)).toThrow(ConfigurationError);
  });
});

describe('memory: false without redis', () => {
  it('stores nothing and runs the loader every time', async () => {
    const { cache } = setup({ memory: false });
    await cache.set('k', 1);
    expect(await cache.get('k')).toBeUndefined();
    let calls = 0;
    expect(await cache.getOrSetWithMeta('k', () => ++calls)).toMatchObject({ value: 1, source: 'origin' });
    expect(await cache.getOrSet('k', () => ++calls)).toBe(2);
    expect(cache.stats().memory).toBeNull();
  });
});

describe('close', () => {
  it('makes every later call reject with CacheClosedError', async () => {
    const { cache } = setup();
    const ns = cache.namespace('n');
    await cache.set('k', 1);
    await cache.close();
    const calls: [string, () => Promise<unknown>][] = [
      ['get', () => cache.get('k')],
      ['getWithMeta', () => cache.getWithMeta('k')],
      ['set', () => cache.set('k', 2)],
      ['has', () => cache.has('k')],
      ['delete', () => cache.delete('k')],
      ['deleteMany', () => cache.deleteMany(['k'])],
      ['mget', () => cache.mget(['k'])],
      ['mset', () => cache.mset([{ key: 'k', value: 2 }])],
      ['getOrSet', () => cache.getOrSet('k', () => 2)],
      ['getOrSetWithMeta', () => cache.getOrSetWithMeta('k', () => 2)],
      ['clear', () => cache.clear()],
      ['a namespace get', () => ns.get('k')],
    ];
    for (const [name, call] of calls) {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = call();
      }, name).not.toThrow();
      const error = await promise?.catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(CacheClosedError);
      expect(error, name).toMatchObject({ code: ErrorCode.Closed });
    }
  });

  it('can be called more than once and from a namespace', async () => {
    const { cache } = setup();
    await cache.namespace('n').close();
    await cache.close();
    await expect(cache.get('k')).rejects.toBeInstanceOf(CacheClosedError);
  });

  it('lets a load in flight finish for its callers', async () => {
    const { cache } = setup();
    const gate = deferred<string>();
    const loading = cache.getOrSet('k', () => gate.promise);
    const closing = cache.close();
    gate.resolve('done');
    expect(await loading).toBe('done');
    await closing;
  });
});

describe('on', () => {
  it("returns a disposer that stops the listener's events", async () => {
    const { cache } = setup({ maxValueBytes: 100 });
    const seen: (string | undefined)[] = [];
    const dispose = cache.on('error', (event) => seen.push(event.key));
    await cache.getOrSet('first', () => 'x'.repeat(200));
    dispose();
    await cache.getOrSet('second', () => 'x'.repeat(200));
    expect(seen).toStrictEqual(['first']);
    expect(cache.stats().uncached).toBe(2);
  });

  it('rejects a listener that is not a function', () => {
    const { cache } = setup();
    expect(() => cache.on('error', null as never)).toThrow(ConfigurationError);
  });
});
