/**
 * Type tests of the public API. They are checked by `npm run typecheck` (tsc over test/), which fails on a wrong type
 * and on an `@ts-expect-error` that no longer has an error to expect. Nothing here runs: `cache` is only declared.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { createCache } from '../../src/index.js';
import type {
  Cache,
  CacheError,
  CacheOptions,
  CacheStats,
  Disposer,
  LoaderContext,
  ReadResult,
  SerializationError,
  KeyGroupStats,
  Source,
  WarmProgress,
} from '../../src/index.js';
import { registerPrometheus } from '../../src/observability/prometheus.js';
import type { Registry } from 'prom-client';

declare const cache: Cache;

describe('getOrSet', () => {
  it('infers the value type from a synchronous loader', () => {
    expectTypeOf(cache.getOrSet('k', () => 42)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(cache.getOrSet('k', () => ({ id: 1, tags: ['a'] }))).toEqualTypeOf<
      Promise<{ id: number; tags: string[] }>
    >();
  });

  it('infers the value type from an async loader, without the Promise', () => {
    expectTypeOf(cache.getOrSet('k', async () => new Date())).toEqualTypeOf<Promise<Date>>();
    expectTypeOf(cache.getOrSet('k', () => Promise.resolve(['x']))).toEqualTypeOf<Promise<string[]>>();
  });

  it('gives the loader a context with the unprefixed key', () => {
    expectTypeOf(cache.getOrSet<string>)
      .parameter(1)
      .parameter(0)
      .toExtend<{ readonly key: string }>();
    expectTypeOf<LoaderContext['key']>().toEqualTypeOf<string>();
  });

  it('rejects a loader whose value does not match an explicit type argument', () => {
    // @ts-expect-error a number is not a string
    expectTypeOf(cache.getOrSet<string>('k', () => 1)).toBeObject();
  });

  it('accepts durations as numbers or strings, and tags as strings', () => {
    expectTypeOf(cache.getOrSet).toBeCallableWith('k', () => 1, { ttl: '5m', grace: 1000, tags: ['user'] });
    // @ts-expect-error a boolean is not a duration
    expectTypeOf(cache.getOrSet).toBeCallableWith('k', () => 1, { ttl: true });
    // @ts-expect-error tags is an array
    expectTypeOf(cache.getOrSet).toBeCallableWith('k', () => 1, { tags: 'user' });
  });
});

describe('getOrSetWithMeta', () => {
  it('says where the value came from as a closed union', () => {
    type Result = Awaited<ReturnType<typeof cache.getOrSetWithMeta<number>>>;
    expectTypeOf<Result>().toEqualTypeOf<ReadResult<number>>();
    expectTypeOf<Result['source']>().toEqualTypeOf<'memory' | 'redis' | 'origin' | 'stale'>();
    expectTypeOf<Source>().toEqualTypeOf<'memory' | 'redis' | 'origin' | 'stale'>();
    expectTypeOf<Result['value']>().toEqualTypeOf<number>();
    expectTypeOf<Result['expiresInMs']>().toEqualTypeOf<number>();
  });

  it('infers the value type from the loader', () => {
    expectTypeOf(cache.getOrSetWithMeta('k', async () => 1n))
      .resolves.toHaveProperty('value')
      .toEqualTypeOf<bigint>();
  });
});

describe('reads and writes', () => {
  it('reads unknown by default and T | undefined when asked', () => {
    expectTypeOf(cache.get('k')).toEqualTypeOf<Promise<unknown>>();
    expectTypeOf(cache.get<string>('k')).toEqualTypeOf<Promise<string | undefined>>();
    expectTypeOf(cache.getWithMeta<string>('k')).toEqualTypeOf<Promise<ReadResult<string> | undefined>>();
    expectTypeOf(cache.mget<number>(['a', 'b'])).toEqualTypeOf<Promise<(number | undefined)[]>>();
    expectTypeOf(cache.has('k')).toEqualTypeOf<Promise<boolean>>();
    expectTypeOf(cache.delete('k')).toEqualTypeOf<Promise<boolean>>();
    expectTypeOf(cache.deleteMany(['a'])).toEqualTypeOf<Promise<number>>();
  });

  it('takes mset entries with per-entry options', () => {
    expectTypeOf(cache.mset).toBeCallableWith([{ key: 'a', value: 1, ttl: '1m', tags: ['t'] }]);
    // @ts-expect-error an entry needs a key
    expectTypeOf(cache.mset).toBeCallableWith([{ value: 1 }]);
  });

  it('only takes string keys', () => {
    // @ts-expect-error a key is a string
    expectTypeOf(cache.get).toBeCallableWith(1);
    // @ts-expect-error keys are strings
    expectTypeOf(cache.deleteMany).toBeCallableWith([1]);
  });
});

describe('the rest of the surface', () => {
  it('returns a Cache from namespace and stats from stats()', () => {
    expectTypeOf(cache.namespace('user')).toEqualTypeOf<Cache>();
    expectTypeOf(cache.stats()).toEqualTypeOf<CacheStats>();
    expectTypeOf(cache.prefix).toEqualTypeOf<string>();
    expectTypeOf(cache.close()).toEqualTypeOf<Promise<void>>();
  });

  it('types the error event and returns a disposer', () => {
    expectTypeOf(cache.on('error', () => undefined)).toEqualTypeOf<Disposer>();
    cache.on('error', (event) => {
      expectTypeOf(event.error).toEqualTypeOf<CacheError>();
      expectTypeOf(event.key).toEqualTypeOf<string | undefined>();
    });
    // @ts-expect-error there is no such event
    expectTypeOf(cache.on).toBeCallableWith('nope', () => undefined);
  });

  it('keeps SerializationError a CacheError with a key', () => {
    expectTypeOf<SerializationError>().toExtend<CacheError>();
    expectTypeOf<SerializationError['key']>().toEqualTypeOf<string | undefined>();
  });
});

describe('createCache options', () => {
  it('accepts every documented option shape', () => {
    expectTypeOf(createCache).toBeCallableWith({
      prefix: 'app',
      redis: 'redis://127.0.0.1:6379',
      memory: { maxEntries: 100, maxBytes: 1_000_000, maxTtl: '1h' },
      ttl: '5m',
      grace: 0,
      timeouts: { redisMs: '100ms' },
      maxValueBytes: 1024,
      maxKeyLength: 64,
      writeErrors: 'throw',
      clock: { now: () => 0 },
    });
    expectTypeOf(createCache).toBeCallableWith({ memory: false, redis: { host: '127.0.0.1', port: 6379 } });
    expectTypeOf(createCache).toBeCallableWith();
    expectTypeOf(createCache).returns.toEqualTypeOf<Cache>();
  });

  it('rejects unknown options and wrong types at compile time', () => {
    // @ts-expect-error no such option
    expectTypeOf(createCache).toBeCallableWith({ ttls: 5 });
    // @ts-expect-error a boolean is not a duration
    expectTypeOf(createCache).toBeCallableWith({ ttl: true });
    // @ts-expect-error maxEntries is a number
    expectTypeOf(createCache).toBeCallableWith({ memory: { maxEntries: '10' } });
    // @ts-expect-error memory is an object or false, not true
    expectTypeOf(createCache).toBeCallableWith({ memory: true });
    // @ts-expect-error writeErrors is 'report' or 'throw'
    expectTypeOf(createCache).toBeCallableWith({ writeErrors: 'ignore' });
    // @ts-expect-error prefix is a string
    expectTypeOf(createCache).toBeCallableWith({ prefix: 5 });
    // @ts-expect-error a clock returns a number
    expectTypeOf(createCache).toBeCallableWith({ clock: { now: () => 'now' } });
    // @ts-expect-error redis is a URL, options or a client
    expectTypeOf(createCache).toBeCallableWith({ redis: 6379 });
  });

  it('keeps options readonly', () => {
    expectTypeOf<CacheOptions['ttl']>().toEqualTypeOf<number | string | undefined>();
    const options: CacheOptions = { ttl: 5 };
    // @ts-expect-error options are readonly
    options.ttl = 6;
  });
});

describe('observability', () => {
  it('types health() status, stats() latency and key groups', () => {
    expectTypeOf(cache.health().status).toEqualTypeOf<'ok' | 'degraded' | 'down'>();
    expectTypeOf(cache.health().redis.latencyMs).toEqualTypeOf<number | null>();
    expectTypeOf(cache.stats().latency.redis.p99).toEqualTypeOf<number>();
    expectTypeOf(cache.stats().groups['user']).toEqualTypeOf<KeyGroupStats | undefined>();
  });

  it('takes a prom-client registry and returns a disposer', () => {
    expectTypeOf(registerPrometheus).parameter(1).toHaveProperty('registry').toEqualTypeOf<Registry>();
    expectTypeOf(registerPrometheus).returns.toEqualTypeOf<() => void>();
    // @ts-expect-error the registry is required
    registerPrometheus(cache, {});
  });

  it('refuses keyGroup that is not a function of the key', () => {
    createCache({ keyGroup: (key: string) => key.slice(0, 3), maxKeyGroups: 16, instrumentation: false });
    // @ts-expect-error keyGroup returns a string
    createCache({ keyGroup: (key: string) => key.length });
  });
});

describe('write strategies', () => {
  it('resolves writeThrough with the writer result, sync or async', () => {
    expectTypeOf(cache.writeThrough('k', 1, () => 'row')).toEqualTypeOf<Promise<string>>();
    expectTypeOf(cache.writeThrough('k', { n: 1 }, async (v) => v.n)).toEqualTypeOf<Promise<number>>();
  });

  it('types the write-behind batch by the queue value type', () => {
    const queue = cache.writeBehindQueue<{ total: number }>('orders', {
      write: (batch) => {
        expectTypeOf(batch[0]?.value).toEqualTypeOf<{ total: number } | undefined>();
        expectTypeOf(batch[0]?.id).toEqualTypeOf<string | undefined>();
      },
    });
    expectTypeOf(queue.deadLetters()).resolves.items.toHaveProperty('value').toEqualTypeOf<{ total: number }>();
    // @ts-expect-error the queue option is required
    void cache.writeBehind('k', 1, { ttl: '1m' });
  });

  it('answers numbers from a counter and counts from warm', () => {
    const views = cache.counter('views', { flush: (deltas, batchId) => void [deltas.get('x'), batchId] });
    expectTypeOf(views.incr('p')).toEqualTypeOf<Promise<number>>();
    expectTypeOf(cache.warm([{ key: 'a', value: 1 }])).resolves.toEqualTypeOf<WarmProgress>();
  });
});
