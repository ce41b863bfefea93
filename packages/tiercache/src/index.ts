export { createCache } from './create-cache.js';
export type { Cache, CacheHealth, WarmEntries, WriteBehindOptions } from './cache/contract.js';
export type { Loader, LoaderContext } from './cache/loader-runner.js';
export type { StaleCopy, Unchanged } from './cache/adaptive.js';
export type { ManyLoader, ManyLoaderContext, ManyResult } from './cache/get-or-set-many.js';
export type { ReadResult, Source } from './cache/view.js';
export type { MsetEntry } from './cache/write-path.js';
export {
  CacheClosedError,
  CacheError,
  CacheTimeoutError,
  CircuitOpenError,
  ConfigurationError,
  ConnectionError,
  ErrorCode,
  InvalidKeyError,
  LoaderTimeoutError,
  RedisReplyError,
  SerializationError,
  isCacheError,
} from './errors.js';
export type { CacheErrorOptions } from './errors.js';
export { DEFAULTS, parseDuration } from './options.js';
export type {
  BatchingOptions,
  BreakerOptions,
  BusOptions,
  CacheOptions,
  GetOrSetOptions,
  LockOptions,
  MemoryOptions,
  SetOptions,
  TierOptions,
  TimeoutOptions,
} from './options.js';
export type {
  Alert,
  AlertKind,
  AlertNotification,
  AlertNotify,
  AlertOptions,
  AlertStats,
} from './observability/alerts.js';
export type { CacheEvents, Disposer, Listener } from './observability/events.js';
export { CHANNELS } from './observability/channels.js';
export type { CounterMessage, LoadMessage, ReadMessage, RedisMessage, WriteMessage } from './observability/channels.js';
export type { HistogramSummary } from './observability/histogram.js';
export type { KeyGroupStats } from './observability/instruments.js';
export type { CacheStats, RedisState } from './observability/stats.js';
export type { BreakerSnapshot, BreakerState, BreakerTransition } from './resilience/breaker.js';
export type { Clock, Duration } from './types.js';
export { defineKey, defineKeys, isKeyDefinition, listKeys } from './keys/define.js';
export type { AnyKeyDefinition, Key, KeyDefinition, KeyInfo, KeyOptions, KeyParams, KeyValue } from './keys/define.js';
export { encodeKeyPart } from './keys/template.js';
export type { KeyPart, KeyTemplate } from './keys/template.js';
export { typed } from './keys/typed-cache.js';
export type { TypedCache, TypedKeyMethods } from './keys/typed-cache.js';
export { cached } from './decorators/cached.js';
export type { CachedFunction, CachedOptions } from './decorators/cached.js';
export { setDefaultCache } from './decorators/default-cache.js';
export { cacheOptionsFromEnv, createCacheFromEnv } from './env.js';
export type { ClusterNodeAddress, RedisClusterOptions } from './tiers/redis-cluster-options.js';
export type { EnvOptions } from './env.js';
export { COUNTER_DEFAULTS } from './strategies/counter.js';
export type { Counter, CounterFlush, CounterOptions } from './strategies/counter.js';
export { WARM_DEFAULTS } from './strategies/warm.js';
export type { WarmOptions, WarmProgress } from './strategies/warm.js';
export { WRITE_BEHIND_DEFAULTS } from './strategies/write-behind.js';
export type {
  DeadLetter,
  WriteBehindItem,
  WriteBehindQueue,
  WriteBehindQueueOptions,
  WriteBehindQueueStats,
} from './strategies/write-behind.js';
export type { OriginWriter, WriteThroughOptions } from './strategies/write-through.js';
