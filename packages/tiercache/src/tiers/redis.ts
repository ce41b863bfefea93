import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import type { ChainableCommander, RedisOptions } from 'ioredis';
import { CacheError, CacheTimeoutError, ConnectionError, RedisReplyError } from '../errors.js';
import type { LoadedWrite, LockGuard, RemoteTier, RemoteWrite } from '../types.js';

type Client = Redis | Cluster;

export interface RedisTierOptions {
  /** Every command settles within this many ms. */
  readonly timeoutMs: number;
  /** Connection-level failures (refused, reset) reported by the client between commands. */
  readonly onConnectionError: (error: CacheError) => void;
}

/*
 * The scripts below take a data key and its lock key; the lock key carries the data key as its hash tag (see
 * resilience/lock.ts), so both live in one slot and the scripts are Cluster-safe.
 */

/** KEYS: data, lock. ARGV: value, pttl, createdAt, token, channel, message. Returns 1 when written. */
const SET_LOADED = `
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
  local created = tonumber(string.match(current, '^{"v":%d+,"k":%d,"c":(%d+)'))
  if created and created > tonumber(ARGV[3]) then
    if ARGV[4] ~= '' then redis.call('DEL', KEYS[2]) end
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[4] ~= '' then redis.call('DEL', KEYS[2]) end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 1`;

/**
 * KEYS: tag set. ARGV: member, its expiry (ms since epoch), now. The tag set is a sorted set scored by each member's
 * expiry: members that expired are pruned on every add, and the set itself expires with its last member, so tag
 * bookkeeping never outlives what it indexes.
 */
