import type { CacheEvents, Disposer, Listener } from '../observability/events.js';
import type { CacheStats, RedisState } from '../observability/stats.js';
import type { GetOrSetOptions, SetOptions, TierOptions } from '../options.js';
import type { BreakerState } from '../resilience/breaker.js';
import type { Key } from '../keys/define.js';
import type { Duration } from '../types.js';
import type { ManyLoader } from './get-or-set-many.js';
import type { Loader } from './loader-runner.js';
import type { ReadResult } from './view.js';
import type { MsetEntry } from './write-path.js';
import type { Counter, CounterOptions } from '../strategies/counter.js';
import type { WarmOptions, WarmProgress } from '../strategies/warm.js';
import type { WriteBehindQueue, WriteBehindQueueOptions } from '../strategies/write-behind.js';
import type { OriginWriter, WriteThroughOptions } from '../strategies/write-through.js';

/** Per-call options of `writeBehind`: the queue (registered with `writeBehindQueue`) and the cache entry's options. */
export interface WriteBehindOptions extends SetOptions {
  readonly queue: string;
}

/** Iterable entries for `warm`. */
export type WarmEntries = Iterable<MsetEntry> | AsyncIterable<MsetEntry>;

/**
 * What `health()` reports (docs/observability.md, "Health"). `status`:
 * - `ok`: every configured tier works (Redis connected and the breaker not open, or no Redis configured);
 * - `degraded`: the cache still caches, but Redis is configured and unreachable or cut off by the breaker (serving
 *   from memory + origin only);
 * - `down`: the cache caches nothing: it is closed, or Redis is unreachable and there is no memory tier.
 */
export interface CacheHealth {
  readonly status: 'ok' | 'degraded' | 'down';
  readonly redis: {
    readonly state: RedisState;
    readonly up: boolean;
    /** The last round trip's duration, in ms; null before the first one (or without Redis or instrumentation). */
    readonly latencyMs: number | null;
  };
  readonly breaker: BreakerState | null;
  /** null without a bus. */
  readonly bus: {
    /** Whether other instances' writes reach this one now (bus subscribed and, when asked for, tracking on). */
    readonly coherent: boolean;
    /** Invalidations waiting for Redis to come back. */
    readonly replayPending: number;
  } | null;
  /** null with memory off. */
  readonly memory: { readonly entries: number; readonly bytes: number } | null;
  /** Write-behind queues by name, with their depth as of the queue's last `stats()` (no I/O here). */
  readonly queues: Readonly<Record<string, { readonly pending: number }>>;
  /** Same as `bus.coherent`; null without a bus. Kept for callers of the first health() shape. */
  readonly coherent: boolean | null;
}

