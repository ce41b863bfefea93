import { isFresh } from '../entry.js';
import type { Entry } from '../entry.js';
import { CacheClosedError, ConfigurationError, InvalidKeyError, describeValue } from '../errors.js';
import type { Coherence } from '../invalidation/coherence.js';
import type { ReplayQueue } from '../invalidation/replay.js';
import type { AlertGate } from '../observability/alerts.js';
import { INSTRUMENTS } from '../observability/instruments.js';
import type { Instruments } from '../observability/instruments.js';
import type { CacheEvents, Disposer, Emitter, Listener } from '../observability/events.js';
import type { CacheStats, Counters, RedisState } from '../observability/stats.js';
import { toMs } from '../options.js';
import { resolveGetOrSetOptions, resolveTierOptions } from '../call-options.js';
import type { GetOrSetOptions, ResolvedOptions, SetOptions, TierOptions } from '../options.js';
import type { ResolvedGetOrSetOptions, ResolvedTierOptions } from '../call-options.js';
import type { CircuitBreaker } from '../resilience/breaker.js';
import type { RemoteAccessor } from '../tiers/remote-accessor.js';
import type { Clock, Duration, MemoryTier } from '../types.js';
import type { Cache, CacheHealth } from './contract.js';
import type { LoadCoordinator } from './load-coordinator.js';
import { BatchLoad } from './get-or-set-many.js';
import type { ManyLoader } from './get-or-set-many.js';
import type { Loader } from './loader-runner.js';
import type { ReadPath } from './read-path.js';
import type { ReadResult, View } from './view.js';
import type { MsetEntry, WritePath } from './write-path.js';
import type { Counter, CounterOptions } from '../strategies/counter.js';
import type { Strategies } from '../strategies/registry.js';
import { warm } from '../strategies/warm.js';
import type { WarmOptions, WarmProgress } from '../strategies/warm.js';
import type { WriteBehindQueue, WriteBehindQueueOptions } from '../strategies/write-behind.js';
import { writeThrough } from '../strategies/write-through.js';
import type { OriginWriter, WriteThroughOptions } from '../strategies/write-through.js';
import type { WarmEntries, WriteBehindOptions } from './contract.js';

/** The parts a cache and its namespaces share, built once by the composition root (create-cache.ts). */
export interface CacheParts {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  /** The clock of memory hits (hit-clock.ts): one reading shared by the hits of ~1 ms. */
  readonly hitClock: Clock;
  readonly memory: MemoryTier<Entry> | undefined;
  /** undefined without Redis. */
  readonly accessor: RemoteAccessor | undefined;
  readonly breaker: CircuitBreaker | undefined;
  readonly coherence: Coherence;
  /** Whether the bus is on. */
  readonly busOn: boolean;
  readonly replay: ReplayQueue | undefined;
  readonly reads: ReadPath;
  readonly writes: WritePath;
  readonly loads: LoadCoordinator;
  /** Write-behind queues and counters. */
  readonly strategies: Strategies;
  readonly counters: Counters;
  readonly events: Emitter;
  readonly instruments: Instruments;
  readonly alerts: AlertGate | undefined;
  readonly isClosing: () => boolean;
  /** Closes everything, once; every later call returns the same promise. */
  readonly close: () => Promise<void>;
}

const VALUE_OF = new WeakMap<Promise<ReadResult<unknown>>, Promise<unknown>>();
const valueOf = (result: ReadResult<unknown>): unknown => result.value;

/**
 * The public facade: argument checks, namespaces, stats, health and close; everything else is delegated to the read
 * path, the load coordinator and the write path. Not async where it can answer from memory: an L1 hit returns an
 * already-resolved promise without a trip through the async machinery.
 */
export class TierCache implements Cache {
  readonly #parts: CacheParts;
  readonly #view: View;
  readonly prefix: string;

  constructor(parts: CacheParts, prefix: string) {
    this.#parts = parts;
    this.prefix = prefix;
    this.#view = { prefix, relative: prefix.slice(parts.options.prefix.length) };
  }

  /** Throws unless `key` is a usable key of an open cache. */
  #check(key: unknown): asserts key is string {
    const max = this.#parts.options.maxKeyLength;
    if (typeof key !== 'string' || key.length === 0 || key.length > max) {
      throw new InvalidKeyError(
        `Expected the key to be a non-empty string of at most ${max} characters, got ${describeValue(key)}`,
      );
    }
    // Keys starting with `__` name the cache's own bookkeeping (stampede locks, tag sets) under the same prefix.
    if (key.charCodeAt(0) === 95 && key.charCodeAt(1) === 95) {
      throw new InvalidKeyError(`Keys starting with \`__\` are reserved for tiercache, got ${describeValue(key)}`);
    }
    if (this.#parts.isClosing()) throw new CacheClosedError();
  }

