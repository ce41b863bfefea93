export { createCache } from './cache.js';
export type { Cache, Loader, LoaderContext, MsetEntry, ReadResult, Source } from './cache.js';
export {
  CacheClosedError,
  CacheError,
  CacheTimeoutError,
  ConfigurationError,
  ConnectionError,
  ErrorCode,
  InvalidKeyError,
  SerializationError,
  isCacheError,
} from './errors.js';
export type { CacheErrorOptions } from './errors.js';
export { DEFAULTS } from './options.js';
export type { CacheOptions, MemoryOptions, SetOptions, TimeoutOptions } from './options.js';
export type { CacheEvents, Disposer, Listener } from './observability/events.js';
export type { CacheStats, RedisState } from './observability/stats.js';
export type { Clock, Duration } from './types.js';