const TAG_ADD = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1`;

/** KEYS: tag set. ARGV: now. Returns the live members and deletes the set, atomically. */
const TAG_POP = `
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
redis.call('DEL', KEYS[1])
return members`;

/** Whether an encoded entry (written in the fixed field order) is still fresh at `now`. */
function expiresAfter(encoded: string, now: number): boolean {
  const expires = /^\{"v":\d+,"k":\d,"c":\d+,"e":(\d+)/.exec(encoded)?.[1];
  return expires !== undefined && Number(expires) > now;
}

/** KEYS: lock. ARGV: token. */
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** KEYS: lock. ARGV: token, pttl. */
const EXTEND_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

interface ScriptCommands {
  tiercacheSetLoaded(
    data: string,
    lock: string,
    value: string,
    pttl: number,
    createdAt: number,
    token: string,
    channel: string,
    message: string,
  ): Promise<number>;
  tiercacheRelease(lock: string, token: string): Promise<number>;
  tiercacheTagPop(tag: string, now: number): Promise<string[]>;
  tiercacheExtend(lock: string, token: string, pttl: number): Promise<number>;
}

interface PipelineOp {
  /** The key whose hash slot the command belongs to. */
  readonly slotKey: string;
  readonly add: (pipeline: ChainableCommander) => unknown;
}

interface TagPipeline {
  tiercacheSetLoaded(...args: readonly [string, string, string, number, number, string, string, string]): unknown;
  tiercacheTagAdd(tag: string, member: string, expiresAt: number, now: number): unknown;
  tiercacheTagPop(tag: string, now: number): unknown;
}

const SCAN_COUNT = 1000;
const OUTAGE_REPLY = /^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|BUSY)\b/;
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
    // disconnect() arms a timer of this length to destroy a socket that does not close, even when the socket is long
    // dead (a refused connection): at the default 2 s, close() would leave a timer behind for 2 s.
    disconnectTimeout: 200,
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
  if (message === 'Command timed out') {
    return new CacheTimeoutError(`Redis did not answer in time`, { cause: error, key });
  }
  // A reply about the command itself (WRONGTYPE, a script error) means the server is up; replies saying it cannot
  // serve now (CLUSTERDOWN, LOADING, …) are availability failures like a refused connection.
  if (error instanceof Error && error.name === 'ReplyError' && !OUTAGE_REPLY.test(message)) {
    return new RedisReplyError(`Redis refused the command: ${message}`, { cause: error, key });
  }
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
    // defineCommand sends EVALSHA and falls back to EVAL once per connection when the script is not cached.
    this.#client.defineCommand('tiercacheSetLoaded', { numberOfKeys: 2, lua: SET_LOADED });
    this.#client.defineCommand('tiercacheRelease', { numberOfKeys: 1, lua: RELEASE_LOCK });
    this.#client.defineCommand('tiercacheExtend', { numberOfKeys: 1, lua: EXTEND_LOCK });
    this.#client.defineCommand('tiercacheTagAdd', { numberOfKeys: 1, lua: TAG_ADD });
    this.#client.defineCommand('tiercacheTagPop', { numberOfKeys: 1, lua: TAG_POP });
  }

  get #scripts(): ScriptCommands {
    return this.#client as unknown as ScriptCommands;
  }

  /** The underlying client, for the parts of tiercache that need more than storage (lock, bus). */
  get client(): Client {
    return this.#client;
  }

  get isCluster(): boolean {
    return this.#client instanceof Cluster;
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

  /**
   * Not async, and no error mapping here: the hottest call of the tier returns ioredis' own promise (a miss is
   * `null`), and the cache maps a rejection with toCacheError. Saves two promise hops per read.
   */
  get(key: string): Promise<string | null | undefined> {
    const reply = this.#client.get(key);
    return this.#wrapTimeout ? this.#bound(reply) : reply;
  }

  async getMany(keys: readonly string[]): Promise<(string | null | undefined)[]> {
    if (keys.length === 0) return [];
    try {
      if (!(this.#client instanceof Cluster)) return await this.#bound(this.#client.mget(...keys));
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

  /** Like `get`: ioredis' own promise; the cache maps a rejection. */
  set(key: string, value: string, ttlMs: number): Promise<unknown> {
    const reply = this.#client.set(key, value, 'PX', ttlMs);
    return this.#wrapTimeout ? this.#bound(reply) : reply;
  }

  async setMany(writes: readonly RemoteWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const now = Date.now();
    const ops: PipelineOp[] = [];
    for (const write of writes) {
      ops.push({ slotKey: write.key, add: (p) => p.set(write.key, write.value, 'PX', write.ttlMs) });
      ops.push(...this.#tagOps(write, now));
    }
    try {
      await this.#pipeline(ops);
    } catch (error) {
      throw toCacheError(error);
    }
  }

  /** The tag-index updates of one write: one script call per tag, each on its own tag set. */
  #tagOps(write: RemoteWrite, now: number): PipelineOp[] {
    const tagKeys = write.tagKeys;
    if (tagKeys === undefined || tagKeys.length === 0) return [];
    const expiresAt = now + write.ttlMs;
    return tagKeys.map((tagKey) => ({
      slotKey: tagKey,
      add: (p) => (p as unknown as TagPipeline).tiercacheTagAdd(tagKey, write.key, expiresAt, now),
    }));
  }

  /**
   * Runs commands in one pipeline (one round trip), or on a cluster one pipeline per hash slot, in parallel. Returns
   * the replies in the order of `ops`; the first error is thrown.
   */
  async #pipeline(ops: readonly PipelineOp[]): Promise<unknown[]> {
    const groups =
      this.#client instanceof Cluster ? [...groupBySlot(ops, (op) => op.slotKey).values()] : [ops.map((_, i) => i)];
    const out = new Array<unknown>(ops.length);
    await Promise.all(
      groups.map(async (indexes) => {
        const pipeline = this.#client.pipeline();
        for (const i of indexes) (ops[i] as PipelineOp).add(pipeline);
        const results = (await this.#bound(pipeline.exec())) ?? [];
        indexes.forEach((index, j) => {
          const [error, reply] = results[j] ?? [new Error('missing pipeline reply'), undefined];
          if (error) throw error;
          out[index] = reply;
        });
      }),
    );
    return out;
  }

  async deleteMany(keys: readonly string[], alsoUnlink: readonly string[] = []): Promise<number> {
    if (keys.length === 0) return 0;
    const groups =
      this.#client instanceof Cluster ? [...groupBySlot(keys, (k) => k).values()] : [keys.map((_, i) => i)];
    try {
      const counts = await Promise.all(
        groups.map(async (indexes) => {
          const own = indexes.map((i) => keys[i] as string);
          const extra = indexes.map((i) => alsoUnlink[i]).filter((k): k is string => k !== undefined);
          if (extra.length === 0) return this.#bound(this.#client.unlink(...own));
          const results = await this.#bound(
            this.#client
              .pipeline()
              .unlink(...own)
              .unlink(...extra)
              .exec(),
          );
          const [error, count] = results?.[0] ?? [new Error('empty pipeline reply'), 0];
          if (error) throw error;
          return count as number;
        }),
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

  async acquireLock(lockKey: string, token: string, ttlMs: number, guard?: LockGuard): Promise<boolean | 'fresh'> {
    try {
      if (guard === undefined) {
        return (await this.#bound(this.#client.set(lockKey, token, 'PX', ttlMs, 'NX'))) === 'OK';
      }
      // MULTI rather than a script: Redis' NOLOOP covers a client's own transactions but not its scripts, and a lock
      // taken by a script would echo back to this instance as a tracking invalidation.
      const replies = await this.#bound(
        this.#client.multi().set(lockKey, token, 'PX', ttlMs, 'NX').get(guard.key).exec(),
      );
      const [setError, taken] = replies?.[0] ?? [new Error('the transaction was aborted'), null];
      const [getError, current] = replies?.[1] ?? [null, null];
      if (setError) throw setError;
      if (getError) throw getError;
      if (typeof current === 'string' && expiresAfter(current, guard.now)) {
        // Taken together with a value that landed since our miss: give the lock straight back.
        if (taken === 'OK') await this.#bound(this.#scripts.tiercacheRelease(lockKey, token));
        return 'fresh';
      }
      return taken === 'OK';
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async extendLock(lockKey: string, token: string, ttlMs: number): Promise<boolean> {
    try {
      return (await this.#bound(this.#scripts.tiercacheExtend(lockKey, token, ttlMs))) === 1;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async releaseLock(lockKey: string, token: string): Promise<void> {
    try {
      await this.#bound(this.#scripts.tiercacheRelease(lockKey, token));
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async setLoaded(write: LoadedWrite): Promise<boolean> {
    const args = [
      write.key,
      write.lockKey,
      write.value,
      write.ttlMs,
      write.createdAt,
      write.token,
      write.channel,
      write.key,
    ] as const;
    try {
      if (write.tagKeys === undefined || write.tagKeys.length === 0) {
        return (await this.#bound(this.#scripts.tiercacheSetLoaded(...args))) === 1;
      }
      // A skipped write still indexes its tags: an extra member only means an extra (harmless) delete later.
      const replies = await this.#pipeline([
        { slotKey: write.key, add: (p) => (p as unknown as TagPipeline).tiercacheSetLoaded(...args) },
        ...this.#tagOps(write, Date.now()),
      ]);
      return replies[0] === 1;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async invalidateTags(tagKeys: readonly string[], lockKeyOf: (key: string) => string): Promise<number> {
    if (tagKeys.length === 0) return 0;
    const now = Date.now();
    try {
      const replies = await this.#pipeline(
        tagKeys.map((tagKey) => ({
          slotKey: tagKey,
          add: (p) => (p as unknown as TagPipeline).tiercacheTagPop(tagKey, now),
        })),
      );
      const members = [...new Set(replies.flatMap((reply) => (Array.isArray(reply) ? (reply as string[]) : [])))];
      if (members.length === 0) return 0;
      return await this.deleteMany(members, members.map(lockKeyOf));
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async publish(channel: string, message: string): Promise<void> {
    try {
      await this.#bound(this.#client.publish(channel, message));
    } catch (error) {
      throw toCacheError(error);
    }
  }

  /**
   * Server-assisted invalidation (Redis ≥ 6): every write under `prefix` by any other connection sends its key to the
   * connection `redirectId`, which listens on `__redis__:invalidate`. NOLOOP: this connection's own writes do not
   * come back. Standalone only; a cluster relies on the bus.
   *
   * Switched off first, in the same round trip: after the subscriber reconnects, this connection still tracks on
   * behalf of the old, gone subscriber, and Redis refuses a second ON for the same prefix ("Prefix … overlaps with an
   * existing prefix"), which would leave the instance deaf to foreign writes.
   */
  async enableTracking(redirectId: number, prefix: string): Promise<boolean> {
    if (this.#client instanceof Cluster) return false;
    try {
      const results = await this.#bound(
        this.#client
          .pipeline()
          .call('CLIENT', 'TRACKING', 'off')
          .call(
            'CLIENT',
            'TRACKING',
            'on',
            'REDIRECT',
            String(redirectId),
            'BCAST',
            'PREFIX',
            this.#keyPrefix + prefix,
            'NOLOOP',
          )
          .exec(),
      );
      if (results === null || results.length !== 2) throw new Error('empty pipeline reply');
      for (const [error] of results) if (error) throw error;
      return true;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  /** Calls `listener` every time the data connection becomes ready (first connect and every reconnect). */
  onReady(listener: () => void): () => void {
    this.#client.on('ready', listener);
    return () => this.#client.off('ready', listener);
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
