import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { CacheError, CacheTimeoutError, ConnectionError } from '../errors.js';
import type { RemoteTier, RemoteWrite } from '../types.js';

type Client = Redis | Cluster;

export interface RedisTierOptions {
  /** Every command settles within this many ms. */
  readonly timeoutMs: number;
  /** Connection-level failures (refused, reset) reported by the client between commands. */
  readonly onConnectionError: (error: CacheError) => void;
}

const SCAN_COUNT = 1000;
const UNLINK_BATCH = 500;

/**
 * Backoff between reconnect attempts: doubling from 50 ms, capped at 2 s, with full jitter on the upper half so a
 * fleet that lost Redis together does not reconnect in lockstep.
 */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(2000, 50 * 2 ** Math.min(attempt, 6));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * The options that make ioredis fail fast, applied over whatever the user passed: a per-command timeout, no offline
 * queue (measured: with defaults a GET waits ~73 s for a dead server, forever on a blackholed socket), and no resend of
 * in-flight commands after a reconnect (a write the caller saw fail must not land later).
 */
export function failFastOptions(user: RedisOptions, timeoutMs: number): Omit<RedisOptions, 'replyMapping'> {
  // The tier parses replies itself in the classic (RESP2-style) shapes, whatever the user's client prefers.
  const { replyMapping: _replyMapping, ...rest } = user;
  return {
    connectTimeout: Math.max(1000, timeoutMs * 10),
    retryStrategy: reconnectDelay,
    ...rest,
    commandTimeout: timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: false,
  };
}

function isClient(value: unknown): value is Client {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Client).pipeline === 'function' &&
    typeof (value as Client).status === 'string'
  );
}

