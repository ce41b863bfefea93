import { createCache } from 'tiercache';
import type { Cache, CacheOptions, CacheStats, GetOrSetOptions, ManyLoader, ReadResult } from 'tiercache';
import type { FastifyBaseLogger } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';

declare module 'fastify' {
  interface FastifyInstance {
    cache: Cache;
    /** `getOrSetWithMeta`, or a plain loader call when CACHE_DISABLED is set (the load comparison's baseline). */
    cached<T>(key: string, load: () => Promise<T>, options?: GetOrSetOptions): Promise<ReadResult<T>>;
    /** `getOrSetManyWithMeta`, or one plain loader call for every key when CACHE_DISABLED is set. */
    cachedMany<T>(
      keys: readonly string[],
      load: ManyLoader<T>,
      options?: GetOrSetOptions,
    ): Promise<ReadResult<T | undefined>[]>;
    cacheStatus(): CacheStatus;
  }
}

/** What the routes and /health need to know about the cache's connection to Redis. */
export interface CacheStatus {
  readonly redis: CacheStats['redis']['state'];
  /** The circuit breaker's state, when the library has one and it is on. */
  readonly breaker: string | null;
  /** True when reads and writes go through Redis now. */
  readonly shared: boolean;
}

export function cacheOptions(config: Config): CacheOptions {
  if (config.cacheDisabled) {
    // No tier at all, so the baseline pays for every read; the routes bypass the cache then (`cached`).
    return { prefix: config.cachePrefix, memory: false };
  }
  return {
    prefix: config.cachePrefix,
    ttl: '5m',
    redis: redisOption(config.redis),
    // The library's default with Redis, spelled out because the service depends on it: a write on one instance drops
    // the copy in every other instance's memory tier (test/two-instances.test.ts).
    bus: true,
    // Both on by default; the switches exist for the benchmark that compares batching on and off (bench W9).
    ...(config.cacheMemory ? {} : { memory: false as const }),
    ...(config.cacheBatching ? {} : { batching: false as const }),
  };
}

function redisOption(redis: Config['redis']): NonNullable<CacheOptions['redis']> {
  if (redis.kind === 'cluster') return { cluster: redis.nodes.map((node) => ({ ...node })) };
  if (redis.kind === 'sentinel') return { sentinels: redis.sentinels.map((s) => ({ ...s })), name: redis.name };
  return redis.url;
}

export function createServiceCache(config: Config): Cache {
  return createCache(cacheOptions(config));
}

export function cacheStatus(cache: Cache): CacheStatus {
  const stats = cache.stats();
  const breaker = stats.breaker?.state ?? null;
  return { redis: stats.redis.state, breaker, shared: stats.redis.state === 'ready' && breaker !== 'open' };
}

/**
 * Logs Redis going away once (with how to start it) and coming back once, from the cache's own `redis:down` and
 * `redis:up` events, instead of a line per failed command or reconnect attempt. The cache counts those; the dashboard
 * charts them. Commands that failed are logged at debug level.
 */
/** `where`: the Redis target as config.redisTarget describes it (no password). */
export function watchRedis(cache: Cache, where: string, log: FastifyBaseLogger): () => void {
  let wasUp = false;
  const stops = [
    cache.on('redis:down', ({ error }) => {
      log.warn(
        `Redis is not reachable at ${where} (${error?.message ?? (wasUp ? 'connection lost' : 'no connection')}): ` +
          'serving from memory + the database, /health reports degraded. ' +
          'Start Redis with `redis-server --daemonize yes` (Debian: `apt-get install redis-server`).',
      );
    }),
    cache.on('redis:up', () => {
      if (wasUp) log.info(`Redis is back at ${where}: reads and writes go through it again`);
      wasUp = true;
    }),
    cache.on('error', ({ operation, key, error }) => {
      if (operation !== 'connection') log.debug({ operation, key, code: error.code }, `cache: ${error.message}`);
    }),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}

export interface CachePluginOptions {
  readonly config: Config;
}

/** The cache as `app.cache` (with `cached` and `cacheStatus`) for every route (fastify-plugin), closed on close. */
export const cachePlugin = fp<CachePluginOptions>(
  async (app, { config }) => {
    const cache = createServiceCache(config);
    const unwatch = config.cacheDisabled ? () => {} : watchRedis(cache, config.redisTarget, app.log);
    if (config.cacheDisabled) app.log.warn('CACHE_DISABLED is set: every read goes to the database');
    app.decorate('cache', cache);
    app.decorate('cacheStatus', () => cacheStatus(cache));
    app.decorate(
      'cached',
      <T>(key: string, load: () => Promise<T>, options?: GetOrSetOptions): Promise<ReadResult<T>> => {
        if (!config.cacheDisabled) return cache.getOrSetWithMeta(key, load, options);
        return load().then((value) => ({ value, source: 'origin' as const, expiresInMs: 0 }));
      },
    );
    app.decorate(
      'cachedMany',
      async <T>(
        keys: readonly string[],
        load: ManyLoader<T>,
        options?: GetOrSetOptions,
      ): Promise<ReadResult<T | undefined>[]> => {
        if (!config.cacheDisabled) return cache.getOrSetManyWithMeta(keys, load, options);
        const unique = [...new Set(keys)];
        const noop = (): void => {};
        const context = {
          keys: unique,
          signal: new AbortController().signal,
          stale: new Map(),
          setTtl: noop,
          setGrace: noop,
          setTags: noop,
          skip: noop,
          unchanged: noop,
        };
        const loaded = await load(unique.slice(), context);
        const byKey = (key: string): T | undefined =>
          loaded instanceof Map ? loaded.get(key) : (loaded as readonly (T | undefined)[])[unique.indexOf(key)];
        return keys.map((key) => ({ value: byKey(key), source: 'origin' as const, expiresInMs: 0 }));
      },
    );
    app.addHook('onClose', async () => {
      unwatch();
      await cache.close();
    });
  },
  { name: 'cache', fastify: '5.x' },
);
