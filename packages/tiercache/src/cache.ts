import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createEntry, decodeEntry, encodeEntry } from './entry.js';
import type { Entry } from './entry.js';
import type { CacheError } from './errors.js';
import {
  CacheClosedError,
  CacheTimeoutError,
  ConfigurationError,
  ConnectionError,
  InvalidKeyError,
  LoaderTimeoutError,
  SerializationError,
  describeValue,
} from './errors.js';
import { ReplayQueue } from './invalidation/replay.js';
import { tagKeyFor } from './invalidation/tags.js';
import { AlertGate } from './observability/alerts.js';
import type { Alert } from './observability/alerts.js';
import { Emitter } from './observability/events.js';
import type { CacheEvents, Disposer, Listener } from './observability/events.js';
import { Counters } from './observability/stats.js';
import type { CacheStats, RedisState } from './observability/stats.js';
import { resolveGetOrSetOptions, resolveSetOptions, toMs, validateOptions } from './options.js';
import type { CacheOptions, GetOrSetOptions, ResolvedGetOrSetOptions, SetOptions } from './options.js';
import { CircuitBreaker, isOutageError, validateBreakerOptions } from './resilience/breaker.js';
import type { AdmittedTicket, BreakerState } from './resilience/breaker.js';
import { LockWaiters, lockKeyFor, lockToken } from './resilience/lock.js';
import { EncodeError } from './serializer.js';
import { LruMemoryTier } from './tiers/memory.js';
import { RedisTier, toCacheError } from './tiers/redis.js';
import { systemClock } from './types.js';
import type { Duration, RemoteTier, RemoteWrite } from './types.js';

export type { ReadResult, Source } from './core.js';
import type { Core, LoadMark, ReadResult } from './core.js';
import {
  cancelEcho,
  connectSubscriber,
  dropPrefix,
  dropTags,
  endRead,
  expectEcho,
  invalidateReads,
  mustPublishKeys,
  publish,
  publishKeys,
  scheduleReplay,
  watchRead,
} from './invalidation/coherence.js';

export interface LoaderContext {
  /** The key being loaded, without the prefix. */
  readonly key: string;
  /** Aborted when the call's `hardTimeout` passes (the result is still cached if it arrives). */
  readonly signal: AbortSignal;
}

export type Loader<T> = (context: LoaderContext) => T | Promise<T>;

export interface CacheHealth {
  readonly status: 'ok' | 'degraded';
  readonly redis: RedisState;
  readonly breaker: BreakerState | null;
  /** Whether other instances' writes reach this one now (bus subscribed and tracking on), null without a bus. */
  readonly coherent: boolean | null;
}

export interface MsetEntry<T = unknown> extends SetOptions {
  readonly key: string;
  readonly value: T;
}

export interface Cache {
  /** The value, or undefined on a miss. A Redis failure is a miss, never an error. */
  get<T = unknown>(key: string): Promise<T | undefined>;
  getWithMeta<T = unknown>(key: string): Promise<ReadResult<T> | undefined>;
  set<T>(key: string, value: T, options?: SetOptions): Promise<void>;
  has(key: string): Promise<boolean>;
  /** True when the key existed in either tier. */
  delete(key: string): Promise<boolean>;
  /** How many of the keys existed in Redis (or in memory when Redis is off). One round trip. */
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
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T>;
  getOrSetWithMeta<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<ReadResult<T>>;
  /**
   * Makes every entry written with any of these tags a miss, in every instance, once it resolves. Entries written
   * after it are not affected. Scoped to this cache's prefix (or namespace).
   */
  invalidateTags(tags: readonly string[]): Promise<void>;
  /** Removes every key under this cache's prefix (or namespace), in memory and in Redis. Never FLUSHDB. */
  clear(): Promise<void>;
  /** A view whose keys live under `${prefix}${name}:`, sharing this cache's memory, connection and stats. */
  namespace(name: string): Cache;
  stats(): CacheStats;
  /**
   * What a health endpoint needs: `ok` when every configured tier works, `degraded` when Redis is configured but
   * unreachable or cut off by the breaker (reads then fall back to memory and the loader). Synchronous, no I/O.
   */
  health(): CacheHealth;
  /**
   * Resolves true once Redis is connected, or false after `timeout` (default the Redis timeout × 10): for startup
   * logs and readiness probes. Never needed for correctness — the cache works, degraded, before Redis answers.
   */
  ready(timeout?: Duration): Promise<boolean>;
  on<E extends keyof CacheEvents>(event: E, listener: Listener<E>): Disposer;
  /** Closes what the cache opened (not a Redis client you passed in). Shared by every namespace of the cache. */
  close(): Promise<void>;
  /** The full prefix of this cache or namespace, ending in `:`. */
  readonly prefix: string;
}

/** Whether a string's UTF-8 size exceeds `max`, without a scan in the common cases (length ≤ bytes ≤ 3 × length). */
function exceedsBytes(encoded: string, max: number): boolean {
  if (encoded.length * 3 <= max) return false;
  if (encoded.length > max) return true;
  return Buffer.byteLength(encoded) > max;
}

const MAX_BACKOFF_KEYS = 10_000;

const VALUE_OF = new WeakMap<Promise<ReadResult<unknown>>, Promise<unknown>>();
const valueOf = (result: ReadResult<unknown>): unknown => result.value;
/** How long close() waits for loads and refreshes in flight before closing connections under them. */
const CLOSE_WAIT_MS = 1_000;

/** What a Redis call came to: its value, or why there is none (`error` undefined: skipped without trying). */
type RemoteOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error?: CacheError };
const SKIPPED: RemoteOutcome<never> = Object.freeze({ ok: false });

/** One getOrSet load: `running` is the loader's own settlement while it runs, undefined before and after. */
interface Flight {
  running: Promise<unknown> | undefined;
}

/** A read of one key from Redis: the decoded entry (fresh or within grace) and its encoded size. */
interface RemoteEntry {
  readonly entry: Entry;
  readonly size: number;
  /** False when the key was invalidated while it was being read: return it, but keep it out of memory. */
  readonly keep: boolean;
}

/** Redis did not answer (failed, timed out, or was skipped): the rest of this call should not wait on it again. */
const REDIS_DOWN = Symbol('redis down');
type RemoteRead = RemoteEntry | undefined | typeof REDIS_DOWN;