/** Escapes the glob characters of a literal so SCAN MATCH treats it literally. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}

export function toCacheError(error: unknown, key?: string): CacheError {
  if (error instanceof CacheError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'Command timed out')
    return new CacheTimeoutError(`Redis did not answer in time`, { cause: error, key });
  return new ConnectionError(`Redis command failed: ${message}`, { cause: error, key });
}

function groupBySlot<T>(items: readonly T[], keyOf: (item: T) => string): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  items.forEach((item, index) => {
    const slot = calculateSlot(keyOf(item));
    const group = groups.get(slot);
    if (group) group.push(index);
    else groups.set(slot, [index]);
  });
  return groups;
}

export class RedisTier implements RemoteTier {
  readonly #client: Client;
  readonly #owned: boolean;
  readonly #timeoutMs: number;
  /** A client we did not create may not have a commandTimeout: then we bound each call ourselves. */
  readonly #wrapTimeout: boolean;
  readonly #keyPrefix: string;
  readonly #onError: (error: unknown) => void;

  constructor(source: string | RedisOptions | Client, options: RedisTierOptions) {
    this.#timeoutMs = options.timeoutMs;
    if (isClient(source)) {
      this.#client = source;
      this.#owned = false;
      const commandTimeout =
        source instanceof Cluster ? source.options.redisOptions?.commandTimeout : source.options.commandTimeout;
      this.#wrapTimeout = typeof commandTimeout !== 'number';
    } else {
      const settings = failFastOptions(typeof source === 'string' ? {} : source, options.timeoutMs);
      this.#client = typeof source === 'string' ? new Redis(source, settings) : new Redis(settings);
      this.#owned = true;
      this.#wrapTimeout = false;
    }
    this.#keyPrefix =
      (this.#client instanceof Cluster
        ? this.#client.options.redisOptions?.keyPrefix
        : this.#client.options.keyPrefix) ?? '';
    this.#onError = (error: unknown) => options.onConnectionError(toCacheError(error));
    // Without a listener ioredis prints every reconnect failure; the cache counts them instead.
    this.#client.on('error', this.#onError);
  }

  /** The underlying client, for the parts of tiercache that need more than storage (lock, bus). */
  get client(): Client {
    return this.#client;
  }

  get available(): boolean {
    return this.#client.status === 'ready';
  }

  #bound<T>(promise: Promise<T>): Promise<T> {
    if (!this.#wrapTimeout) return promise;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('Command timed out')), this.#timeoutMs);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  async get(key: string): Promise<string | undefined> {
    try {
      return (await this.#bound(this.#client.get(key))) ?? undefined;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    if (keys.length === 0) return [];
    try {
      if (!(this.#client instanceof Cluster)) {
        const values = await this.#bound(this.#client.mget(...keys));
        return values.map((v) => v ?? undefined);
      }
      // MGET across slots is CROSSSLOT on a cluster: one MGET per slot, in parallel.
      const out: (string | undefined)[] = new Array<string | undefined>(keys.length);
      const client = this.#client;
      await Promise.all(
        [...groupBySlot(keys, (k) => k).values()].map(async (indexes) => {
          const values = await this.#bound(client.mget(...indexes.map((i) => keys[i] as string)));
          indexes.forEach((index, j) => (out[index] = values[j] ?? undefined));
        }),
      );
      return out;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    try {
      await this.#bound(this.#client.set(key, value, 'PX', ttlMs));
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async setMany(writes: readonly RemoteWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const groups =
      this.#client instanceof Cluster
        ? [...groupBySlot(writes, (w) => w.key).values()].map((indexes) => indexes.map((i) => writes[i] as RemoteWrite))
        : [writes];
    try {
      await Promise.all(
        groups.map(async (group) => {
          const pipeline = this.#client.pipeline();
          for (const write of group) pipeline.set(write.key, write.value, 'PX', write.ttlMs);
          const results = await this.#bound(pipeline.exec());
          const failed = results?.find(([error]) => error !== null);
          if (failed) throw failed[0];
        }),
      );
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    try {
      if (!(this.#client instanceof Cluster)) return await this.#bound(this.#client.unlink(...keys));
      const client = this.#client;
      const counts = await Promise.all(
        [...groupBySlot(keys, (k) => k).values()].map((indexes) =>
          this.#bound(client.unlink(...indexes.map((i) => keys[i] as string))),
        ),
      );
      return counts.reduce((a, b) => a + b, 0);
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async deleteByPrefix(prefix: string): Promise<number> {
    const nodes = this.#client instanceof Cluster ? this.#client.nodes('master') : [this.#client];
    try {
      let total = 0;
      for (const node of nodes) total += await this.#scanAndUnlink(node, prefix);
      return total;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async #scanAndUnlink(node: Redis, prefix: string): Promise<number> {
    // SCAN MATCH sees keys as stored, with ioredis' keyPrefix; UNLINK adds keyPrefix again, so strip it.
    const pattern = `${escapeGlob(this.#keyPrefix + prefix)}*`;
    let cursor = '0';
    let total = 0;
    do {
      const [next, found] = await this.#bound(node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT));
      cursor = next;
      const keys = found.map((k) => k.slice(this.#keyPrefix.length));
      for (let i = 0; i < keys.length; i += UNLINK_BATCH) {
        const batch = keys.slice(i, i + UNLINK_BATCH);
        if (this.#client instanceof Cluster) {
          for (const indexes of groupBySlot(batch, (k) => k).values()) {
            total += await this.#bound(node.unlink(...indexes.map((j) => batch[j] as string)));
          }
        } else {
          total += await this.#bound(node.unlink(...batch));
        }
      }
    } while (cursor !== '0');
    return total;
  }

  async close(): Promise<void> {
    this.#client.off('error', this.#onError);
    if (!this.#owned) return;
    // A listener stays until the socket is gone, so a late error after quit is not an unhandled 'error' event.
    this.#client.on('error', () => {});
    if (this.#client.status !== 'ready') {
      this.#client.disconnect();
      return;
    }
    try {
      await this.#client.quit();
    } catch {
      this.#client.disconnect();
    }
  }
}