export interface Cache {
  /** The value, or undefined on a miss. A Redis failure is a miss, never an error. */
  get<T = unknown>(key: Key<T>, options?: TierOptions): Promise<T | undefined>;
  getWithMeta<T = unknown>(key: Key<T>, options?: TierOptions): Promise<ReadResult<T> | undefined>;
  /**
   * Writes both tiers (or one, with `skipMemory` / `skipRedis`). With a typed key (`defineKey<T>`), `value` must be
   * a `T`.
   */
  set<T>(key: Key<T>, value: NoInfer<T>, options?: SetOptions & TierOptions): Promise<void>;
  has(key: string): Promise<boolean>;
  /** True when the key existed in either tier. */
  delete(key: string): Promise<boolean>;
  /** How many of the keys existed, in Redis or in this instance's memory (each key counted once). One round trip. */
  deleteMany(keys: readonly string[]): Promise<number>;
  /** One value (or undefined) per key, in order. Misses in memory are read from Redis in one round trip. */
  mget<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]>;
  /** Writes every entry to memory and to Redis in one round trip. */
  mset(entries: readonly MsetEntry[]): Promise<void>;
  /**
   * The cached value, or the loader's (then cached). Concurrent calls for one key run the loader once per process,
   * and once across processes while the distributed lock holds. A loader failure is the caller's error unless a stale
   * copy within grace can be served.
   */
  getOrSet<T>(key: Key<T>, loader: Loader<T>, options?: GetOrSetOptions): Promise<T>;
  getOrSetWithMeta<T>(key: Key<T>, loader: Loader<T>, options?: GetOrSetOptions): Promise<ReadResult<T>>;
  /**
   * getOrSet for many keys: one value (or undefined) per key, in order. Memory first, the rest from Redis in one
   * round trip (which takes the stampede lock of each key without a fresh value), and the keys still missing in
   * **one** `loader(missingKeys, context)` call, which returns a Map or an array aligned with its input. A key already
   * loading (by getOrSet or getOrSetMany) is joined. A key the loader leaves out (or answers undefined for) stores
   * nothing, or a negative entry with `negativeTtl`. When the loader fails, keys with a stale copy within grace answer
   * it; the call rejects with the loader's error if any key has neither value nor stale copy.
   */
  getOrSetMany<T>(
    keys: readonly string[],
    loader: ManyLoader<T>,
    options?: GetOrSetOptions,
  ): Promise<(T | undefined)[]>;
  /** getOrSetMany with where each value came from. */
  getOrSetManyWithMeta<T>(
    keys: readonly string[],
    loader: ManyLoader<T>,
    options?: GetOrSetOptions,
  ): Promise<ReadResult<T | undefined>[]>;
  /**
   * Makes every entry written with any of these tags a miss, in every instance, once it resolves. Entries written
   * after it are not affected. Scoped to this cache's prefix (or namespace).
   */
  invalidateTags(tags: readonly string[]): Promise<void>;
  /** Removes every key under this cache's prefix (or namespace), in memory and in Redis. Never FLUSHDB. */
  clear(): Promise<void>;
  /**
   * Write-through: `writer(value)` (the origin write) first; only when it succeeds is the value set in both tiers and
   * other instances' copies invalidated. Resolves with the writer's result. The writer's error is the caller's, and
   * leaves the cache untouched; a Redis failure after the origin succeeded is not (docs/write-strategies.md).
   */
  writeThrough<T, R>(key: string, value: T, writer: OriginWriter<T, R>, options?: WriteThroughOptions): Promise<R>;
  /** Registers a write-behind queue: a durable queue in Redis (in memory without it) drained by `write`. */
  writeBehindQueue<T = unknown>(name: string, options: WriteBehindQueueOptions<T>): WriteBehindQueue<T>;
  /** Sets the value in the cache at once and queues its origin write on `options.queue`. */
  writeBehind<T>(key: string, value: T, options: WriteBehindOptions): Promise<void>;
  /** A write-behind counter: live totals in Redis, deltas flushed to the origin in idempotent batches. */
  counter(name: string, options: CounterOptions): Counter;
  /** Writes many entries in pipelined batches; resolves with how many were written and how many failed. */
  warm(entries: WarmEntries, options?: WarmOptions): Promise<WarmProgress>;
  /** A view whose keys live under `${prefix}${name}:`, sharing this cache's memory, connection and stats. */
  namespace(name: string): Cache;
  stats(): CacheStats;
  /** What a health endpoint needs (see CacheHealth for the status rules). Synchronous, no I/O. */
  health(): CacheHealth;
  /**
   * Resolves true once Redis is connected, or false after `timeout` (default the Redis timeout × 10): for startup
   * logs and readiness probes. With tracking on (the default with memory and the bus) it also waits, within the
   * same timeout, until other instances' writes reach this memory tier. Never needed for correctness — the cache
   * works, degraded, before Redis answers, and memory copies kept before tracking came on are dropped when it does.
   */
  ready(timeout?: Duration): Promise<boolean>;
  on<E extends keyof CacheEvents>(event: E, listener: Listener<E>): Disposer;
  /** Closes what the cache opened (not a Redis client you passed in). Shared by every namespace of the cache. */
  close(): Promise<void>;
  /** The full prefix of this cache or namespace, ending in `:`. */
  readonly prefix: string;
}
