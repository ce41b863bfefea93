import { createEntry, decodeEntry, encodeEntry } from './entry.js';
import type { Entry } from './entry.js';
import {
  CacheClosedError,
  CacheError,
  CacheTimeoutError,
  ConfigurationError,
  InvalidKeyError,
  SerializationError,
  describeValue,
} from './errors.js';
import { Emitter } from './observability/events.js';
import type { CacheEvents, Disposer, Listener } from './observability/events.js';
import { Counters } from './observability/stats.js';
import type { CacheStats } from './observability/stats.js';
import { resolveSetOptions, validateOptions } from './options.js';
import type { CacheOptions, ResolvedOptions, ResolvedSetOptions, SetOptions } from './options.js';
import { EncodeError } from './serializer.js';
import { LruMemoryTier } from './tiers/memory.js';
import { RedisTier } from './tiers/redis.js';
import { systemClock } from './types.js';
import type { Clock, MemoryTier, RemoteTier, RemoteWrite } from './types.js';

/** Where a value came from. */
export type Source = 'memory' | 'redis' | 'origin' | 'stale';

export interface ReadResult<T> {
  readonly value: T;
  readonly source: Source;
  /** Time left until the value's logical expiry, in ms (0 or less for a stale value). */
  readonly expiresInMs: number;
}

export interface LoaderContext {
  /** The key being loaded, without the prefix. */
  readonly key: string;
}

export type Loader<T> = (context: LoaderContext) => T | Promise<T>;

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
  mset<T = unknown>(entries: readonly MsetEntry<T>[]): Promise<void>;
  /** The cached value, or the loader's (then cached). Concurrent calls for one key run the loader once. */
  getOrSet<T>(key: string, loader: Loader<T>, options?: SetOptions): Promise<T>;
  getOrSetWithMeta<T>(key: string, loader: Loader<T>, options?: SetOptions): Promise<ReadResult<T>>;
  /** Removes every key under this cache's prefix (or namespace), in memory and in Redis. Never FLUSHDB. */
  clear(): Promise<void>;
  /** A view whose keys live under `${prefix}${name}:`, sharing this cache's memory, connection and stats. */
  namespace(name: string): Cache;
  stats(): CacheStats;
  on<E extends keyof CacheEvents>(event: E, listener: Listener<E>): Disposer;
  /** Closes what the cache opened (not a Redis client you passed in). Shared by every namespace of the cache. */
  close(): Promise<void>;
  /** The full prefix of this cache or namespace, ending in `:`. */
  readonly prefix: string;
}

/** State shared by a cache and its namespaces. */
interface Core {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly memory: MemoryTier<Entry> | undefined;
  readonly remote: RemoteTier | undefined;
  readonly counters: Counters;
  readonly events: Emitter;
  /** One load per full key per process. */
  readonly inflight: Map<string, Promise<ReadResult<unknown>>>;
  closing: Promise<void> | undefined;
}

/** Whether a string's UTF-8 size exceeds `max`, without a scan in the common cases (length ≤ bytes ≤ 3 × length). */
function exceedsBytes(encoded: string, max: number): boolean {
  if (encoded.length * 3 <= max) return false;
  if (encoded.length > max) return true;
  return Buffer.byteLength(encoded) > max;
}

class TierCache implements Cache {
  readonly #core: Core;
  readonly prefix: string;

  constructor(core: Core, prefix: string) {
    this.#core = core;
    this.prefix = prefix;
  }

  // ── helpers ────────────────────────────────────────────────────────────────────────────────────────────────

