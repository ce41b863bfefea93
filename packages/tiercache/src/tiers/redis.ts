import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import type { ChainableCommander, RedisOptions } from 'ioredis';
import type { CacheError } from '../errors.js';
import { toCacheError } from './errors.js';

export { toCacheError } from './errors.js';
import type {
  LoadedWrite,
  LockGuard,
  LockedRead,
  LockedReadReply,
  RemoteStatus,
  RemoteTier,
  RemoteWrite,
  StatusListener,
  SubscriberHandle,
  SubscriberOptions,
  WriteMode,
  WriteOp,
  WriteReply,
} from '../types.js';
import { Subscriber } from './redis-subscriber.js';

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

/**
 * "The value, or else the lock", for the keys of one turn's loads in one call. KEYS: data1, lock1, data2, lock2, …
 * ARGV: token, pttl, now. Returns value1, taken1, value2, taken2, … (a value is nil for a miss; taken is 1 when the
 * lock was set, which happens only for a key without an entry fresh at `now`).
 */
const READ_OR_LOCK = `
local out = {}
for i = 1, #KEYS, 2 do
  local value = redis.call('GET', KEYS[i])
  local fresh = false
  if value then
    local expires = tonumber(string.match(value, '^{"v":%d+,"k":%d,"c":%d+,"e":(%d+)'))
    fresh = expires ~= nil and expires > tonumber(ARGV[3])
  end
  local taken = 0
  if not fresh and redis.call('SET', KEYS[i + 1], ARGV[1], 'NX', 'PX', ARGV[2]) then taken = 1 end
  out[#out + 1] = value
  out[#out + 1] = taken
end
return out`;

/** A turn's plain sets as one call. KEYS: the keys. ARGV: value1, pttl1, value2, pttl2, … */
const SET_MANY = `
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', ARGV[2 * i]) end
return #KEYS`;

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
  tiercacheReadOrLock(numberOfKeys: number, ...args: (string | number)[]): Promise<(string | number | null)[]>;
  tiercacheSetMany(numberOfKeys: number, ...args: (string | number)[]): Promise<number>;
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

type PipelineResult = [Error | null, unknown];

const WRITTEN: WriteReply = Object.freeze({ ok: true, value: true });