  readonly #checked = (key: unknown): string => {
    this.#check(key);
    return key;
  };

  #keys(keys: unknown): readonly string[] {
    if (this.#parts.isClosing()) throw new CacheClosedError();
    if (!Array.isArray(keys)) throw new InvalidKeyError(`Expected \`keys\` to be an array, got ${describeValue(keys)}`);
    for (const key of keys) this.#check(key);
    return keys as string[];
  }

  // ── reads ──────────────────────────────────────────────────────────────────────────────────────────────────

  get<T = unknown>(key: string, options?: TierOptions): Promise<T | undefined> {
    if (options !== undefined) return this.getWithMeta<T>(key, options).then((result) => result?.value);
    try {
      this.#check(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const { memory, hitClock, counters, reads } = this.#parts;
    if (memory !== undefined) {
      const now = hitClock.now();
      const entry = reads.memoryEntry(this.#view, key, now);
      if (entry !== undefined && isFresh(entry, now)) {
        counters.memoryHits++;
        if (entry.group !== undefined) reads.memoryHitOf(this.#view, key, entry);
        return Promise.resolve(entry.value as T);
      }
    }
    return reads.getSlowValue(key, this.prefix + key) as Promise<T | undefined>;
  }

  getWithMeta<T = unknown>(key: string, options?: TierOptions): Promise<ReadResult<T> | undefined> {
    let tiers: ResolvedTierOptions;
    try {
      this.#check(key);
      tiers = resolveTierOptions(options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const reads = this.#parts.reads;
    const hit = tiers.skipMemory ? undefined : reads.memoryHit(this.#view, key);
    if (hit !== undefined) return Promise.resolve(hit as ReadResult<T>);
    if (tiers.skipRedis) {
      this.#parts.counters.misses++;
      return Promise.resolve(undefined);
    }
    return reads.getSlow(key, this.prefix + key, !tiers.skipMemory) as Promise<ReadResult<T> | undefined>;
  }

  async has(key: string): Promise<boolean> {
    return (await this.getWithMeta(key)) !== undefined;
  }

  async mget<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    return (await this.#parts.reads.mget(this.#view, this.#keys(keys))) as (T | undefined)[];
  }

  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    const answer = this.getOrSetWithMeta(key, loader, options);
    // Callers joining one load share one `.then`, as they share the load: a stampede costs a continuation per
    // caller, not two.
    let value = VALUE_OF.get(answer);
    if (value === undefined) {
      value = answer.then(valueOf);
      VALUE_OF.set(answer, value);
    }
    return value as Promise<T>;
  }

  getOrSetWithMeta<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<ReadResult<T>> {
    let resolved: ResolvedGetOrSetOptions;
    try {
      this.#check(key);
      if (typeof loader !== 'function') {
        throw new ConfigurationError(`Expected the loader to be a function, got ${describeValue(loader)}`);
      }
      resolved = resolveGetOrSetOptions(this.#parts.options, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return this.#getOrSet(key, loader as Loader<unknown>, resolved) as Promise<ReadResult<T>>;
  }

  getOrSetManyWithMeta<T>(
    keys: readonly string[],
    loader: ManyLoader<T>,
    options?: GetOrSetOptions,
  ): Promise<ReadResult<T | undefined>[]> {
    let resolved: ResolvedGetOrSetOptions;
    try {
      this.#keys(keys);
      if (typeof loader !== 'function') {
        throw new ConfigurationError(`Expected the loader to be a function, got ${describeValue(loader)}`);
      }
      resolved = resolveGetOrSetOptions(this.#parts.options, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    // Each key takes getOrSet's path (memory, joining a load in flight, the lock with the Redis lookup, fail-safe);
    // the keys left to load meet again in one loader call.
    const batch = new BatchLoad(loader, resolved);
    return Promise.all(keys.map((key) => this.#getOrSet(key, batch.loadOne, resolved))) as Promise<
      ReadResult<T | undefined>[]
    >;
  }

  async getOrSetMany<T>(
    keys: readonly string[],
    loader: ManyLoader<T>,
    options?: GetOrSetOptions,
  ): Promise<(T | undefined)[]> {
    return (await this.getOrSetManyWithMeta(keys, loader, options)).map(valueOf) as (T | undefined)[];
  }

  #getOrSet(key: string, loader: Loader<unknown>, resolved: ResolvedGetOrSetOptions): Promise<ReadResult<unknown>> {
    const { memory, hitClock, counters, reads, loads } = this.#parts;
    const fullKey = this.prefix + key;
    let inMemory: Entry | undefined;
    if (memory !== undefined && !resolved.skipMemory) {
      const now = hitClock.now();
      const entry = reads.memoryEntry(this.#view, key, now);
      if (entry !== undefined) {
        if (isFresh(entry, now)) {
          counters.memoryHits++;
          if (entry.group !== undefined) reads.memoryHitOf(this.#view, key, entry);
          if (resolved.refreshAhead !== undefined) {
            const request = { view: this.#view, key, fullKey, loader, options: resolved };
            loads.maybeRefresh({ ...request, inMemory: entry }, entry, now);
          }
          return Promise.resolve({ value: entry.value, source: 'memory', expiresInMs: entry.expiresAt - now });
        }
        inMemory = entry;
      }
    }
    const running = loads.joinable(this.#view, key);
    if (running !== undefined) return running;
    return loads.load({ view: this.#view, key, fullKey, loader, options: resolved, inMemory });
  }

  // ── writes and invalidations ───────────────────────────────────────────────────────────────────────────────

  set<T>(key: string, value: T, options?: SetOptions & TierOptions): Promise<void> {
    // Not async: the write path's promise is the caller's, one continuation less on every set.
    try {
      this.#check(key);
      return this.#parts.writes.set(this.#view, key, value, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  async mset(entries: readonly MsetEntry[]): Promise<void> {
    if (this.#parts.isClosing()) throw new CacheClosedError();
    if (!Array.isArray(entries)) {
      throw new ConfigurationError(`Expected \`entries\` to be an array, got ${describeValue(entries)}`);
    }
    await this.#parts.writes.mset(this.#view, entries, this.#checked);
  }

  async delete(key: string): Promise<boolean> {
    this.#check(key);
    return (await this.#parts.writes.deleteMany(this.#view, [key])) > 0;
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    return this.#parts.writes.deleteMany(this.#view, this.#keys(keys));
  }

  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (this.#parts.isClosing()) throw new CacheClosedError();
    await this.#parts.writes.invalidateTags(this.#view, tags);
  }

  async clear(): Promise<void> {
    if (this.#parts.isClosing()) throw new CacheClosedError();
    await this.#parts.writes.clear(this.#view);
  }

  // ── write strategies (strategies/) ─────────────────────────────────────────────────────────────────────────

  async writeThrough<T, R>(
    key: string,
    value: T,
    writer: OriginWriter<T, R>,
    options?: WriteThroughOptions,
  ): Promise<R> {
    this.#check(key);
    return writeThrough(this.#parts, this.#view, key, value, writer, options);
  }

  writeBehindQueue<T = unknown>(name: string, options: WriteBehindQueueOptions<T>): WriteBehindQueue<T> {
    if (this.#parts.isClosing()) throw new CacheClosedError();
    return this.#parts.strategies.queue<T>(name, options);
  }

  async writeBehind<T>(key: string, value: T, options: WriteBehindOptions): Promise<void> {
    this.#check(key);
    if (typeof options !== 'object' || options === null) {
      throw new ConfigurationError(
        `Expected the options argument to be { queue, ttl?, tags? }, got ${describeValue(options)}`,
      );
    }
    const { queue: name, ...setOptions } = options;
    const queue = this.#parts.strategies.queueNamed(name);
    await this.#parts.writes.set(this.#view, key, value, setOptions);
    await queue.enqueue(key, value);
  }

  counter(name: string, options: CounterOptions): Counter {
    if (this.#parts.isClosing()) throw new CacheClosedError();
    return this.#parts.strategies.counter(name, options);
  }

  async warm(entries: WarmEntries, options?: WarmOptions): Promise<WarmProgress> {
    if (this.#parts.isClosing()) throw new CacheClosedError();
    return warm(this.#parts, this.#view, entries, options, this.#checked);
  }

  // ── the rest ───────────────────────────────────────────────────────────────────────────────────────────────

  namespace(name: string): Cache {
    if (typeof name !== 'string' || !/^[^\s*?[\]{}]{1,128}$/.test(name) || name.includes(':')) {
      throw new ConfigurationError(
        `Expected the namespace to be 1–128 characters without spaces, ':', braces or glob characters, got ${describeValue(name)}`,
      );
    }
    return new TierCache(this.#parts, `${this.prefix}${name}:`);
  }

  #redisState(): RedisState {
    const accessor = this.#parts.accessor;
    return accessor === undefined ? 'off' : accessor.status === 'ready' ? 'ready' : 'unavailable';
  }

  health(): CacheHealth {
    const { breaker, busOn, coherence, memory, replay, instruments } = this.#parts;
    const redis = this.#redisState();
    const breakerState = breaker === undefined ? null : breaker.state;
    const redisWorks = redis !== 'unavailable' && breakerState !== 'open';
    const coherent = busOn ? redis === 'ready' && coherence.subscriberReady : null;
    const caches = !this.#parts.isClosing() && (memory !== undefined || (redis !== 'off' && redisWorks));
    // Coherence is reported (bus.coherent) but does not change the status: a subscriber still connecting at start-up
    // or reconnecting is not an outage, and memory copies stay bounded by memory.maxTtl meanwhile.
    const status = !caches ? 'down' : redisWorks ? 'ok' : 'degraded';
    const latencyMs = instruments.lastRedisMs;
    return {
      status,
      redis: { state: redis, up: redis === 'ready', latencyMs: latencyMs === undefined ? null : latencyMs },
      breaker: breakerState,
      bus: coherent === null ? null : { coherent, replayPending: replay?.size ?? 0 },
      memory: memory === undefined ? null : { entries: memory.entries, bytes: memory.bytes },
      queues: this.#parts.strategies.queueDepths(),
      coherent,
    };
  }

  async ready(timeout?: Duration): Promise<boolean> {
    const ms = timeout === undefined ? this.#parts.options.redisTimeoutMs * 10 : toMs('timeout', timeout);
    const { accessor, coherence } = this.#parts;
    if (accessor === undefined) return true;
    const started = performance.now();
    if (!(await accessor.ready(ms))) return false;
    // With tracking configured, ready also means other instances' writes reach this memory tier: copies kept from
    // now on are invalidated, and the start-up flush is behind us. Connected is what it answers, though.
    if (coherence.trackingWanted) await coherence.whenTracking(ms - (performance.now() - started));
    return true;
  }

  stats(): CacheStats {
    const { counters: c, memory, breaker, loads, busOn, coherence, replay, instruments } = this.#parts;
    return {
      hits: { memory: c.memoryHits, redis: c.redisHits, stale: c.staleHits },
      misses: c.misses,
      loader: { calls: c.loaderCalls, errors: c.loaderErrors, refreshes: c.refreshes },
      redis: {
        state: this.#redisState(),
        errors: c.redisErrors,
        timeouts: c.redisTimeouts,
        skipped: c.redisSkipped,
        connectionErrors: c.connectionErrors,
      },
      breaker: breaker === undefined ? null : { ...breaker.snapshot(), skipped: c.breakerSkipped },
      lock: { acquired: c.locksAcquired, waits: c.lockWaits, waitTimeouts: c.lockWaitTimeouts },
      alerts: this.#parts.alerts?.stats() ?? null,
      bus: busOn
        ? {
            published: c.busPublished,
            publishErrors: c.busPublishErrors,
            received: c.busReceived,
            dropped: c.busDropped,
            resets: c.busResets,
            tracking: coherence.trackingActive,
            trackingInvalidations: c.trackingInvalidations,
            replayPending: replay?.size ?? 0,
            replayed: c.replayed,
            replayDropped: replay?.dropped ?? 0,
          }
        : null,
      memory: memory === undefined ? null : { entries: memory.entries, bytes: memory.bytes },
      decodeErrors: c.decodeErrors,
      uncached: c.uncached,
      writes: c.writes,
      deletes: c.deletes,
      inflight: loads.inflight,
      latency: { redis: instruments.redis.summary(), loader: instruments.loader.summary() },
      batches: {
        reads: instruments.readBatch.summary(),
        locks: instruments.lockBatch.summary(),
        writes: instruments.writeBatch.summary(),
      },
      groups: instruments.groups(),
    };
  }

  on<E extends keyof CacheEvents>(event: E, listener: Listener<E>): Disposer {
    if (typeof listener !== 'function') {
      throw new ConfigurationError(`Expected the listener to be a function, got ${describeValue(listener)}`);
    }
    return this.#parts.events.on(event, listener);
  }

  close(): Promise<void> {
    return this.#parts.close();
  }

  /** For tiercache/prometheus and tiercache/otel: the histograms behind `stats()`, buckets included. */
  [INSTRUMENTS](): Instruments {
    return this.#parts.instruments;
  }
}
