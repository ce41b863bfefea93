import type { Cache } from '../cache/contract.js';
import { ConfigurationError } from '../errors.js';

let defaultCache: Cache | undefined;

/**
 * Registers the cache that `@Cacheable`, `@CacheEvict`, `@CachePut` and `cached` use when they are not given one.
 * Call it once at startup; nothing is created on import. Returns the cache registered before (undefined to unset).
 */
export function setDefaultCache(cache: Cache | undefined): Cache | undefined {
  if (cache !== undefined && (typeof cache !== 'object' || cache === null || typeof cache.getOrSet !== 'function')) {
    throw new ConfigurationError('Expected `setDefaultCache` to be given a cache made by createCache, or undefined');
  }
  const previous = defaultCache;
  defaultCache = cache;
  return previous;
}

/** The cache from an explicit option (a cache, or a function of the instance), else the default one. */
export function resolveCache(option: unknown, instance: unknown, label: string): Cache {
  const explicit: unknown = typeof option === 'function' ? (option as (self: unknown) => unknown)(instance) : option;
  const cache = explicit ?? defaultCache;
  if (cache === undefined || cache === null || typeof (cache as Cache).getOrSet !== 'function') {
    throw new ConfigurationError(
      `No cache for ${label}: pass \`cache\` in its options or call setDefaultCache(cache) once at startup`,
    );
  }
  return cache as Cache;
}
