import { afterEach, describe, expect, it } from 'vitest';
import { ConfigurationError, ConnectionError, createCache } from '../../src/index.js';
import type { Cache, CacheEvents, CacheOptions, LoaderContext, ManyLoaderContext } from '../../src/index.js';
import { ChaosRemoteTier, InMemoryRemoteTier } from '../../src/testing/index.js';
import { decodeEntry } from '../../src/entry.js';
import { MINUTE, SECOND, fakeClock } from './fake-clock.js';
import type { FakeClock } from './fake-clock.js';

let open: Cache[] = [];

/** A cache on a fake clock over an in-memory remote tier (shared when given); closed after each test. */
function setup(
  options: Omit<CacheOptions, 'clock' | 'redis'> = {},
  shared?: { clock: FakeClock; remote: InMemoryRemoteTier },
): { cache: Cache; clock: FakeClock; remote: InMemoryRemoteTier } {
  const clock = shared?.clock ?? fakeClock();
  const remote = shared?.remote ?? new InMemoryRemoteTier({ clock });
  const cache = createCache({ bus: false, ...options, clock, redis: remote });
  open.push(cache);
  return { cache, clock, remote };
}

afterEach(async () => {
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

const keysOf = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `p:${from + i}`);

/** A batch loader that records its calls and answers `v(<key>)` for every key it is given. */
function recorder(answer: (key: string) => string | undefined = (key) => `v(${key})`) {
  const calls: string[][] = [];
  const loader = async (keys: string[]) => {
    calls.push(keys);
    return new Map(keys.map((key) => [key, answer(key)]));
  };
  return { calls, loader };
}

describe('getOrSetMany', () => {
  it('loads only the keys missing from memory and Redis, in one loader call, and answers in key order', async () => {
    const { cache, remote } = setup();
    const keys = keysOf(50);
    // 40 in Redis only (another instance wrote them), 5 in this instance's memory too, 5 cold.
    const other = setup({}, { clock: fakeClock(), remote }).cache;
    await other.mset(keys.slice(0, 40).map((key) => ({ key, value: `v(${key})` })));
    await cache.mset(keys.slice(40, 45).map((key) => ({ key, value: `v(${key})` })));
    const { calls, loader } = recorder();
    const values = await cache.getOrSetMany(keys, loader);
    expect(calls).toStrictEqual([keys.slice(45)]);
    expect(values).toStrictEqual(keys.map((key) => `v(${key})`));
    const again = await cache.getOrSetManyWithMeta(keys, loader);
    expect(calls).toHaveLength(1);
    expect(new Set(again.map((r) => r.source))).toStrictEqual(new Set(['memory']));
  });

  it('accepts an array aligned with the keys the loader was given', async () => {
    const { cache } = setup();
    await cache.set('p:1', 'one');
    const seen: string[][] = [];
    const values = await cache.getOrSetMany(['p:0', 'p:1', 'p:2'], (keys) => {
      seen.push(keys);
      return keys.map((key) => key.toUpperCase());
    });
    expect(seen).toStrictEqual([['p:0', 'p:2']]);
    expect(values).toStrictEqual(['P:0', 'one', 'P:2']);
  });

  it('joins loads already in flight: concurrent callers and getOrSet load each cold key once', async () => {
    const { cache } = setup();
    const keys = keysOf(50);
    await cache.mset(keys.slice(0, 45).map((key) => ({ key, value: `v(${key})` })));
    const { calls, loader } = recorder();
    let singles = 0;
    const single = cache.getOrSet('p:47', () => {
      singles++;
      return 'single';
    });
    const all = await Promise.all(Array.from({ length: 10 }, () => cache.getOrSetMany(keys, loader)));
    expect(await single).toBe('single');
    expect(singles).toBe(1);
    expect(calls.flat().sort()).toStrictEqual(['p:45', 'p:46', 'p:48', 'p:49']);
    expect(calls).toHaveLength(1);
    for (const values of all) expect(values[47]).toBe('single');
  });

  it('answers undefined for a key the loader left out and stores nothing for it', async () => {
    const { cache, remote } = setup();
    const { calls, loader } = recorder((key) => (key === 'p:1' ? undefined : 'x'));
    expect(await cache.getOrSetMany(['p:0', 'p:1'], loader)).toStrictEqual(['x', undefined]);
    expect(await remote.get('tiercache:p:1')).toBeUndefined();
    await cache.getOrSetMany(['p:0', 'p:1'], loader);
    expect(calls).toStrictEqual([['p:0', 'p:1'], ['p:1']]);
  });

  it('remembers a left-out key for negativeTtl when asked, then asks again', async () => {
    const { cache, clock } = setup({ ttl: '10m' });
    const { calls, loader } = recorder((key) => (key === 'p:1' ? undefined : 'x'));
    await cache.getOrSetMany(['p:0', 'p:1'], loader, { negativeTtl: '5s' });
    const meta = await cache.getOrSetManyWithMeta(['p:0', 'p:1'], loader, { negativeTtl: '5s' });
    expect(meta.map((r) => [r.value, r.source])).toStrictEqual([
      ['x', 'memory'],
      [undefined, 'memory'],
    ]);
    expect(calls).toHaveLength(1);
    clock.advance(5 * SECOND);
    await cache.getOrSetMany(['p:0', 'p:1'], loader, { negativeTtl: '5s' });
    expect(calls).toStrictEqual([['p:0', 'p:1'], ['p:1']]);
  });

  it('serves stale copies per key when the loader fails, and rejects for a key with none', async () => {
    const { cache, clock } = setup({ ttl: '1m', grace: '1h' });
    await cache.set('p:0', 'old0');
    await cache.set('p:2', 'fresh2', { ttl: '1h' });
    clock.advance(MINUTE);
    const failing = async (): Promise<Map<string, string>> => {
      throw new Error('db down');
    };
    const meta = await cache.getOrSetManyWithMeta(['p:0', 'p:2'], failing);
    expect(meta.map((r) => [r.value, r.source])).toStrictEqual([
      ['old0', 'stale'],
      ['fresh2', 'memory'],
    ]);
    await expect(cache.getOrSetMany(['p:0', 'p:1', 'p:2'], failing)).rejects.toThrow('db down');
  });

  it('rejects a loader answer that is neither a Map nor an array aligned with its keys', async () => {
    const { cache } = setup();
    await expect(cache.getOrSetMany(['p:0', 'p:1'], () => ['only one'])).rejects.toThrow(
      'Expected the getOrSetMany loader to return a Map or an array of 2 values',
    );
  });

  it('lets the loader choose TTL and tags per key', async () => {
    const { cache, clock } = setup({ ttl: '1h' });
    const { loader } = recorder();
    await cache.getOrSetMany(['p:0', 'p:1'], async (keys, ctx: ManyLoaderContext<string>) => {
      ctx.setTtl('10s', ['p:0']);
      ctx.setTags(['cat:7']);
      return loader(keys);
    });
    clock.advance(10 * SECOND);
    expect(await cache.get('p:0')).toBeUndefined();
    expect(await cache.get('p:1')).toBe('v(p:1)');
    await cache.invalidateTags(['cat:7']);
    expect(await cache.get('p:1')).toBeUndefined();
  });
});

describe('adaptive caching in getOrSet', () => {
  it('stores a value under the TTL, grace and tags the loader chose', async () => {
    const { cache, clock, remote } = setup({ ttl: '1h' });
    const value = await cache.getOrSet('user:1', (ctx) => {
      ctx.setTtl('30s');
      ctx.setGrace('1m');
      ctx.setTags(['org:9']);
      return 'ada';
    });
    expect(value).toBe('ada');
    expect(await cache.getWithMeta('user:1')).toMatchObject({ expiresInMs: 30 * SECOND });
    expect(remote.pttl('tiercache:user:1')).toBe(90 * SECOND);
    clock.advance(30 * SECOND);
    expect(await cache.get('user:1')).toBeUndefined();
    await cache.set('user:2', 'x', { tags: ['org:9'] });
    await cache.invalidateTags(['org:9']);
    expect(await remote.get('tiercache:user:1')).toBeUndefined();
  });

  it('caches nothing when the loader says skip, and loads again next time', async () => {
    const { cache, remote } = setup();
    let calls = 0;
    const load = (ctx: { skip(): void }) => {
      calls++;
      ctx.skip();
      return 'not now';
    };
    expect(await cache.getOrSetWithMeta('k', load)).toMatchObject({ value: 'not now', source: 'origin' });
    expect(await cache.getOrSet('k', load)).toBe('not now');
    expect(calls).toBe(2);
    expect(await remote.get('tiercache:k')).toBeUndefined();
  });

  it('rejects a bad choice with a message naming it', async () => {
    const { cache } = setup();
    await expect(cache.getOrSet('k', (ctx) => (ctx.setTtl(-5), 1))).rejects.toThrow(
      'Expected `ttl` to be a positive duration',
    );
  });

  it('remembers an undefined result for negativeTtl, without grace', async () => {
    const { cache, clock } = setup({ ttl: '1h', grace: '1h' });
    let calls = 0;
    const load = () => {
      calls++;
      return undefined;
    };
    await cache.getOrSet('missing', load, { negativeTtl: '2s' });
    await cache.getOrSet('missing', load, { negativeTtl: '2s' });
    expect(calls).toBe(1);
    clock.advance(2 * SECOND);
    await cache.getOrSet('missing', load, { negativeTtl: '2s' });
    expect(calls).toBe(2);
  });

  it('validates negativeTtl with a precise message', async () => {
    const { cache } = setup();
    await expect(cache.getOrSet('k', () => 1, { negativeTtl: -5 })).rejects.toThrow(ConfigurationError);
    await expect(cache.getOrSet('k', () => 1, { negativeTtl: -5 })).rejects.toThrow(
      'Expected `negativeTtl` to be a positive duration (milliseconds or a string like',
    );
  });
});

describe('conditional refresh', () => {
  it('gives the loader the stale copy and renews it in place when it answers unchanged', async () => {
    const { cache, clock, remote } = setup({ ttl: '1m', grace: '1h' });
    await cache.set('doc', { etag: 'a1', body: 'hello' });
    const written = await remote.get('tiercache:doc');
    const createdAt = clock.now();
    clock.advance(2 * MINUTE);
    const seen: unknown[] = [];
    const result = await cache.getOrSetWithMeta<{ etag: string; body: string }>('doc', (ctx) => {
      seen.push(ctx.stale);
      return ctx.stale?.value.etag === 'a1' ? ctx.unchanged() : { etag: 'b2', body: 'new' };
    });
    expect(seen).toStrictEqual([
      {
        value: { etag: 'a1', body: 'hello' },
        createdAt,
        expiresAt: createdAt + MINUTE,
        graceUntil: createdAt + MINUTE + 3600_000,
        tags: [],
      },
    ]);
    expect(result).toMatchObject({ value: { etag: 'a1', body: 'hello' }, source: 'origin', expiresInMs: MINUTE });
    const stored = (await remote.get('tiercache:doc')) as string;
    // Same creation time and value bytes; only the expiry fields moved.
    const withoutExpiry = (text: string): string => text.replace(/^(\[2,\d,\d+,)\d+,\d+,/, '$1');
    expect(withoutExpiry(stored)).toBe(withoutExpiry(written as string));
    expect(decodeEntry(stored)).toMatchObject({ createdAt, expiresAt: clock.now() + MINUTE });
    expect(remote.pttl('tiercache:doc')).toBe(MINUTE + 3600_000);
    expect(await cache.getWithMeta('doc')).toMatchObject({ source: 'memory', expiresInMs: MINUTE });
  });

  it('rejects unchanged when there is no stale copy to keep', async () => {
    const { cache } = setup();
    await expect(cache.getOrSet('doc', (ctx) => ctx.unchanged())).rejects.toThrow('answered "unchanged"');
  });

  it('renews the keys a getOrSetMany loader marks unchanged and stores the others', async () => {
    const { cache, clock } = setup({ ttl: '1m', grace: '1h' });
    await cache.mset([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    clock.advance(2 * MINUTE);
    const values = await cache.getOrSetMany<number>(['a', 'b'], (keys, ctx) => {
      expect([...ctx.stale.keys()]).toStrictEqual(['a', 'b']);
      ctx.unchanged(['a']);
      return new Map([['b', 20]]);
    });
    expect(values).toStrictEqual([1, 20]);
    expect(await cache.getWithMeta('a')).toMatchObject({ value: 1, expiresInMs: MINUTE });
  });
});

describe('per-call tier control', () => {
  it('set with skipRedis stays in this process; get with skipRedis reads memory only', async () => {
    const { cache, remote } = setup();
    await cache.set('local', 'mine', { skipRedis: true });
    expect(await remote.get('tiercache:local')).toBeUndefined();
    expect(await cache.get('local')).toBe('mine');
    const other = setup({}, { clock: fakeClock(), remote }).cache;
    await other.set('remote-only', 'theirs');
    expect(await cache.get('remote-only', { skipRedis: true })).toBeUndefined();
  });

  it('set with skipMemory writes Redis only and drops the memory copy', async () => {
    const { cache, remote } = setup();
    await cache.set('k', 'old');
    await cache.set('k', 'new', { skipMemory: true });
    expect(await remote.get('tiercache:k')).toContain('"new"');
    // Read from Redis and not kept: a second instance's change is seen at once.
    expect(await cache.getWithMeta('k', { skipMemory: true })).toMatchObject({ value: 'new', source: 'redis' });
    const other = setup({}, { clock: fakeClock(), remote }).cache;
    await other.set('k', 'newer');
    expect(await cache.get('k', { skipMemory: true })).toBe('newer');
  });

  it('getOrSet with skipMemory reads and writes Redis only', async () => {
    const { cache, remote } = setup();
    expect(await cache.getOrSetWithMeta('k', () => 'v', { skipMemory: true })).toMatchObject({ source: 'origin' });
    expect(await remote.get('tiercache:k')).toContain('"v"');
    expect(await cache.getOrSetWithMeta('k', () => 'w', { skipMemory: true })).toMatchObject({
      value: 'v',
      source: 'redis',
    });
    expect(await cache.getOrSetWithMeta('k', () => 'w', { skipMemory: true })).toMatchObject({ source: 'redis' });
  });

  it('getOrSet with skipRedis neither reads nor writes Redis', async () => {
    const { cache, remote } = setup();
    const other = setup({}, { clock: fakeClock(), remote }).cache;
    await other.set('k', 'in redis');
    expect(await cache.getOrSet('k', () => 'loaded', { skipRedis: true })).toBe('loaded');
    expect(await remote.get('tiercache:k')).toContain('"in redis"');
    expect(await cache.getWithMeta('k')).toMatchObject({ value: 'loaded', source: 'memory' });
  });

  it('rejects a tier switch that is not a boolean', async () => {
    const { cache } = setup();
    await expect(cache.get('k', { skipMemory: 1 as unknown as boolean })).rejects.toThrow(
      'Expected `skipMemory` to be a boolean, got `1` (number)',
    );
  });
});

describe('getOrSetMany across instances and without Redis', () => {
  it('two instances sharing one Redis load each cold key once between them', async () => {
    const { cache: a, clock, remote } = setup();
    const { cache: b } = setup({}, { clock, remote });
    const loaded: string[] = [];
    const loader = async (keys: string[]) => {
      loaded.push(...keys);
      await new Promise((resolve) => setTimeout(resolve, 30));
      return keys.map((key) => `v(${key})`);
    };
    const keys = keysOf(6);
    const [fromA, fromB] = await Promise.all([a.getOrSetMany(keys, loader), b.getOrSetMany(keys, loader)]);
    expect(loaded.sort()).toStrictEqual([...keys].sort());
    expect(fromA).toStrictEqual(fromB);
  });

  it('works memory-only: one loader call for the keys memory lacks', async () => {
    const clock = fakeClock();
    const cache = createCache({ clock });
    open.push(cache);
    await cache.set('p:0', 'warm');
    const { calls, loader } = recorder();
    expect(await cache.getOrSetMany(['p:0', 'p:1', 'p:2'], loader)).toStrictEqual(['warm', 'v(p:1)', 'v(p:2)']);
    expect(calls).toStrictEqual([['p:1', 'p:2']]);
  });

  it('a refresh-ahead whose loader answers unchanged keeps the value and pushes the expiry out', async () => {
    const { cache, clock, remote } = setup({ ttl: '10s' });
    let version = 1;
    const seen: (number | undefined)[] = [];
    const load = (ctx: LoaderContext<{ v: number }>) => {
      seen.push(ctx.stale?.value.v);
      return ctx.stale?.value.v === version ? ctx.unchanged() : { v: version };
    };
    const options = { refreshAhead: 0.5 };
    await cache.getOrSet('cfg', load, options);
    const createdAt = clock.now();
    clock.advance(6 * SECOND);
    await cache.getOrSet('cfg', load, options); // a hit past half the TTL: one background refresh
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).toStrictEqual([undefined, 1]);
    const stored = decodeEntry((await remote.get('tiercache:cfg')) as string);
    expect(stored).toMatchObject({ createdAt, expiresAt: clock.now() + 10 * SECOND });
    version = 2;
    clock.advance(9 * SECOND);
    expect(await cache.get('cfg')).toStrictEqual({ v: 1 });
  });
});

describe('getOrSetMany while Redis fails', () => {
  it('still answers every key with one loader call for the keys memory lacks', async () => {
    const clock = fakeClock();
    const chaos = new ChaosRemoteTier(new InMemoryRemoteTier({ clock }));
    const cache = createCache({ clock, redis: chaos, breaker: false, bus: false });
    open.push(cache);
    await cache.set('p:0', 'warm');
    chaos.alwaysThrow();
    const { calls, loader } = recorder();
    const meta = await cache.getOrSetManyWithMeta(['p:0', 'p:1', 'p:2'], loader);
    expect(meta.map((r) => [r.value, r.source])).toStrictEqual([
      ['warm', 'memory'],
      ['v(p:1)', 'origin'],
      ['v(p:2)', 'origin'],
    ]);
    expect(calls).toStrictEqual([['p:1', 'p:2']]);
  });
});

/** A Redis Cluster with one master down, as the tier reports it: keys on that node answer its error, the rest answer. */
class OneNodeDown extends InMemoryRemoteTier {
  readonly down = new ConnectionError('Connection is closed (the master of 127.0.0.1:7001)');

  override async getMany(keys: readonly string[]): ReturnType<InMemoryRemoteTier['getMany']> {
    const values = await super.getMany(keys);
    return values.map((value, i) => ((keys[i] as string).endsWith('-down') ? this.down : value));
  }

  override async readOrLock(
    ...args: Parameters<InMemoryRemoteTier['readOrLock']>
  ): ReturnType<InMemoryRemoteTier['readOrLock']> {
    const replies = await super.readOrLock(...args);
    return replies.map((reply, i) => ((args[0][i]?.key ?? '').endsWith('-down') ? this.down : reply));
  }
}

describe('a multi-key read whose cluster node is down for some keys', () => {
  it('answers the other keys from Redis, the node’s keys as misses (or loads), and reports the node once', async () => {
    const clock = fakeClock();
    const remote = new OneNodeDown({ clock });
    const writer = setup({ memory: false }, { clock, remote }).cache;
    const keys = ['a-up', 'b-down', 'c-up', 'd-down'];
    await writer.mset(keys.map((key) => ({ key, value: key })));
    const { cache } = setup({ memory: false }, { clock, remote });
    const errors: CacheEvents['error'][] = [];
    cache.on('error', (event) => errors.push(event));

    expect(await cache.mget(keys)).toStrictEqual(['a-up', undefined, 'c-up', undefined]);
    expect(errors.map((e) => [e.operation, e.error])).toStrictEqual([['get', remote.down]]);
    // One turn's gets are one batch: the same answer per key.
    expect(await Promise.all(keys.map((key) => cache.getWithMeta(key)))).toMatchObject([
      { source: 'redis' },
      undefined,
      { source: 'redis' },
      undefined,
    ]);
    expect(cache.stats()).toMatchObject({ hits: { redis: 4 }, misses: 4 });
    // A turn's loads take the "value or lock" step (the stampede lock is on by default), which answers per key too:
    // the node's keys load without the lock, as when Redis is unreachable; the others are hits. The lock step's error
    // is reported as a read's.
    const loads: string[] = [];
    const values = await Promise.all(keys.map((key) => cache.getOrSet(key, () => (loads.push(key), `loaded ${key}`))));
    expect(values).toStrictEqual(['a-up', 'loaded b-down', 'c-up', 'loaded d-down']);
    expect(loads).toStrictEqual(['b-down', 'd-down']);
    expect(errors.map((e) => [e.operation, e.error])).toStrictEqual([
      ['get', remote.down],
      ['get', remote.down],
      ['get', remote.down],
    ]);
    // Each batch's failed share counts against the breaker once, as a failed call would: a dead master opens it.
    const strict = setup({ memory: false, breaker: { threshold: 3, minDistinctKeys: 1 } }, { clock, remote }).cache;
    strict.on('error', () => {});
    for (let i = 0; i < 3; i++) await strict.mget(keys);
    expect(strict.stats().breaker?.state).toBe('open');
  });
});
