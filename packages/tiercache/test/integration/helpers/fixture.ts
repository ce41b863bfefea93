import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { startRedis, stopAllRedis } from './redis-server.js';
import type { RedisProcess } from './redis-server.js';
import { closeRawClients, rawClient, sleep, trackUnhandledRejections, waitFor } from './support.js';

export interface RedisFixture {
  /** The file's own redis-server (set in beforeAll). */
  readonly redis: RedisProcess;
  /** A raw client on it, for checks behind the cache's back. */
  readonly raw: Redis;
  /** A cache on that server, connected before it is returned, closed after the test. */
  open(prefix: string, options?: CacheOptions): Promise<Cache>;
  /** Closes `cache` after the test too. */
  track<T extends Cache>(cache: T): T;
  /** The caches closed after the current test (push to add more). */
  readonly caches: Cache[];
  /** Unhandled rejections seen so far in the current test (each test fails if any are left at its end). */
  readonly unhandled: readonly unknown[];
}

export interface RedisFixtureOptions {
  /** Options every `open` starts from (the test's own options win). */
  readonly cacheDefaults?: CacheOptions;
  /** Fail each test that leaves an unhandled rejection behind. @default true */
  readonly checkUnhandled?: boolean;
}

/**
 * The lifecycle most integration files share: one redis-server for the file, a raw client, caches closed after
 * each test, no unhandled rejections, everything stopped at the end. Call at the top level of a test file.
 */
export function useRedis(options: RedisFixtureOptions = {}): RedisFixture {
  const checkUnhandled = options.checkUnhandled ?? true;
  const caches: Cache[] = [];
  let redis: RedisProcess | undefined;
  let raw: Redis | undefined;
  let unhandled: ReturnType<typeof trackUnhandledRejections> | undefined;

  beforeAll(async () => {
    if (checkUnhandled) unhandled = trackUnhandledRejections();
    redis = await startRedis();
    raw = await rawClient(redis.port);
  });

  afterEach(async () => {
    await Promise.all(caches.splice(0).map((cache) => cache.close()));
    if (unhandled !== undefined) {
      await sleep(20);
      expect(unhandled.reasons).toEqual([]);
    }
  });

  afterAll(async () => {
    unhandled?.dispose();
    await closeRawClients();
    await stopAllRedis();
  });

  const fixture: RedisFixture = {
    caches,
    get unhandled(): readonly unknown[] {
      return unhandled?.reasons ?? [];
    },
    get redis(): RedisProcess {
      if (redis === undefined) throw new Error('useRedis: the server starts in beforeAll');
      return redis;
    },
    get raw(): Redis {
      if (raw === undefined) throw new Error('useRedis: the raw client connects in beforeAll');
      return raw;
    },
    track<T extends Cache>(cache: T): T {
      caches.push(cache);
      return cache;
    },
    async open(prefix: string, cacheOptions: CacheOptions = {}): Promise<Cache> {
      const cache = fixture.track(
        createCache({ prefix, redis: fixture.redis.url, ...options.cacheDefaults, ...cacheOptions }),
      );
      await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
      return cache;
    },
  };
  return fixture;
}