function loadedArgs(write: LoadedWrite): readonly [string, string, string, number, number, string, string, string] {
  return [write.key, write.lockKey, write.value, write.ttlMs, write.createdAt, write.token, write.channel, write.key];
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

/**
 * ioredis' connection states as the cache needs them: a call made while a connection is being established waits for
 * it (within the timeout); one made while the client waits to retry, or after it gave up, is skipped at once.
 */
function statusOf(status: string): RemoteStatus {
  if (status === 'ready') return 'ready';
  if (status === 'connecting' || status === 'connect') return 'connecting';
  return 'down';
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
  #status: RemoteStatus;
  #lastError: unknown;
  readonly #statusListeners = new Set<StatusListener>();
  readonly #onClientEvent = (): void => this.#updateStatus();

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
    this.#onError = (error: unknown) => {
      this.#lastError = error;
      options.onConnectionError(toCacheError(error));
      this.#updateStatus();
    };
    // Without a listener ioredis prints every reconnect failure; the cache counts them instead.
    this.#client.on('error', this.#onError);
    // defineCommand sends EVALSHA and falls back to EVAL once per connection when the script is not cached.
    this.#client.defineCommand('tiercacheSetLoaded', { numberOfKeys: 2, lua: SET_LOADED });
    this.#client.defineCommand('tiercacheRelease', { numberOfKeys: 1, lua: RELEASE_LOCK });
    this.#client.defineCommand('tiercacheExtend', { numberOfKeys: 1, lua: EXTEND_LOCK });
    this.#client.defineCommand('tiercacheTagAdd', { numberOfKeys: 1, lua: TAG_ADD });
    this.#client.defineCommand('tiercacheTagPop', { numberOfKeys: 1, lua: TAG_POP });
    // Variadic: the number of keys is the first argument of each call.
    this.#client.defineCommand('tiercacheReadOrLock', { lua: READ_OR_LOCK });
    this.#client.defineCommand('tiercacheSetMany', { lua: SET_MANY });
    this.#status = statusOf(this.#client.status);
    for (const event of ['connect', 'ready', 'close', 'end', 'reconnecting', 'connecting']) {
      this.#client.on(event, this.#onClientEvent);
    }
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

  get status(): RemoteStatus {
    return this.#status;
  }

  onStatus(listener: StatusListener): () => void {
    const entry: StatusListener = (status, error) => listener(status, error);
    this.#statusListeners.add(entry);
    return () => {
      this.#statusListeners.delete(entry);
    };
  }

  #updateStatus(): void {
    const next = statusOf(this.#client.status);
    if (next === this.#status) return;
    this.#status = next;
    const error = next === 'down' ? this.#lastError : undefined;
    if (next === 'ready') this.#lastError = undefined;
    for (const listener of [...this.#statusListeners]) listener(next, error);
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

  async readOrLock(
    reads: readonly LockedRead[],
    token: string,
    ttlMs: number,
    now: number,
  ): Promise<LockedReadReply[]> {
    if (reads.length === 0) return [];
    const out = new Array<LockedReadReply>(reads.length);
    const run = async (indexes: readonly number[]): Promise<void> => {
      const args: (string | number)[] = [];
      for (const i of indexes) {
        const read = reads[i] as LockedRead;
        args.push(read.key, read.lockKey);
      }
      args.push(token, ttlMs, now);
      const reply = await this.#bound(this.#scripts.tiercacheReadOrLock(indexes.length * 2, ...args));
      indexes.forEach((index, j) => {
        const value = reply[2 * j];
        out[index] = { value: typeof value === 'string' ? value : null, locked: reply[2 * j + 1] === 1 };
      });
    };
    // A script touches one slot: a data key and its lock share one (the lock key carries the data key's hash tag).
    if (this.#client instanceof Cluster) await Promise.all([...groupBySlot(reads, (r) => r.key).values()].map(run));
    else await run(reads.map((_, i) => i));
    return out;
  }

  async write(ops: readonly WriteOp[], mode: WriteMode): Promise<WriteReply[]> {
    if (ops.length === 0) return [];
    if (mode.scripted && ops.length > 1 && ops.every((op) => op.kind === 'set' && !op.tagKeys?.length)) {
      await this.#setManyScripted(ops as readonly RemoteWrite[]);
      return ops.map(() => WRITTEN);
    }
    const commands: PipelineOp[] = [];
    /** For each op: the indexes of its commands, and which of them carry its reply. */
    const spans: { readonly from: number; readonly to: number; readonly counted: readonly number[] }[] = [];
    const now = Date.now();
    for (const op of ops) {
      const from = commands.length;
      const counted: number[] = [];
      if (op.kind === 'set') {
        counted.push(commands.length);
        commands.push({ slotKey: op.key, add: (p) => p.set(op.key, op.value, 'PX', op.ttlMs) });
        commands.push(...this.#tagOps(op, now));
      } else if (op.kind === 'loaded') {
        counted.push(commands.length);
        const args = loadedArgs(op);
        commands.push({ slotKey: op.key, add: (p) => (p as unknown as TagPipeline).tiercacheSetLoaded(...args) });
        commands.push(...this.#tagOps(op, now));
      } else {
        const groups =
          this.#client instanceof Cluster ? [...groupBySlot(op.keys, (k) => k).values()] : [op.keys.map((_, i) => i)];
        for (const indexes of groups) {
          const own = indexes.map((i) => op.keys[i] as string);
          const extra = indexes.map((i) => op.alsoUnlink[i]).filter((k): k is string => k !== undefined);
          counted.push(commands.length);
          commands.push({ slotKey: own[0] as string, add: (p) => p.unlink(...own) });
          if (extra.length > 0) commands.push({ slotKey: own[0] as string, add: (p) => p.unlink(...extra) });
        }
      }
      spans.push({ from, to: commands.length, counted });
    }
    const results = await this.#pipelineSettled(commands);
    return ops.map((op, i): WriteReply => {
      const span = spans[i] as (typeof spans)[number];
      for (let c = span.from; c < span.to; c++) {
        const [error] = results[c] as PipelineResult;
        if (error) return { ok: false, error };
      }
      if (op.kind === 'set') return WRITTEN;
      if (op.kind === 'loaded')
        return { ok: true, value: (results[span.counted[0] as number] as PipelineResult)[1] === 1 };
      let count = 0;
      for (const c of span.counted) count += Number((results[c] as PipelineResult)[1]);
      return { ok: true, value: count };
    });
  }

  async #setManyScripted(writes: readonly RemoteWrite[]): Promise<void> {
    const run = async (indexes: readonly number[]): Promise<void> => {
      const keys: string[] = [];
      const args: (string | number)[] = [];
      for (const i of indexes) {
        const write = writes[i] as RemoteWrite;
        keys.push(write.key);
        args.push(write.value, write.ttlMs);
      }
      await this.#bound(this.#scripts.tiercacheSetMany(keys.length, ...keys, ...args));
    };
    if (this.#client instanceof Cluster) await Promise.all([...groupBySlot(writes, (w) => w.key).values()].map(run));
    else await run(writes.map((_, i) => i));
  }

  /**
   * Like #pipeline, but every command's own outcome comes back (`[error, reply]`), so one bad command fails its own
   * op only. Throws only when the whole round trip failed (a timeout, a lost connection).
   */
  async #pipelineSettled(ops: readonly PipelineOp[]): Promise<PipelineResult[]> {
    const groups =
      this.#client instanceof Cluster ? [...groupBySlot(ops, (op) => op.slotKey).values()] : [ops.map((_, i) => i)];
    const out = new Array<PipelineResult>(ops.length);
    await Promise.all(
      groups.map(async (indexes) => {
        const pipeline = this.#client.pipeline();
        for (const i of indexes) (ops[i] as PipelineOp).add(pipeline);
        const results = (await this.#bound(pipeline.exec())) ?? [];
        indexes.forEach((index, j) => {
          out[index] = results[j] ?? [new Error('missing pipeline reply'), undefined];
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
    const args = loadedArgs(write);
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

  openSubscriber(options: SubscriberOptions): SubscriberHandle {
    return new Subscriber(this.#client, options);
  }

  async close(): Promise<void> {
    this.#client.off('error', this.#onError);
    for (const event of ['connect', 'ready', 'close', 'end', 'reconnecting', 'connecting']) {
      this.#client.off(event, this.#onClientEvent);
    }
    this.#statusListeners.clear();
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
