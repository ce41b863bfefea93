/**
 * How each system under test is opened and closed, in one place so every workload configures a system the same way.
 * Fairness rules (issue 3): every system writes its own keys; every get returns the parsed object; node-redis runs
 * without its default per-command timer; BentoCache is shown with and without memory-tier serialization;
 * cache-manager is shown with Keyv's default serializer and with plain JSON.
 */
import KeyvRedis from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { createCache as createCacheManager } from 'cache-manager';
import type { Cache as CacheManager } from 'cache-manager';
import { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import type { createClient } from 'redis';
import { createCache } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { waitFor } from './harness.js';
import type { RedisAddress } from './harness.js';

/** Long enough that nothing expires during a run. */
export const TTL_MS = 10 * 60_000;

// ── raw clients ───────────────────────────────────────────────────────────────────────────────────────────────

/** The few ioredis options the workloads vary. */
export interface IoredisExtra {
  readonly enableAutoPipelining?: boolean;
  readonly commandTimeout?: number;
}

export async function openIoredis(redis: RedisAddress, extra: IoredisExtra = {}): Promise<Redis> {
  const client = new Redis({ host: redis.host, port: redis.port, lazyConnect: true, ...extra });
  client.on('error', () => {});
  await client.connect();
  return client;
}

export async function closeIoredis(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

function createNodeRedis(create: typeof createClient, redis: RedisAddress) {
  // node-redis 6 arms a 5 s timer per command unless told not to; the issue measured that it halves throughput.
  return create({ socket: { host: redis.host, port: redis.port }, commandOptions: { timeout: 0 } });
}

export type NodeRedis = ReturnType<typeof createNodeRedis>;

export async function openNodeRedis(redis: RedisAddress): Promise<NodeRedis> {
  // Loaded on first use: the W6 child processes never need it, and it is the heaviest module to load.
  const client = createNodeRedis((await import('redis')).createClient, redis);
  client.on('error', () => {});
  await client.connect();
  return client;
}

export async function closeNodeRedis(client: NodeRedis): Promise<void> {
  try {
    await client.close();
  } catch {
    client.destroy();
  }
}

// ── tiercache ─────────────────────────────────────────────────────────────────────────────────────────────────

export interface OpenTiercache {
  readonly cache: Cache;
  /** Errors the cache absorbed and reported through `on('error')`, by operation. */
  readonly errors: Map<string, number>;
  close(): Promise<void>;
}

/** Opens a cache and, when it has Redis, waits until it is connected (before that it skips Redis by design). */
export async function openTiercache(options: CacheOptions, waitReady = true): Promise<OpenTiercache> {
  const cache = createCache(options);
  const errors = new Map<string, number>();
  cache.on('error', ({ operation }) => errors.set(operation, (errors.get(operation) ?? 0) + 1));
  if (options.redis !== undefined && waitReady) {
    try {
      await waitFor(() => cache.stats().redis.state === 'ready', 5000, 'tiercache to connect to Redis');
    } catch (error) {
      await cache.close();
      throw error;
    }
  }
  return { cache, errors, close: () => cache.close() };
}

export function describeErrors(errors: Map<string, number>): string | undefined {
  if (errors.size === 0) return undefined;
  return `absorbed errors: ${[...errors].map(([op, n]) => `${op} ${n}`).join(', ')}`;
}

// ── BentoCache ────────────────────────────────────────────────────────────────────────────────────────────────

export interface BentoOptions {
  readonly prefix: string;
  /** The memory tier; `serialize: false` keeps objects as they are (the fast, share-the-reference mode). */
  readonly l1: false | { readonly serialize: boolean };
  /** The Redis tier; `connection` adds ioredis options. */
  readonly l2: false | { readonly connection?: IoredisExtra };
  readonly bus?: boolean;
}

export type Bento = BentoCache<{ cache: ReturnType<typeof bentostore> }>;

export function openBento(redis: RedisAddress, options: BentoOptions): Bento {
  const store = bentostore();
  if (options.l1) store.useL1Layer(memoryDriver({ maxItems: 10_000, serialize: options.l1.serialize }));
  if (options.l2) {
    // Our own client, so it has an error listener: otherwise ioredis prints every failed reconnect (W7 absent).
    // BentoCache's driver closes it with disconnect() either way.
    const connection = new Redis({ host: redis.host, port: redis.port, ...(options.l2.connection ?? {}) });
    connection.on('error', () => {});
    store.useL2Layer(redisDriver({ connection }));
  }
  if (options.bus) store.useBus(redisBusDriver({ connection: { host: redis.host, port: redis.port } }));
  return new BentoCache({ default: 'cache', stores: { cache: store }, prefix: options.prefix, ttl: TTL_MS });
}

// ── cache-manager + Keyv ──────────────────────────────────────────────────────────────────────────────────────

export interface CacheManagerOptions {
  readonly namespace: string;
  /** Keyv's default serializer (@keyv/serialize), or plain JSON.stringify/parse. */
  readonly serializer: 'keyv' | 'json';
  readonly memory: boolean;
  readonly redis: boolean | RedisAddress;
}

export interface OpenCacheManager {
  readonly cache: CacheManager;
  close(): Promise<void>;
}

function keyv(namespace: string, serializer: 'keyv' | 'json', store?: KeyvRedis<unknown>): Keyv {
  const json = serializer === 'json' ? { serialize: JSON.stringify, deserialize: JSON.parse } : {};
  return new Keyv({ namespace, ...(store ? { store } : {}), ...json });
}

/** `redis` may name another address (W7 points it at a dead port). */
export function openCacheManager(redis: RedisAddress, options: CacheManagerOptions): OpenCacheManager {
  const stores: Keyv[] = [];
  let redisStore: KeyvRedis<unknown> | undefined;
  if (options.memory) stores.push(keyv(`${options.namespace}:mem`, options.serializer));
  if (options.redis !== false) {
    const address = options.redis === true ? redis : options.redis;
    redisStore = new KeyvRedis({ socket: { host: address.host, port: address.port } });
    redisStore.on('error', () => {});
    stores.push(keyv(options.namespace, options.serializer, redisStore));
  }
  // cache-manager carries its own copy of keyv (same version); the instances are compatible at run time.
  const cache = createCacheManager({ stores: stores as never, ttl: TTL_MS });
  return {
    cache,
    close: async () => {
      await redisStore?.disconnect().catch(() => {});
    },
  };
}