  #fullKey(key: unknown): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > this.#core.options.maxKeyLength) {
      throw new InvalidKeyError(
        `Expected the key to be a non-empty string of at most ${this.#core.options.maxKeyLength} characters, got ${describeValue(key)}`,
      );
    }
    if (this.#core.closing) throw new CacheClosedError();
    return this.prefix + key;
  }

  #report(operation: CacheEvents['error']['operation'], key: string | undefined, error: CacheError): void {
    const c = this.#core.counters;
    if (operation === 'decode') c.decodeErrors++;
    else if (error instanceof SerializationError) c.uncached++;
    else {
      c.redisErrors++;
      if (error instanceof CacheTimeoutError) c.redisTimeouts++;
    }
    this.#core.events.emit('error', { operation, key, error });
  }

  /** The remote tier when it is worth trying; counts a skip when it is configured but not connected. */
  #remote(): RemoteTier | undefined {
    const remote = this.#core.remote;
    if (remote === undefined) return undefined;
    if (remote.available) return remote;
    this.#core.counters.redisSkipped++;
    return undefined;
  }

  /** Decodes what Redis returned; a corrupt, oversize or unknown-version entry is a miss, counted. */
  #decode(key: string, raw: string | undefined): Entry | undefined {
    if (raw === undefined) return undefined;
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
    const memory = this.#core.memory;
    if (memory === undefined || this.#core.options.memory === false) return;
    memory.set(fullKey, entry, size, Math.min(entry.graceUntil, now + this.#core.options.memory.maxTtl));
  }

  /** Applies a failed Redis write: count and emit it, and reject the call if the user asked for that. */
  #writeFailed(operation: 'set' | 'delete' | 'clear', key: string | undefined, error: unknown): void {
    const cacheError =
      error instanceof CacheError ? error : new CacheError('TIERCACHE_CONNECTION', String(error), { cause: error });
    this.#report(operation, key, cacheError);
    if (this.#core.options.writeErrors === 'throw') throw cacheError;
  }

  /** Reads Redis for one key; fills memory on a fresh hit. Never throws: a failure is a miss. */
  async #readRemote(key: string, fullKey: string): Promise<ReadResult<unknown> | undefined> {
    const remote = this.#remote();
    if (remote === undefined) return undefined;
    let raw: string | undefined;
    try {
      raw = await remote.get(fullKey);
    } catch (error) {
      this.#report('get', key, error as CacheError);
      return undefined;
    }
    const entry = this.#decode(key, raw);
    if (entry === undefined || raw === undefined) return undefined;
    const now = this.#core.clock.now();
    if (now >= entry.expiresAt) return undefined;
    this.#remember(fullKey, entry, raw.length, now);
    return { value: entry.value, source: 'redis', expiresInMs: entry.expiresAt - now };
  }

  // ── the read path ──────────────────────────────────────────────────────────────────────────────────────────

  get<T = unknown>(key: string): Promise<T | undefined> {
    let fullKey: string;
    try {
      fullKey = this.#fullKey(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const memory = this.#core.memory;
    if (memory !== undefined) {
      const now = this.#core.clock.now();
      const entry = memory.get(fullKey, now);
      // Not async on purpose: an L1 hit returns an already-resolved promise without a trip through the async path.
      if (entry !== undefined && now < entry.expiresAt) {
        this.#core.counters.memoryHits++;
        return Promise.resolve(entry.value as T);
      }
    }
    return this.#getSlow(key, fullKey).then((result) => result?.value as T | undefined);
  }

  getWithMeta<T = unknown>(key: string): Promise<ReadResult<T> | undefined> {
    let fullKey: string;
    try {
      fullKey = this.#fullKey(key);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const hit = this.#memoryHit(fullKey);
    if (hit !== undefined) return Promise.resolve(hit as ReadResult<T>);
    return this.#getSlow(key, fullKey) as Promise<ReadResult<T> | undefined>;
  }

  #memoryHit(fullKey: string): ReadResult<unknown> | undefined {
    const memory = this.#core.memory;
    if (memory === undefined) return undefined;
    const now = this.#core.clock.now();
    const entry = memory.get(fullKey, now);
    if (entry === undefined || now >= entry.expiresAt) return undefined;
    this.#core.counters.memoryHits++;
    return { value: entry.value, source: 'memory', expiresInMs: entry.expiresAt - now };
  }

  async #getSlow(key: string, fullKey: string): Promise<ReadResult<unknown> | undefined> {
    const result = await this.#readRemote(key, fullKey);
    if (result === undefined) this.#core.counters.misses++;
    else this.#core.counters.redisHits++;
    return result;
  }

  async has(key: string): Promise<boolean> {
    return (await this.getWithMeta(key)) !== undefined;
  }

  async mget<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    if (!Array.isArray(keys)) throw new InvalidKeyError(`Expected \`keys\` to be an array, got ${describeValue(keys)}`);
    const fullKeys = keys.map((key) => this.#fullKey(key));
    const out = new Array<T | undefined>(keys.length).fill(undefined);
    const missing: number[] = [];
    for (let i = 0; i < fullKeys.length; i++) {
      const hit = this.#memoryHit(fullKeys[i] as string);
      if (hit === undefined) missing.push(i);
      else out[i] = hit.value as T;
    }
    const counters = this.#core.counters;
    const remote = missing.length > 0 ? this.#remote() : undefined;
    if (remote === undefined) {
      counters.misses += missing.length;
      return out;
    }
    let raws: (string | undefined)[];
    try {
      raws = await remote.getMany(missing.map((i) => fullKeys[i] as string));
    } catch (error) {
      this.#report('get', undefined, error as CacheError);
      counters.misses += missing.length;
      return out;
    }
    const now = this.#core.clock.now();
    missing.forEach((index, j) => {
      const raw = raws[j];
      const entry = this.#decode(keys[index] as string, raw);
      if (entry === undefined || raw === undefined || now >= entry.expiresAt) {
        counters.misses++;
        return;
      }
      counters.redisHits++;
      this.#remember(fullKeys[index] as string, entry, raw.length, now);
      out[index] = entry.value as T;
    });
    return out;
  }

  async getOrSet<T>(key: string, loader: Loader<T>, options?: SetOptions): Promise<T> {
    return (await this.getOrSetWithMeta(key, loader, options)).value;
  }

  getOrSetWithMeta<T>(key: string, loader: Loader<T>, options?: SetOptions): Promise<ReadResult<T>> {
    let fullKey: string;
    let resolved: ResolvedSetOptions;
    try {
      fullKey = this.#fullKey(key);
      if (typeof loader !== 'function') {
        throw new ConfigurationError(`Expected the loader to be a function, got ${describeValue(loader)}`);
      }
      resolved = resolveSetOptions(this.#core.options, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const hit = this.#memoryHit(fullKey);
    if (hit !== undefined) return Promise.resolve(hit as ReadResult<T>);
    const inflight = this.#core.inflight;
    const running = inflight.get(fullKey);
    if (running !== undefined) return running as Promise<ReadResult<T>>;
    const load = this.#load(key, fullKey, loader, resolved).finally(() => inflight.delete(fullKey));
    inflight.set(fullKey, load);
    return load as Promise<ReadResult<T>>;
  }

  async #load(
    key: string,
    fullKey: string,
    loader: Loader<unknown>,
    options: ResolvedSetOptions,
  ): Promise<ReadResult<unknown>> {
    const counters = this.#core.counters;
    const cached = await this.#readRemote(key, fullKey);
    if (cached !== undefined) {
      counters.redisHits++;
      return cached;
    }
    counters.misses++;
    counters.loaderCalls++;
    let value: unknown;
    try {
      value = await loader({ key });
    } catch (error) {
      counters.loaderErrors++;
      throw error;
    }
    const entry = createEntry(value, this.#core.clock.now(), options.ttl, options.grace, options.tags);
    // An unencodable value is a bug and is thrown; an oversize one is data: the caller gets it, uncached, reported.
    const encoded = this.#encode(key, entry);
    const oversize = this.#oversize(key, encoded);
    if (oversize) {
      this.#report('set', key, oversize);
      return { value, source: 'origin', expiresInMs: options.ttl };
    }
    this.#remember(fullKey, entry, encoded.length, entry.createdAt);
    await this.#writeRemote(key, [{ key: fullKey, value: encoded, ttlMs: options.ttl + options.grace }], true);
    return { value, source: 'origin', expiresInMs: options.ttl };
  }

  // ── the write path ─────────────────────────────────────────────────────────────────────────────────────────

  /** Writes encoded entries to Redis; a failure is reported, and thrown only when asked for and `mayThrow`. */
  async #writeRemote(key: string | undefined, writes: RemoteWrite[], quiet = false): Promise<void> {
    const remote = this.#remote();
    if (remote === undefined) return;
    try {
      if (writes.length === 1) {
        const [write] = writes as [RemoteWrite];
        await remote.set(write.key, write.value, write.ttlMs);
      } else await remote.setMany(writes);
    } catch (error) {
      if (quiet) this.#report('set', key, error as CacheError);
      else this.#writeFailed('set', key, error);
    }
  }

  async set<T>(key: string, value: T, options?: SetOptions): Promise<void> {
    const fullKey = this.#fullKey(key);
    const resolved = resolveSetOptions(this.#core.options, options);
    const now = this.#core.clock.now();
    const entry = createEntry(value, now, resolved.ttl, resolved.grace, resolved.tags);
    const encoded = this.#encodeForWrite(key, entry);
    this.#core.counters.writes++;
    this.#remember(fullKey, entry, encoded.length, now);
    await this.#writeRemote(key, [{ key: fullKey, value: encoded, ttlMs: resolved.ttl + resolved.grace }]);
  }

  async mset<T = unknown>(entries: readonly MsetEntry<T>[]): Promise<void> {
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
      const entry = createEntry(item.value, now, resolved.ttl, resolved.grace, resolved.tags);
      return { fullKey, entry, encoded: this.#encodeForWrite(item.key, entry), ttlMs: resolved.ttl + resolved.grace };
    });
    this.#core.counters.writes += prepared.length;
    for (const p of prepared) this.#remember(p.fullKey, p.entry, p.encoded.length, now);
    await this.#writeRemote(
      undefined,
      prepared.map((p) => ({ key: p.fullKey, value: p.encoded, ttlMs: p.ttlMs })),
    );
  }

  async delete(key: string): Promise<boolean> {
    const fullKey = this.#fullKey(key);
    return (await this.#deleteFull([key], [fullKey])) > 0;
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    if (!Array.isArray(keys)) throw new InvalidKeyError(`Expected \`keys\` to be an array, got ${describeValue(keys)}`);
    return this.#deleteFull(
      keys,
      keys.map((key) => this.#fullKey(key)),
    );
  }

  async #deleteFull(keys: readonly string[], fullKeys: string[]): Promise<number> {
    let inMemory = 0;
    const memory = this.#core.memory;
    for (const fullKey of fullKeys) if (memory?.delete(fullKey)) inMemory++;
    this.#core.counters.deletes += fullKeys.length;
    const remote = this.#remote();
    if (remote === undefined || fullKeys.length === 0) return inMemory;
    try {
      return Math.max(await remote.deleteMany(fullKeys), keys.length === 1 ? inMemory : 0);
    } catch (error) {
      this.#writeFailed('delete', keys.length === 1 ? keys[0] : undefined, error);
      return inMemory;
    }
  }

  async clear(): Promise<void> {
    if (this.#core.closing) throw new CacheClosedError();
    this.#core.memory?.deleteByPrefix(this.prefix);
    const remote = this.#remote();
    if (remote === undefined) return;
    try {
      await remote.deleteByPrefix(this.prefix);
    } catch (error) {
      this.#writeFailed('clear', undefined, error);
    }
  }

  // ── the rest ───────────────────────────────────────────────────────────────────────────────────────────────

  namespace(name: string): Cache {
    if (typeof name !== 'string' || !/^[^\s*?[\]]{1,128}$/.test(name) || name.includes(':')) {
      throw new ConfigurationError(
        `Expected the namespace to be 1–128 characters without spaces, ':' or glob characters, got ${describeValue(name)}`,
      );
    }
    return new TierCache(this.#core, `${this.prefix}${name}:`);
  }

  stats(): CacheStats {
    const { counters: c, memory, remote, inflight } = this.#core;
    return {
      hits: { memory: c.memoryHits, redis: c.redisHits },
      misses: c.misses,
      loader: { calls: c.loaderCalls, errors: c.loaderErrors },
      redis: {
        state: remote === undefined ? 'off' : remote.available ? 'ready' : 'unavailable',
        errors: c.redisErrors,
        timeouts: c.redisTimeouts,
        skipped: c.redisSkipped,
        connectionErrors: c.connectionErrors,
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
      // Loads in flight finish (their callers are waiting); nothing new starts once closing is set.
      await Promise.allSettled([...core.inflight.values()]);
      await core.remote?.close();
      core.memory?.clear();
      core.events.removeAll();
    })();
    return core.closing;
  }
}

/** Creates a cache. Throws `ConfigurationError` for invalid options; never waits for Redis. */
export function createCache(options: CacheOptions = {}): Cache {
  const resolved = validateOptions(options);
  const counters = new Counters();
  const events = new Emitter();
  const memory =
    resolved.memory === false
      ? undefined
      : new LruMemoryTier<Entry>({ maxEntries: resolved.memory.maxEntries, maxBytes: resolved.memory.maxBytes });
  const remote =
    resolved.redis === undefined
      ? undefined
      : new RedisTier(resolved.redis, {
          timeoutMs: resolved.redisTimeoutMs,
          onConnectionError: (error) => {
            counters.connectionErrors++;
            events.emit('error', { operation: 'connection', key: undefined, error });
          },
        });
  const core: Core = {
    options: resolved,
    clock: resolved.clock ?? systemClock,
    memory,
    remote,
    counters,
    events,
    inflight: new Map(),
    closing: undefined,
  };
  return new TierCache(core, resolved.prefix);
}