class TierCache implements Cache {
  readonly #core: Core;
  readonly prefix: string;
  /** This view's prefix past the root prefix: '' for the cache itself, `users:` for its namespace `users`. */
  readonly #relative: string;

  constructor(core: Core, prefix: string) {
    this.#core = core;
    this.prefix = prefix;
    this.#relative = prefix.slice(core.options.prefix.length);
  }

  // ── helpers ────────────────────────────────────────────────────────────────────────────────────────────────

  #fullKey(key: unknown): string {
    this.#check(key);
    return this.prefix + key;
  }

  /** Throws unless `key` is a usable key of an open cache. */
  #check(key: unknown): asserts key is string {
    if (typeof key !== 'string' || key.length === 0 || key.length > this.#core.options.maxKeyLength) {
      throw new InvalidKeyError(
        `Expected the key to be a non-empty string of at most ${this.#core.options.maxKeyLength} characters, got ${describeValue(key)}`,
      );
    }
    // Keys starting with `__` name the cache's own bookkeeping (stampede locks) under the same prefix.
    if (key.charCodeAt(0) === 95 && key.charCodeAt(1) === 95) {
      throw new InvalidKeyError(`Keys starting with \`__\` are reserved for tiercache, got ${describeValue(key)}`);
    }
    if (this.#core.closing) throw new CacheClosedError();
  }

  /** The key as the memory tier stores it: relative to the root prefix, so the root cache uses the key as is. */
  #memoryKey(key: string): string {
    return this.#relative === '' ? key : this.#relative + key;
  }

  #report(operation: CacheEvents['error']['operation'], key: string | undefined, error: CacheError): void {
    const c = this.#core.counters;
    if (operation === 'decode') c.decodeErrors++;
    else if (error instanceof SerializationError) c.uncached++;
    else {
      c.redisErrors++;
      if (error instanceof CacheTimeoutError) c.redisTimeouts++;
      this.#core.alert(
        key === undefined
          ? { kind: 'redis-error', message: `${operation}: ${error.message}`, error }
          : { kind: 'redis-error', key, message: `${operation}: ${error.message}`, error },
      );
    }
    this.#core.events.emit('error', { operation, key, error });
  }

  /**
   * Runs one Redis operation behind the breaker. Never throws: a skipped or failed call comes back as `ok: false`
   * (failures reported and counted). Only outage errors (timeouts, connection, cluster-down) count for the breaker.
   */
  async #tryRemote<T>(
    operation: 'get' | 'set' | 'delete' | 'clear' | 'lock',
    key: string | undefined,
    run: (remote: RemoteTier) => Promise<T>,
  ): Promise<RemoteOutcome<T>> {
    const { remote, breaker, counters } = this.#core;
    if (remote === undefined) return SKIPPED;
    if (!remote.available) {
      counters.redisSkipped++;
      return SKIPPED;
    }
    let ticket: AdmittedTicket | undefined;
    if (breaker !== undefined) {
      const granted = breaker.acquire();
      if (granted.kind === 'reject') {
        counters.breakerSkipped++;
        return SKIPPED;
      }
      ticket = granted;
    }
    // Invalidations queued while Redis was unreachable go first, so this call cannot read back what they removed. If
    // the replay stops on an outage, that is this call's failure too (Redis is down again): no second timeout.
    const replay = this.#core.replay;
    const replayError =
      replay !== undefined && (replay.size > 0 || this.#core.replaying !== undefined)
        ? await scheduleReplay(this.#core)
        : undefined;
    try {
      if (replayError !== undefined) throw replayError;
      const value = await run(remote);
      if (ticket) breaker?.success(ticket);
      if (this.#core.replay !== undefined && this.#core.replay.size > 0) void scheduleReplay(this.#core);
      return { ok: true, value };
    } catch (caught) {
      const error = toCacheError(caught, key);
      if (ticket) {
        if (isOutageError(error)) breaker?.failure(ticket, key);
        else breaker?.success(ticket);
      }
      this.#report(operation === 'lock' ? 'get' : operation, key, error);
      return { ok: false, error };
    }
  }

  /** Decodes what Redis returned; a corrupt, oversize or unknown-version entry is a miss, counted. */
  #decode(key: string, raw: string | null | undefined): Entry | undefined {
    if (raw === undefined || raw === null) return undefined;
    if (exceedsBytes(raw, this.#core.options.maxValueBytes)) {
      this.#report('decode', key, new SerializationError(`The stored entry exceeds maxValueBytes`, { key }));
      return undefined;
    }
    try {
      return decodeEntry(raw);
    } catch (error) {
      this.#report('decode', key, new SerializationError(`The stored entry cannot be decoded`, { cause: error, key }));
      return undefined;
    }
  }

  /** Encodes an entry; throws SerializationError naming the key for values that cannot be encoded at all. */
  #encode(key: string, entry: Entry): string {
    try {
      return encodeEntry(entry);
    } catch (error) {
      const reason = error instanceof EncodeError ? error.message : String(error);
      throw new SerializationError(`Cannot cache the value of \`${key}\`: ${reason}`, { cause: error, key });
    }
  }

  /** The error for an encoded entry above maxValueBytes, or undefined when it fits. */
  #oversize(key: string, encoded: string): SerializationError | undefined {
    const max = this.#core.options.maxValueBytes;
    if (!exceedsBytes(encoded, max)) return undefined;
    return new SerializationError(
      `Cannot cache the value of \`${key}\`: its encoded size ${Buffer.byteLength(encoded)} B exceeds maxValueBytes (${max} B)`,
      { key },
    );
  }

  /** Encodes and size-checks an entry for an explicit write, where both problems are the caller's error. */
  #encodeForWrite(key: string, entry: Entry): string {
    const encoded = this.#encode(key, entry);
    const oversize = this.#oversize(key, encoded);
    if (oversize) throw oversize;
    return encoded;
  }

  #remember(fullKey: string, entry: Entry, size: number, now: number): void {
    const { memory, options } = this.#core;
    if (memory === undefined || options.memory === false) return;
    memory.set(fullKey, entry, size, Math.min(entry.graceUntil, now + options.memory.maxTtl));
  }

  /** TTL spread by the jitter option, so keys written together do not expire together. */
  #ttl(ttl: number): number {
    const jitter = this.#core.options.jitter;
    return jitter === 0 ? ttl : Math.max(1, Math.round(ttl * (1 - Math.random() * jitter)));
  }

  /** A write or delete of `fullKey` happened here: a load of the key that is in flight must not store its result. */
  #supersede(fullKey: string): void {
    const loading = this.#core.loading;
    if (loading.size > 0) loading.delete(fullKey);
    invalidateReads(this.#core, fullKey);
  }

  /** Reads one key from Redis: the entry (fresh or within grace), undefined, or REDIS_DOWN. Never throws. */
  async #readRemote(key: string, fullKey: string): Promise<RemoteRead> {
    const watch = watchRead(this.#core, fullKey);
    const outcome = await this.#tryRemote('get', key, (remote) => remote.get(fullKey));
    const keep = endRead(this.#core, fullKey, watch);
    if (!outcome.ok) return this.#core.remote === undefined ? undefined : REDIS_DOWN;
    const raw = outcome.value;
    const entry = this.#decode(key, raw);
    if (entry === undefined || raw === undefined || raw === null) return undefined;
    if (this.#core.clock.now() >= entry.graceUntil) return undefined;
    return { entry, size: raw.length, keep };
  }

  /** A fresh Redis hit as a read result, filling memory; undefined for a miss or a stale copy. */
  #freshFromRemote(fullKey: string, found: RemoteRead): ReadResult<unknown> | undefined {
    if (found === undefined || found === REDIS_DOWN) return undefined;
    const now = this.#core.clock.now();
    if (now >= found.entry.expiresAt) return undefined;
    if (found.keep) this.#remember(fullKey, found.entry, found.size, now);
    return { value: found.entry.value, source: 'redis', expiresInMs: found.entry.expiresAt - now };
  }

  // ── the read path ──────────────────────────────────────────────────────────────────────────────────────────

  get<T = unknown>(key: string): Promise<T | undefined> {
    try {
      this.#check(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const memory = this.#core.memory;
    if (memory !== undefined) {
      const now = this.#core.clock.now();
      const entry = memory.getRelative(this.#memoryKey(key), now);
      // Not async on purpose: an L1 hit returns an already-resolved promise without a trip through the async path.
      if (entry !== undefined && now < entry.expiresAt) {
        this.#core.counters.memoryHits++;
        return Promise.resolve(entry.value as T);
      }
    }
    return this.#getSlow(key, this.prefix + key).then((result) => result?.value as T | undefined);
  }

  getWithMeta<T = unknown>(key: string): Promise<ReadResult<T> | undefined> {
    try {
      this.#check(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const hit = this.#memoryHit(key);
    if (hit !== undefined) return Promise.resolve(hit as ReadResult<T>);
    return this.#getSlow(key, this.prefix + key) as Promise<ReadResult<T> | undefined>;
  }

  /** An L1 hit for `key` (unprefixed), fresh, as a read result. */
  #memoryHit(key: string): ReadResult<unknown> | undefined {
    const memory = this.#core.memory;
    if (memory === undefined) return undefined;
    const now = this.#core.clock.now();
    const entry = memory.getRelative(this.#memoryKey(key), now);
    if (entry === undefined || now >= entry.expiresAt) return undefined;
    this.#core.counters.memoryHits++;
    return { value: entry.value, source: 'memory', expiresInMs: entry.expiresAt - now };
  }

  async #getSlow(key: string, fullKey: string): Promise<ReadResult<unknown> | undefined> {
    const result = this.#freshFromRemote(fullKey, await this.#readRemote(key, fullKey));
    if (result === undefined) this.#core.counters.misses++;
    else this.#core.counters.redisHits++;
    return result;
  }

  async has(key: string): Promise<boolean> {
    return (await this.getWithMeta(key)) !== undefined;
  }

  async mget<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    if (this.#core.closing) throw new CacheClosedError();
    if (!Array.isArray(keys)) throw new InvalidKeyError(`Expected \`keys\` to be an array, got ${describeValue(keys)}`);
    const fullKeys = keys.map((key) => this.#fullKey(key));
    const out = new Array<T | undefined>(keys.length).fill(undefined);
    const missing: number[] = [];
    for (let i = 0; i < fullKeys.length; i++) {
      const hit = this.#memoryHit(keys[i] as string);
      if (hit === undefined) missing.push(i);
      else out[i] = hit.value as T;
    }
    const counters = this.#core.counters;
    if (missing.length === 0) return out;
    const watches = missing.map((i) => watchRead(this.#core, fullKeys[i] as string));
    const outcome = await this.#tryRemote('get', undefined, (remote) =>
      remote.getMany(missing.map((i) => fullKeys[i] as string)),
    );
    const keep = missing.map((i, j) => endRead(this.#core, fullKeys[i] as string, watches[j]));
    if (!outcome.ok) {
      counters.misses += missing.length;
      return out;
    }
    const now = this.#core.clock.now();
    missing.forEach((index, j) => {
      const raw = outcome.value[j];
      const entry = this.#decode(keys[index] as string, raw);
      if (entry === undefined || raw === undefined || raw === null || now >= entry.expiresAt) {
        counters.misses++;
        return;
      }
      counters.redisHits++;
      if (keep[j] === true) this.#remember(fullKeys[index] as string, entry, raw.length, now);
      out[index] = entry.value as T;
    });
    return out;
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
      resolved = resolveGetOrSetOptions(this.#core.options, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const { memory, clock, counters, inflight } = this.#core;
    let staleInMemory: Entry | undefined;
    if (memory !== undefined) {
      const now = clock.now();
      const entry = memory.getRelative(this.#memoryKey(key), now);
      if (entry !== undefined) {
        if (now < entry.expiresAt) {
          counters.memoryHits++;
          if (resolved.refreshAhead !== undefined) {
            this.#maybeRefresh(key, this.prefix + key, loader as Loader<unknown>, resolved, entry, now);
          }
          return Promise.resolve({ value: entry.value as T, source: 'memory', expiresInMs: entry.expiresAt - now });
        }
        staleInMemory = entry;
      }
    }
    const fullKey = this.prefix + key;
    const running = inflight.get(fullKey);
    if (running !== undefined) return running as Promise<ReadResult<T>>;
    return this.#startLoad(key, fullKey, loader as Loader<unknown>, resolved, staleInMemory, false) as Promise<
      ReadResult<T>
    >;
  }

  /**
   * Registers a load as the one in flight for its key. It leaves the map the moment its answer settles (before any
   * caller resumes, so the next call after a failure starts afresh), unless the loader still runs in the background
   * after a soft or hard timeout: then it stays until the loader settles, so a slow origin gets one call, not many.
   */
  #startLoad(
    key: string,
    fullKey: string,
    loader: Loader<unknown>,
    options: ResolvedGetOrSetOptions,
    stale: Entry | undefined,
    refresh: boolean,
  ): Promise<ReadResult<unknown>> {
    const { background } = this.#core;
    const registry = refresh ? this.#core.refreshing : this.#core.inflight;
    const flight: Flight = { running: undefined };
    const answer = this.#load(key, fullKey, loader, options, stale, refresh, flight);
    const leave = (): void => {
      if (registry.get(fullKey) === answer) registry.delete(fullKey);
    };
    const onSettled = (): void => {
      const running = flight.running;
      if (running === undefined) return leave();
      background.add(running);
      void running.finally(() => {
        background.delete(running);
        leave();
      });
    };
    answer.then(onSettled, onSettled);
    registry.set(fullKey, answer);
    return answer;
  }

  async #load(
    key: string,
    fullKey: string,
    loader: Loader<unknown>,
    options: ResolvedGetOrSetOptions,
    staleInMemory: Entry | undefined,
    refresh: boolean,
    flight: Flight,
  ): Promise<ReadResult<unknown>> {
    const { counters, clock, backoff } = this.#core;
    let stale = staleInMemory;
    const read = await this.#readRemote(key, fullKey);
    // Redis did not answer: take no lock and write in the background, so this call costs at most one Redis timeout.
    const degraded = read === REDIS_DOWN;
    const found = degraded ? undefined : read;
    if (refresh) {
      // Another process may have refreshed already: a newer fresh copy in Redis makes this refresh unnecessary.
      const current = staleInMemory;
      if (found !== undefined && current !== undefined && found.entry.createdAt > current.createdAt) {
        const fresh = this.#freshFromRemote(fullKey, found);
        if (fresh !== undefined) return fresh;
      }
    } else {
      const fresh = this.#freshFromRemote(fullKey, found);
      if (fresh !== undefined) {
        counters.redisHits++;
        // A hit from Redis past the refresh point refreshes too (memory off, or a copy memory no longer holds); on a
        // later turn, once this flight has left the single-flight map.
        if (options.refreshAhead !== undefined && found !== undefined) {
          const entry = found.entry;
          setImmediate(() => this.#maybeRefresh(key, fullKey, loader, options, entry, clock.now()));
        }
        return fresh;
      }
      if (found !== undefined && (stale === undefined || found.entry.createdAt > stale.createdAt)) stale = found.entry;
      counters.misses++;
    }
    if (stale !== undefined && clock.now() >= stale.graceUntil) stale = undefined;

    // Fail-safe backoff: the loader failed recently for this key and a stale copy stands in; do not hammer the origin.
    const retryAt = backoff.get(fullKey);
    if (stale !== undefined && retryAt !== undefined) {
      if (clock.now() < retryAt) return this.#serveStale(stale);
      backoff.delete(fullKey);
    }

    // A miss while this process refreshes the key (the refresh outlived the copy): its result is this call's answer,
    // rather than a second loader call here. Unless it ended without a value (another process refreshes): then on.
    const refreshing = refresh ? undefined : this.#core.refreshing.get(fullKey);
    if (refreshing !== undefined) {
      const result = await refreshing.catch(() => undefined);
      if (result?.source === 'origin' || result?.source === 'redis') return result;
    }

    const lock = degraded
      ? ({ kind: 'load', token: '' } as const)
      : await this.#acquireOrWait(key, fullKey, refresh ? staleInMemory?.createdAt : undefined);
    if (lock.kind === 'value') return lock.result;
    if (lock.kind === 'busy') {
      // Only refreshes get here, and nobody awaits a refresh's answer but the single-flight map: no stale hit counted.
      return { value: staleInMemory?.value, source: 'memory', expiresInMs: 0 };
    }
    return this.#runLoader(key, fullKey, loader, options, stale, lock.token, flight, degraded);
  }

  #serveStale(entry: Entry): ReadResult<unknown> {
    this.#core.counters.staleHits++;
    return { value: entry.value, source: 'stale', expiresInMs: entry.expiresAt - this.#core.clock.now() };
  }

  /**
   * The distributed lock on a miss in both tiers: take it (`token`), or wait for its holder's value, polling as a
   * fallback for the publish, and load without it once `lock.waitMs` is spent (availability wins over dedupe). A
   * refresh never waits: if someone else holds the lock, someone else is refreshing (`busy`).
   */
  async #acquireOrWait(
    key: string,
    fullKey: string,
    /** For a refresh: the creation time of the copy being refreshed (a refresh never waits). */
    refreshing: number | undefined,
  ): Promise<
    | { readonly kind: 'value'; readonly result: ReadResult<unknown> }
    | { readonly kind: 'busy' }
    | { readonly kind: 'load'; readonly token: string }
  > {
    const { options, counters, waiters } = this.#core;
    const lockOptions = options.lock;
    if (lockOptions === false || this.#core.remote === undefined) return { kind: 'load', token: '' };
    const lockKey = lockKeyFor(this.prefix, fullKey);
    const token = lockToken();
    // A load takes the lock only while Redis still has no fresh value (one atomic step): another process's value
    // landing between our miss and our attempt is read, not loaded again. A refresh replaces a fresh value: no guard.
    const attempt = () =>
      this.#tryRemote('lock', key, (remote) =>
        remote.acquireLock(
          lockKey,
          token,
          lockOptions.ttlMs,
          refreshing === undefined ? { key: fullKey, now: this.#core.clock.now() } : undefined,
        ),
      );
    const first = await attempt();
    if (!first.ok) return { kind: 'load', token: '' };
    if (first.value === 'fresh') {
      const fresh = this.#freshFromRemote(fullKey, await this.#readRemote(key, fullKey));
      if (fresh !== undefined) {
        counters.redisHits++;
        return { kind: 'value', result: fresh };
      }
    } else if (first.value) {
      counters.locksAcquired++;
      // A refresh that read Redis before another process wrote its refresh, and took the lock after that process
      // let go, would load again: look once more, and take what is there if it is newer than the copy refreshed.
      if (refreshing !== undefined) {
        const read = await this.#readRemote(key, fullKey);
        const fresh = read !== REDIS_DOWN && read !== undefined && read.entry.createdAt > refreshing;
        const result = fresh ? this.#freshFromRemote(fullKey, read) : undefined;
        if (result !== undefined) {
          await this.#tryRemote('lock', key, (remote) => remote.releaseLock(lockKey, token));
          return { kind: 'value', result };
        }
      }
      return { kind: 'load', token };
    }
    if (refreshing !== undefined) return { kind: 'busy' };
    counters.lockWaits++;
    const pollMs = Math.min(250, Math.max(20, Math.round(lockOptions.ttlMs / 10)));
    const deadline = performance.now() + lockOptions.waitMs;
    for (;;) {
      const remaining = deadline - performance.now();
      if (remaining <= 0 || this.#core.closing) break;
      await waiters.wait(fullKey, Math.min(remaining, pollMs));
      const read = await this.#readRemote(key, fullKey);
      if (read === REDIS_DOWN) break;
      const fresh = this.#freshFromRemote(fullKey, read);
      if (fresh !== undefined) {
        counters.redisHits++;
        return { kind: 'value', result: fresh };
      }
      // The holder finished without a value, failed, or died and its lock expired: one waiter takes over.
      const again = await attempt();
      if (!again.ok) break;
      if (again.value === true) {
        counters.locksAcquired++;
        return { kind: 'load', token };
      }
      if (again.value === 'fresh') {
        const landed = this.#freshFromRemote(fullKey, await this.#readRemote(key, fullKey));
        if (landed !== undefined) {
          counters.redisHits++;
          return { kind: 'value', result: landed };
        }
      }
    }
    counters.lockWaitTimeouts++;
    return { kind: 'load', token: '' };
  }

  /**
   * Runs the loader (holding the lock when `token` is set) under the soft and hard timeouts. The loader's result is
   * stored whenever it arrives, even after the caller was answered with a stale copy or a timeout.
   */
  #runLoader(
    key: string,
    fullKey: string,
    loader: Loader<unknown>,
    options: ResolvedGetOrSetOptions,
    stale: Entry | undefined,
    token: string,
    flight: Flight,
    degraded: boolean,
  ): Promise<ReadResult<unknown>> {
    const { counters, clock, loading, options: cacheOptions } = this.#core;
    counters.loaderCalls++;
    const startedAt = clock.now();
    const loadToken: LoadMark = { tags: options.tags };
    loading.set(fullKey, loadToken);
    const controller = new AbortController();
    const lockKey = lockKeyFor(this.prefix, fullKey);

    // The lock this load still holds: '' once the hard timeout has given it up (the late result is then stored
    // without it, guarded by its creation time alone, as a load without the lock is).
    let held = token;
    // A long loader keeps its lock: extended every third of its TTL, stopped when the loader settles.
    let extender: NodeJS.Timeout | undefined;
    if (token !== '' && cacheOptions.lock !== false) {
      const ttlMs = cacheOptions.lock.ttlMs;
      extender = setInterval(
        () => {
          void this.#tryRemote('lock', key, (remote) => remote.extendLock(lockKey, token, ttlMs));
        },
        Math.max(10, Math.floor(ttlMs / 3)),
      );
      extender.unref();
    }

    const loaded = (async () => loader({ key, signal: controller.signal }))();
    const stored = loaded.then(
      (value) => this.#storeLoaded(key, fullKey, value, options, startedAt, held, loadToken, degraded),
      async (error: unknown) => {
        counters.loaderErrors++;
        if (held !== '') await this.#tryRemote('lock', key, (remote) => remote.releaseLock(lockKey, held));
        throw error;
      },
    );
    // The loader's settlement, which never rejects: whoever answered the caller, the outcome is observed here.
    const done = stored.then(
      () => undefined,
      () => undefined,
    );
    flight.running = done;
    // Registered before the caller's answer is wired below, so it runs first: when the answer settles because the
    // loader did, the flight already knows the loader is done.
    const finished = (): void => {
      flight.running = undefined;
      if (extender) clearInterval(extender);
      if (loading.get(fullKey) === loadToken) loading.delete(fullKey);
    };
    stored.then(finished, finished);
    return new Promise<ReadResult<unknown>>((resolve, reject) => {
      let answered = false;
      const timers: NodeJS.Timeout[] = [];
      const answer = (fn: () => void): void => {
        if (answered) return;
        answered = true;
        for (const timer of timers) clearTimeout(timer);
        fn();
      };
      if (stale !== undefined && options.softTimeout !== undefined) {
        timers.push(setTimeout(() => answer(() => resolve(this.#serveStale(stale))), options.softTimeout));
      }
      if (options.hardTimeout !== undefined) {
        const hardTimeout = options.hardTimeout;
        timers.push(
          setTimeout(() => {
            controller.abort(new LoaderTimeoutError(`The loader of \`${key}\` took longer than ${hardTimeout} ms`));
            // The lock goes now so other processes can try; the late result is still stored, without it (with the
            // token, the write would find the lock gone and be refused as an invalidated load's).
            if (held !== '') {
              held = '';
              clearInterval(extender);
              void this.#tryRemote('lock', key, (remote) => remote.releaseLock(lockKey, token));
            }
            answer(() =>
              stale !== undefined
                ? resolve(this.#serveStale(stale))
                : reject(
                    new LoaderTimeoutError(`The loader of \`${key}\` took longer than ${hardTimeout} ms`, { key }),
                  ),
            );
          }, hardTimeout),
        );
      }
      stored.then(
        (result) => answer(() => resolve(result)),
        (error: unknown) =>
          answer(() => {
            if (stale !== undefined && !(error instanceof SerializationError)) {
              this.#noteFailure(fullKey, options.graceBackoff);
              resolve(this.#serveStale(stale));
            } else reject(error as Error);
          }),
      );
    });
  }

  #noteFailure(fullKey: string, graceBackoff: number): void {
    const backoff = this.#core.backoff;
    if (graceBackoff === 0) return;
    if (backoff.size >= MAX_BACKOFF_KEYS) {
      const now = this.#core.clock.now();
      for (const [key, until] of backoff) if (until <= now) backoff.delete(key);
      if (backoff.size >= MAX_BACKOFF_KEYS) backoff.delete(backoff.keys().next().value as string);
    }
    backoff.set(fullKey, this.#core.clock.now() + graceBackoff);
  }

  /** Stores a loaded value in both tiers unless a newer write or an invalidation came while it loaded. */
  async #storeLoaded(
    key: string,
    fullKey: string,
    value: unknown,
    options: ResolvedGetOrSetOptions,
    startedAt: number,
    token: string,
    loadToken: LoadMark,
    degraded: boolean,
  ): Promise<ReadResult<unknown>> {
    const { loading, backoff } = this.#core;
    // The entry is as old as the start of its load: a write or invalidation after that start is newer than it.
    const ttl = this.#ttl(options.ttl);
    const entry = createEntry(value, startedAt, ttl, options.grace, options.tags);
    const result: ReadResult<unknown> = {
      value,
      source: 'origin',
      expiresInMs: entry.expiresAt - this.#core.clock.now(),
    };
    backoff.delete(fullKey);
    const lockKey = lockKeyFor(this.prefix, fullKey);
    const release = async (): Promise<void> => {
      if (token !== '') await this.#tryRemote('lock', key, (remote) => remote.releaseLock(lockKey, token));
    };
    // An unencodable value is a bug and is thrown; an oversize one is data: the caller gets it, uncached, reported.
    let encoded: string;
    try {
      encoded = this.#encode(key, entry);
    } catch (error) {
      await release();
      throw error;
    }
    const oversize = this.#oversize(key, encoded);
    if (oversize) {
      this.#report('set', key, oversize);
      await release();
      return result;
    }
    if (loading.get(fullKey) !== loadToken) {
      // Written or invalidated here while loading: the caller gets what it asked for, the tiers keep the newer state.
      await release();
      return result;
    }
    const memory = this.#core.memory;
    const current = memory?.get(fullKey, this.#core.clock.now());
    if (current === undefined || current.createdAt <= startedAt) {
      this.#remember(fullKey, entry, encoded.length, this.#core.clock.now());
    }
    const pttl = ttl + options.grace;
    // The write runs as a script, and Redis' NOLOOP does not cover script writes: its tracking echo must not drop
    // the copy just stored here.
    expectEcho(this.#core, fullKey, encoded);
    const write = this.#tryRemote('set', key, (remote) =>
      remote.setLoaded({
        key: fullKey,
        value: encoded,
        ttlMs: pttl,
        createdAt: startedAt,
        lockKey,
        token,
        channel: this.#core.loadedChannel,
        ...(options.tags.length === 0 ? {} : { tagKeys: this.#tagKeys(options.tags) ?? [] }),
      }),
    );
    const settle = write.then((outcome) => {
      if (outcome.ok && outcome.value) return;
      cancelEcho(this.#core, fullKey);
      // Not written (something newer is in Redis, or the lock was lost to an invalidation): drop this copy.
      if (outcome.ok && memory?.get(fullKey, this.#core.clock.now()) === entry) memory.delete(fullKey);
    });
    if (degraded) this.#inBackground(settle);
    else await settle;
    return result;
  }

  /** Tracks work the caller does not wait for, so close() can. */
  #inBackground(work: Promise<unknown>): void {
    const background = this.#core.background;
    const forget = (): void => {
      background.delete(tracked);
    };
    const tracked: Promise<void> = work.then(forget, forget);
    background.add(tracked);
  }

  /** Starts one background refresh of a hot key past its refresh point; single-flight here and across processes. */
  #maybeRefresh(
    key: string,
    fullKey: string,
    loader: Loader<unknown>,
    options: ResolvedGetOrSetOptions,
    entry: Entry,
    now: number,
  ): void {
    const refreshAhead = options.refreshAhead;
    if (refreshAhead === undefined || this.#core.closing) return;
    if (now < entry.createdAt + (entry.expiresAt - entry.createdAt) * refreshAhead) return;
    if (this.#core.inflight.has(fullKey) || this.#core.refreshing.has(fullKey)) return;
    this.#core.counters.refreshes++;
    // Tracked, so close() waits for it. A failed refresh leaves the current copy in place (a loader error, counted).
    this.#inBackground(this.#startLoad(key, fullKey, loader, options, entry, true));
  }

  // ── the write path ─────────────────────────────────────────────────────────────────────────────────────────

  /** Applies a failed or skipped Redis write: reported already; rejects the call only when asked for. */
  #writeOutcome(operation: 'set' | 'delete' | 'clear', key: string | undefined, outcome: RemoteOutcome<unknown>): void {
    if (outcome.ok || this.#core.remote === undefined) return;
    let error = outcome.error;
    if (error === undefined) {
      // Skipped without trying (not connected, or the breaker is open): counted as skipped, still reported.
      error = new ConnectionError('Redis is unavailable (not connected, or the circuit breaker is open)', { key });
      this.#core.events.emit('error', { operation, key, error });
    }
    if (this.#core.options.writeErrors === 'throw') throw error;
  }

  #tagKeys(tags: readonly string[]): readonly string[] | undefined {
    return tags.length === 0 ? undefined : tags.map((tag) => tagKeyFor(this.prefix, tag));
  }

  async #writeRemote(key: string | undefined, writes: RemoteWrite[]): Promise<void> {
    const outcome = await this.#tryRemote('set', key, (remote) => {
      const [write] = writes;
      if (writes.length === 1 && write !== undefined && write.tagKeys === undefined) {
        return remote.set(write.key, write.value, write.ttlMs);
      }
      return remote.setMany(writes);
    });
    if (outcome.ok) {
      for (const write of writes) this.#core.replay?.forgetKey(write.key);
      if (mustPublishKeys(this.#core)) {
        await publishKeys(
          this.#core,
          writes.map((w) => w.key),
        );
      }
    }
    this.#writeOutcome('set', key, outcome);
  }

  async set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    const fullKey = this.#fullKey(key);
    const resolved = resolveSetOptions(this.#core.options, options);
    const now = this.#core.clock.now();
    const ttl = this.#ttl(resolved.ttl);
    const entry = createEntry(value, now, ttl, resolved.grace, resolved.tags);
    const encoded = this.#encodeForWrite(key, entry);
    this.#core.counters.writes++;
    this.#supersede(fullKey);
    this.#remember(fullKey, entry, encoded.length, now);
    const tagKeys = this.#tagKeys(resolved.tags);
    await this.#writeRemote(key, [
      tagKeys === undefined
        ? { key: fullKey, value: encoded, ttlMs: ttl + resolved.grace }
        : { key: fullKey, value: encoded, ttlMs: ttl + resolved.grace, tagKeys },
    ]);
  }

  async mset(entries: readonly MsetEntry[]): Promise<void> {
    if (this.#core.closing) throw new CacheClosedError();
    if (!Array.isArray(entries)) {
      throw new ConfigurationError(`Expected \`entries\` to be an array, got ${describeValue(entries)}`);
    }
    const now = this.#core.clock.now();
    // Validate and encode everything before writing anything, so a bad entry leaves no partial batch behind.
    const prepared = entries.map((item) => {
      if (typeof item !== 'object' || item === null) {
        throw new ConfigurationError(`Expected each mset entry to be { key, value }, got ${describeValue(item)}`);
      }
      const fullKey = this.#fullKey(item.key);
      const resolved = resolveSetOptions(this.#core.options, item);
      const ttl = this.#ttl(resolved.ttl);
      const entry = createEntry(item.value, now, ttl, resolved.grace, resolved.tags);
      const write: RemoteWrite = {
        key: fullKey,
        value: this.#encodeForWrite(item.key, entry),
        ttlMs: ttl + resolved.grace,
      };
      const tagKeys = this.#tagKeys(resolved.tags);
      return { entry, write: tagKeys === undefined ? write : { ...write, tagKeys } };
    });
    if (prepared.length === 0) return;
    this.#core.counters.writes += prepared.length;
    for (const p of prepared) {
      this.#supersede(p.write.key);
      this.#remember(p.write.key, p.entry, p.write.value.length, now);
    }
    await this.#writeRemote(
      undefined,
      prepared.map((p) => p.write),
    );
  }

  async delete(key: string): Promise<boolean> {
    const fullKey = this.#fullKey(key);
    return (await this.#deleteFull([key], [fullKey])) > 0;
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    if (this.#core.closing) throw new CacheClosedError();
    if (!Array.isArray(keys)) throw new InvalidKeyError(`Expected \`keys\` to be an array, got ${describeValue(keys)}`);
    return this.#deleteFull(
      keys,
      keys.map((key) => this.#fullKey(key)),
    );
  }

  async #deleteFull(keys: readonly string[], fullKeys: string[]): Promise<number> {
    let inMemory = 0;
    const memory = this.#core.memory;
    for (const fullKey of fullKeys) {
      this.#supersede(fullKey);
      if (memory?.delete(fullKey)) inMemory++;
    }
    this.#core.counters.deletes += fullKeys.length;
    if (fullKeys.length === 0) return 0;
    // The lock keys go in the same round trip: a loader still holding one then knows it was invalidated and does not
    // write what it loaded before this delete.
    const key = keys.length === 1 ? keys[0] : undefined;
    const outcome = await this.#tryRemote('delete', key, (remote) =>
      remote.deleteMany(
        fullKeys,
        fullKeys.map((fullKey) => lockKeyFor(this.prefix, fullKey)),
      ),
    );
    if (!outcome.ok) {
      for (const fullKey of fullKeys) this.#core.replay?.add({ kind: 'key', prefix: this.prefix, fullKey });
      this.#writeOutcome('delete', key, outcome);
      return inMemory;
    }
    if (mustPublishKeys(this.#core)) await publishKeys(this.#core, fullKeys);
    return Math.max(outcome.value, keys.length === 1 ? inMemory : 0);
  }

  async invalidateTags(tags: readonly string[]): Promise<void> {
    if (this.#core.closing) throw new CacheClosedError();
    const { tags: valid } = resolveSetOptions(this.#core.options, { tags });
    if (valid.length === 0) return;
    dropTags(this.#core, this.prefix, valid);
    const outcome = await this.#tryRemote('delete', undefined, (remote) =>
      remote.invalidateTags(this.#tagKeys(valid) ?? [], (member) => lockKeyFor(this.prefix, member)),
    );
    if (!outcome.ok) {
      for (const tag of valid) this.#core.replay?.add({ kind: 'tag', prefix: this.prefix, tag });
      this.#writeOutcome('delete', undefined, outcome);
      return;
    }
    await publish(this.#core, {
      kind: 'tags',
      from: this.#core.instanceId,
      prefix: this.prefix,
      tags: valid,
    });
  }

  async clear(): Promise<void> {
    if (this.#core.closing) throw new CacheClosedError();
    dropPrefix(this.#core, this.prefix);
    const outcome = await this.#tryRemote('clear', undefined, (remote) => remote.deleteByPrefix(this.prefix));
    if (!outcome.ok) {
      this.#core.replay?.add({ kind: 'clear', prefix: this.prefix });
      this.#writeOutcome('clear', undefined, outcome);
      return;
    }
    await publish(this.#core, { kind: 'clear', from: this.#core.instanceId, prefix: this.prefix });
  }

  // ── the rest ───────────────────────────────────────────────────────────────────────────────────────────────

  namespace(name: string): Cache {
    if (typeof name !== 'string' || !/^[^\s*?[\]{}]{1,128}$/.test(name) || name.includes(':')) {
      throw new ConfigurationError(
        `Expected the namespace to be 1–128 characters without spaces, ':', braces or glob characters, got ${describeValue(name)}`,
      );
    }
    return new TierCache(this.#core, `${this.prefix}${name}:`);
  }

  health(): CacheHealth {
    const { remote, breaker, busChannel } = this.#core;
    const redis: RedisState = remote === undefined ? 'off' : remote.available ? 'ready' : 'unavailable';
    const breakerState = breaker === undefined ? null : breaker.state;
    const healthy = redis !== 'unavailable' && breakerState !== 'open';
    return {
      status: healthy ? 'ok' : 'degraded',
      redis,
      breaker: breakerState,
      coherent: busChannel === undefined ? null : redis === 'ready' && this.#core.subscriberReady,
    };
  }

  async ready(timeout?: Duration): Promise<boolean> {
    const ms = timeout === undefined ? this.#core.options.redisTimeoutMs * 10 : toMs('timeout', timeout);
    const remote = this.#core.remote;
    if (remote === undefined || remote.available) return true;
    if (!(remote instanceof RedisTier)) return false;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        stop();
        resolve(ok);
      };
      const timer = setTimeout(() => done(remote.available), ms);
      const stop = remote.onReady(() => done(true));
    });
  }

  stats(): CacheStats {
    const { counters: c, memory, remote, inflight, breaker } = this.#core;
    return {
      hits: { memory: c.memoryHits, redis: c.redisHits, stale: c.staleHits },
      misses: c.misses,
      loader: { calls: c.loaderCalls, errors: c.loaderErrors, refreshes: c.refreshes },
      redis: {
        state: remote === undefined ? 'off' : remote.available ? 'ready' : 'unavailable',
        errors: c.redisErrors,
        timeouts: c.redisTimeouts,
        skipped: c.redisSkipped,
        connectionErrors: c.connectionErrors,
      },
      breaker: breaker === undefined ? null : { ...breaker.snapshot(), skipped: c.breakerSkipped },
      lock: { acquired: c.locksAcquired, waits: c.lockWaits, waitTimeouts: c.lockWaitTimeouts },
      alerts: this.#core.alerts?.stats() ?? null,
      bus:
        this.#core.busChannel === undefined
          ? null
          : {
              published: c.busPublished,
              publishErrors: c.busPublishErrors,
              received: c.busReceived,
              dropped: c.busDropped,
              resets: c.busResets,
              tracking: this.#core.trackingActive,
              trackingInvalidations: c.trackingInvalidations,
              replayPending: this.#core.replay?.size ?? 0,
              replayed: c.replayed,
              replayDropped: this.#core.replay?.dropped ?? 0,
            },
      memory: memory === undefined ? null : { entries: memory.entries, bytes: memory.bytes },
      decodeErrors: c.decodeErrors,
      uncached: c.uncached,
      writes: c.writes,
      deletes: c.deletes,
      inflight: inflight.size,
    };
  }

  on<E extends keyof CacheEvents>(event: E, listener: Listener<E>): Disposer {
    if (typeof listener !== 'function') {
      throw new ConfigurationError(`Expected the listener to be a function, got ${describeValue(listener)}`);
    }
    return this.#core.events.on(event, listener);
  }

  close(): Promise<void> {
    const core = this.#core;
    core.closing ??= (async () => {
      // Waiters stop waiting; loads and refreshes in flight finish (their callers are waiting), nothing new starts.
      core.waiters.signalAll();
      // Bounded: a loader that never settles must not hold close() hostage (its result would be dropped anyway).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...core.background]),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
      ]);
      clearTimeout(timer);
      // A tier passed in (a testing tier) belongs to the caller, like a Redis client passed in.
      await Promise.allSettled([core.subscriber?.close(), core.ownsRemote ? core.remote?.close() : undefined]);
      core.memory?.clear();
      core.events.removeAll();
    })();
    return core.closing;
  }
}

/** Creates a cache. Throws `ConfigurationError` for invalid options; never waits for Redis. */
/** A tier object passed as `redis` (tiercache/testing's in-memory and chaos tiers), told apart from ioredis options. */
function isRemoteTier(value: unknown): value is RemoteTier {
  const tier = value as Partial<RemoteTier> | null;
  return (
    typeof tier === 'object' &&
    tier !== null &&
    typeof tier.setLoaded === 'function' &&
    typeof tier.acquireLock === 'function' &&
    typeof tier.available === 'boolean'
  );
}

export function createCache(options: CacheOptions = {}): Cache {
  const resolved = validateOptions(options);
  const clock = resolved.clock ?? systemClock;
  const counters = new Counters();
  const events = new Emitter();
  // Every Redis error and breaker transition goes through the gate: a cooldown per kind and key, a cap on keys.
  const gate = resolved.alerts === undefined ? undefined : new AlertGate(resolved.alerts, clock);
  const alert = (payload: Alert): void => {
    gate?.report(payload);
  };
  // Validated whether or not Redis is configured, and before any connection is opened.
  if (resolved.breaker !== false) validateBreakerOptions(resolved.breaker);
  const breaker =
    resolved.redis === undefined || resolved.breaker === false
      ? undefined
      : new CircuitBreaker(resolved.breaker, clock);
  const memory =
    resolved.memory === false
      ? undefined
      : new LruMemoryTier<Entry>({
          maxEntries: resolved.memory.maxEntries,
          maxBytes: resolved.memory.maxBytes,
          root: resolved.prefix,
        });
  const remote =
    resolved.redis === undefined
      ? undefined
      : isRemoteTier(resolved.redis)
        ? resolved.redis
        : new RedisTier(resolved.redis, {
            timeoutMs: resolved.redisTimeoutMs,
            onConnectionError: (error) => {
              counters.connectionErrors++;
              events.emit('error', { operation: 'connection', key: undefined, error });
              // Keyless, so the gate's cooldown deduplicates a reconnect loop into one alert.
              alert({ kind: 'redis-error', message: `connection: ${error.message}`, error });
            },
          });

  if (breaker !== undefined) {
    breaker.on('open', (t) => {
      events.emit('breaker:open', t);
      alert({ kind: 'breaker-open', message: `Redis circuit breaker opened (${t.reason})` });
    });
    breaker.on('half-open', (t) => {
      events.emit('breaker:half-open', t);
      alert({ kind: 'breaker-half-open', message: 'Redis circuit breaker half-open' });
    });
    breaker.on('close', (t) => {
      events.emit('breaker:close', t);
      alert({ kind: 'breaker-close', message: 'Redis circuit breaker closed' });
    });
  }
  const bus = remote === undefined ? false : resolved.bus;
  const core: Core = {
    options: resolved,
    clock,
    memory,
    remote,
    breaker,
    subscriber: undefined,
    ownsRemote: remote instanceof RedisTier,
    counters,
    events,
    alert,
    alerts: gate,
    inflight: new Map(),
    refreshing: new Map(),
    loading: new Map(),
    reads: new Map(),
    epoch: 0,
    backoff: new Map(),
    waiters: new LockWaiters(),
    loadedChannel: `${resolved.prefix}__loaded`,
    background: new Set(),
    instanceId: randomBytes(9).toString('base64url'),
    busChannel: bus === false ? undefined : `${resolved.prefix}__bus`,
    replay: bus === false ? undefined : new ReplayQueue(bus.replayMax),
    trackingActive: false,
    subscriberReady: false,
    echoes: new Map(),
    replaying: undefined,
    closing: undefined,
  };
  breaker?.on('close', () => void scheduleReplay(core));
  if (remote instanceof RedisTier && (bus !== false || resolved.lock !== false)) {
    core.subscriber = connectSubscriber(core, remote, bus);
  }
  return new TierCache(core, resolved.prefix);
}
