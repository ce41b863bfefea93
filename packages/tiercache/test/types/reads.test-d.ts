/**
 * Type tests of the read features (getOrSetMany, adaptive caching, conditional refresh, tier control). Checked by
 * `npm run typecheck`; nothing here runs.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type {
  Cache,
  LoaderContext,
  ManyLoaderContext,
  ReadResult,
  StaleCopy,
  TierOptions,
  Unchanged,
} from '../../src/index.js';

declare const cache: Cache;

describe('getOrSetMany', () => {
  it('answers one value or undefined per key, typed by the loader', () => {
    expectTypeOf(cache.getOrSetMany(['a'], async (keys) => new Map(keys.map((k) => [k, 1])))).toEqualTypeOf<
      Promise<(number | undefined)[]>
    >();
    expectTypeOf(cache.getOrSetMany(['a'], (keys) => keys.map((k) => ({ k })))).toEqualTypeOf<
      Promise<({ k: string } | undefined)[]>
    >();
    expectTypeOf(cache.getOrSetManyWithMeta(['a'], (keys) => keys.map(() => 'x'))).toEqualTypeOf<
      Promise<ReadResult<string | undefined>[]>
    >();
  });

  it('gives the loader the missing keys and a context with per-key choices and stale copies', () => {
    expectTypeOf<ManyLoaderContext<number>['stale']>().toEqualTypeOf<ReadonlyMap<string, StaleCopy<number>>>();
    expectTypeOf<ManyLoaderContext['setTtl']>().parameters.toEqualTypeOf<
      [ttl: number | string, keys?: readonly string[]]
    >();
  });

  it('refuses a loader that returns neither a Map nor an array', () => {
    // @ts-expect-error a plain object is not a getOrSetMany answer
    void cache.getOrSetMany(['a'], () => ({ a: 1 }));
  });
});

describe('adaptive caching and conditional refresh', () => {
  it('lets a getOrSet loader return unchanged() without changing the value type', () => {
    expectTypeOf(
      cache.getOrSet('k', (ctx: LoaderContext<{ etag: string }>) =>
        ctx.stale?.value.etag === 'x' ? ctx.unchanged() : { etag: 'y' },
      ),
    ).toEqualTypeOf<Promise<{ etag: string }>>();
    expectTypeOf<LoaderContext['unchanged']>().returns.toEqualTypeOf<Unchanged>();
    expectTypeOf<LoaderContext<number>['stale']>().toEqualTypeOf<StaleCopy<number> | undefined>();
  });
});

describe('tier control', () => {
  it('is accepted by get, set and getOrSet and must be boolean', () => {
    expectTypeOf(cache.get<number>('k', { skipMemory: true })).toEqualTypeOf<Promise<number | undefined>>();
    void cache.set('k', 1, { ttl: '1m', skipRedis: true });
    void cache.getOrSet('k', () => 1, { skipMemory: true, negativeTtl: '5s' });
    expectTypeOf<TierOptions['skipRedis']>().toEqualTypeOf<boolean | undefined>();
    // @ts-expect-error a tier switch is a boolean
    void cache.get('k', { skipMemory: 'yes' });
  });
});
