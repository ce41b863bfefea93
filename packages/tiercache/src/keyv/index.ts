/**
 * `tiercache/keyv`: tiercache as a Keyv storage adapter, so cache-manager 7 and `@nestjs/cache-manager` use it in one
 * line and keep L1, the breaker, the stampede lock and the bus:
 *
 *     new Keyv({ store: new KeyvTiercache(cache) })
 *     createCache({ stores: [new Keyv({ store: new KeyvTiercache({ redis: process.env.REDIS_URL }) })] })
 */
import { EventEmitter } from 'node:events';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { createCache } from '../create-cache.js';
import type { Cache } from '../cache/contract.js';
import { ConfigurationError } from '../errors.js';
import type { CacheOptions } from '../options.js';

export interface KeyvTiercacheOptions {
  /** The tiercache cache the adapter reads and writes. */
  readonly cache: Cache;
  /** Whether `disconnect()` closes the cache: true when the adapter created it from options. */
  readonly closeOnDisconnect: boolean;
}

function isCache(value: unknown): value is Cache {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Cache).getOrSet === 'function' &&
    typeof (value as Cache).namespace === 'function'
  );
}

/**
 * A Keyv storage adapter over a tiercache cache (given, or created from `createCache` options). Keyv's namespace
 * becomes the first part of each key and `clear()` is scoped to it (SCAN + UNLINK under it, never FLUSHDB). A `set`
 * without a TTL gets the cache's `ttl`: tiercache bounds every entry. Redis failures are tiercache's to handle (a read
 * falls back, a write is reported by the cache's `error` event), so they do not reach Keyv as errors. TTLs are
 * milliseconds, as everywhere in Keyv and cache-manager 7.
 */
export class KeyvTiercache extends EventEmitter implements KeyvStoreAdapter {
  readonly opts: KeyvTiercacheOptions;
  /** Set by Keyv from its own `namespace` option. */
  namespace?: string | undefined;

  constructor(cache: Cache | CacheOptions = {}) {
    super();
    if (typeof cache !== 'object' || cache === null) {
      throw new ConfigurationError('Expected KeyvTiercache to be given a tiercache cache or createCache options');
    }
    this.opts = isCache(cache)
      ? { cache, closeOnDisconnect: false }
      : { cache: createCache(cache), closeOnDisconnect: true };
  }

  get #cache(): Cache {
    return this.opts.cache;
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.#cache.get<Value>(key);
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return this.#cache.mget<Value>(keys);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await this.#cache.set(key, value, typeof ttl === 'number' && ttl > 0 ? { ttl } : undefined);
    return true;
  }

  async setMany(values: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    await this.#cache.mset(
      values.map(({ key, value, ttl }) => (typeof ttl === 'number' && ttl > 0 ? { key, value, ttl } : { key, value })),
    );
  }

  async has(key: string): Promise<boolean> {
    return this.#cache.has(key);
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => this.#cache.has(key)));
  }

  async delete(key: string): Promise<boolean> {
    return this.#cache.delete(key);
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    return (await this.#cache.deleteMany(keys)) > 0;
  }

  /**
   * Removes this Keyv namespace's keys (Keyv prefixes keys with `namespace:`), or the whole cache without one. A
   * namespace `a:b` is the tiercache namespace `b` inside `a`.
   */
  async clear(): Promise<void> {
    const namespace = this.namespace;
    let scope = this.#cache;
    if (namespace !== undefined && namespace !== '') {
      for (const part of namespace.split(':')) scope = scope.namespace(part);
    }
    await scope.clear();
  }

  /** Closes the cache if the adapter created it; a cache passed in stays open (its owner closes it). */
  async disconnect(): Promise<void> {
    if (this.opts.closeOnDisconnect) await this.#cache.close();
  }
}

/** `new Keyv({ store: createKeyvTiercache(options) })`, in the naming of Keyv's other adapters. */
export function createKeyvTiercache(cache: Cache | CacheOptions = {}): KeyvTiercache {
  return new KeyvTiercache(cache);
}
