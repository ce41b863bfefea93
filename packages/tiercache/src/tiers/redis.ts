import { Cluster, Command, Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { CacheError } from '../errors.js';
import { storedFreshAt } from '../entry.js';
import { Deadlines } from './deadlines.js';
import { toCacheError } from './errors.js';

export { toCacheError } from './errors.js';
import type {
  LoadedRenewal,
  LoadedWrite,
  LockGuard,
  KeyReply,
  LockedRead,
  LockedReadReplies,
  RemoteStatus,
  RemoteTier,
  RemoteWrite,
  RenewReply,
  ShareListener,
  StatusListener,
  SubscriberHandle,
  SubscriberOptions,
  WriteMode,
  WriteOp,
  WriteReply,
} from '../types.js';
import { Subscriber } from './redis-subscriber.js';
import { ClusterSubscriber } from './redis-cluster-subscriber.js';
import { RedisBatches, slotFailure } from './redis-batch.js';
import type { SlotReply } from './redis-batch.js';
import { unlinkByPrefix, unlinkMany } from './redis-delete.js';
import type { DeleteContext } from './redis-delete.js';
import { RedisStrategyStore } from './redis-strategies.js';
import { failFastOptions, isClient, statusOf, switchTrackingOn } from './redis-connection.js';
import { clusterFailFastOptions, isClusterSpec, validateClusterSpec } from './redis-cluster-options.js';
import type { RedisClusterOptions } from './redis-cluster-options.js';
import {
  EXTEND_LOCK,
  READ_OR_LOCK,
  RELEASE_LOCK,
  RENEW_LOADED,
  SET_LOADED,
  SET_MANY,
  TAG_ADD,
  TAG_POP,
  loadedArgs,
  renewArgs,
  renewReply,
} from './redis-scripts.js';
import type { PipelineOp, ScriptCommands, TagPipeline } from './redis-scripts.js';

export { failFastOptions, reconnectDelay } from './redis-connection.js';

type Client = Redis | Cluster;

export interface RedisTierOptions {
  /** Every command settles within this many ms. */
  readonly timeoutMs: number;
  /** Connection-level failures (refused, reset) reported by the client between commands. */
  readonly onConnectionError: (error: CacheError) => void;
}

export { escapeGlob } from './redis-delete.js';

export class RedisTier implements RemoteTier {
  readonly #client: Client;
  readonly #owned: boolean;
  /** Bounds every command (the client's own commandTimeout, if any, arms a timer per command: too dear). */
  readonly #deadlines: Deadlines;
  readonly #timeoutMs: number;
  /** The options `client.get` gives its Command: a string reply, and the client's key prefix as ioredis applies it. */
  readonly #stringReply: { readonly replyEncoding: 'utf8'; readonly keyPrefix?: string };
  readonly #keyPrefix: string;
  readonly #onError: (error: unknown) => void;
  #status: RemoteStatus;
  #lastError: unknown;
  readonly #statusListeners = new Set<StatusListener>();
  readonly #onClientEvent = (): void => this.#updateStatus();
  /**
   * ioredis opens a cluster node's connection on its first command, so the first call after `ready` would pay for
   * connecting to every master inside its timeout (measured: 114 ms for a 20-key mget on 3 masters, past the default
   * 100 ms). Each master's connection is opened as soon as the client learns of it instead.
   */
  readonly #openNode = (node: Redis): void => {
    if (node.status === 'wait' && node.options.readOnly !== true) node.connect().catch(() => {});
  };
  readonly #batches: RedisBatches;
  readonly #deletes: DeleteContext;
  /** Write-behind queues and counters (strategies/). */
  readonly streams: RedisStrategyStore;
  readonly counters: RedisStrategyStore;

  constructor(source: string | RedisOptions | Client | RedisClusterOptions, options: RedisTierOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#deadlines = new Deadlines(options.timeoutMs);
    if (isClient(source)) {
      this.#client = source;
      this.#owned = false;
    } else if (isClusterSpec(source)) {
      const spec = validateClusterSpec(source);
      this.#client = new Cluster([...spec.cluster], clusterFailFastOptions(spec.options, options.timeoutMs));
      this.#owned = true;
    } else {
      const settings = failFastOptions(typeof source === 'string' ? {} : source, options.timeoutMs);
      this.#client = typeof source === 'string' ? new Redis(source, settings) : new Redis(settings);
      this.#owned = true;
    }
    // What ioredis prefixes keys with: a Cluster takes its nodes' keyPrefix as its own when it has none.
    this.#keyPrefix = this.#client.options.keyPrefix ?? '';
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
    this.#client.defineCommand('tiercacheRenewLoaded', { numberOfKeys: 2, lua: RENEW_LOADED });
    this.#client.defineCommand('tiercacheExtend', { numberOfKeys: 1, lua: EXTEND_LOCK });
    this.#client.defineCommand('tiercacheTagAdd', { numberOfKeys: 1, lua: TAG_ADD });
    this.#client.defineCommand('tiercacheTagPop', { numberOfKeys: 1, lua: TAG_POP });
    // Variadic: the number of keys is the first argument of each call.
    this.#client.defineCommand('tiercacheReadOrLock', { lua: READ_OR_LOCK });
    this.#client.defineCommand('tiercacheSetMany', { lua: SET_MANY });
    this.#stringReply =
      this.#keyPrefix === '' ? { replyEncoding: 'utf8' } : { replyEncoding: 'utf8', keyPrefix: this.#keyPrefix };
    this.#batches = new RedisBatches(this.#client, (promise) => this.#bound(promise));
    this.#deletes = {
      client: this.#client,
      batches: this.#batches,
      keyPrefix: this.#keyPrefix,
      bound: (promise) => this.#bound(promise),
    };
    this.streams = this.counters = new RedisStrategyStore(this.#client, (promise) => this.#bound(promise));
    if (this.#client instanceof Cluster) {
      this.#client.on('+node', this.#openNode);
      for (const node of this.#client.nodes('master')) this.#openNode(node);
    }
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
    return this.#deadlines.bound(promise);
  }

  /**
   * Not async, and no error mapping here: the hottest call of the tier returns ioredis' own promise (a miss is
   * `null`), and the cache maps a rejection with toCacheError. Saves two promise hops per read.
   */
  get(key: string): Promise<string | null | undefined> {
    return this.#sendBounded<string | null>('get', [key]);
  }

  /**
   * What `client.get` or `client.mget` does, with the command in hand, so the deadline can reject it in place
   * (ioredis' own way): the caller continues ioredis' promise, no promise of ours around it.
   */
  #sendBounded<T>(name: 'get' | 'mget', args: readonly string[]): Promise<T> {
    // ioredis copies the arguments itself (`args.flat()`): the caller's array is not copied here as well.
    const command = new Command(name, args as string[], this.#stringReply);
    this.#deadlines.watch(command);
    void this.#client.sendCommand(command);
    return command.promise as Promise<T>;
  }

  async getMany(keys: readonly string[], onShare?: ShareListener): Promise<KeyReply[]> {
    if (keys.length === 0) return [];
    try {
      if (!(this.#client instanceof Cluster)) return await this.#sendBounded<(string | null)[]>('mget', keys);
      // MGET across slots is CROSSSLOT on a cluster: one MGET per slot, one pipeline per node. Each node's keys are
      // told as soon as it answers, so one slow master does not hold up the others' callers.
      const out = new Array<KeyReply>(keys.length);
      const seen = new Map<string, CacheError>();
      const fill = (replies: readonly SlotReply[]): void => {
        const told: number[] = [];
        for (const { indexes, error, reply } of replies) {
          told.push(...indexes);
          // That slot's node failed while others answered: its keys fail, the others are served.
          if (error !== null) {
            const failed = slotFailure(seen, error);
            for (const index of indexes) out[index] = failed;
          } else {
            const values = reply as (string | null)[];
            indexes.forEach((index, j) => (out[index] = values[j] ?? undefined));
          }
        }
        onShare?.(told, out);
      };
      await this.#batches.bySlot(
        keys,
        (key) => key,
        (p, indexes) => p.mget(...indexes.map((i) => keys[i] as string)),
        fill,
      );
      return out;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  /** Like `get`: ioredis' own promise; the cache maps a rejection. */
  set(key: string, value: string, ttlMs: number): Promise<unknown> {
    return this.#deadlines.bound(this.#client.set(key, value, 'PX', ttlMs));
  }

  async setMany(writes: readonly RemoteWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const now = Date.now();
    const ops: PipelineOp[] = [];
    for (const write of writes) {
      ops.push({ slotKey: write.key, add: (p) => p.set(write.key, write.value, 'PX', write.ttlMs) });
      ops.push(...this.#batches.tagOps(write, now));
    }
    try {
      await this.#batches.pipeline(ops);
    } catch (error) {
      throw toCacheError(error);
    }
  }

  readOrLock(reads: readonly LockedRead[], token: string, ttlMs: number, now: number): Promise<LockedReadReplies> {
    return this.#batches.readOrLock(reads, token, ttlMs, now);
  }

  write(ops: readonly WriteOp[], mode: WriteMode): Promise<WriteReply[]> {
    return this.#batches.write(ops, mode);
  }

  async deleteMany(keys: readonly string[], alsoUnlink: readonly string[] = []): Promise<number> {
    try {
      return await unlinkMany(this.#deletes, keys, alsoUnlink);
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async deleteByPrefix(prefix: string): Promise<number> {
    try {
      return await unlinkByPrefix(this.#deletes, prefix);
    } catch (error) {
      throw toCacheError(error);
    }
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
      if (typeof current === 'string' && storedFreshAt(current, guard.now)) {
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
      const replies = await this.#batches.pipeline([
        { slotKey: write.key, add: (p) => (p as unknown as TagPipeline).tiercacheSetLoaded(...args) },
        ...this.#batches.tagOps(write, Date.now()),
      ]);
      return replies[0] === 1;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async renewLoaded(renewal: LoadedRenewal): Promise<RenewReply> {
    const args = renewArgs(renewal);
    try {
      if (renewal.tagKeys === undefined || renewal.tagKeys.length === 0) {
        return renewReply(await this.#bound(this.#scripts.tiercacheRenewLoaded(...args)));
      }
      // The tag index follows the new expiry, so invalidateTags still finds the key until it is gone.
      const replies = await this.#batches.pipeline([
        { slotKey: renewal.key, add: (p) => (p as unknown as TagPipeline).tiercacheRenewLoaded(...args) },
        ...this.#batches.tagOps(
          { key: renewal.key, value: '', ttlMs: renewal.ttlMs, tagKeys: renewal.tagKeys },
          Date.now(),
        ),
      ]);
      return renewReply(replies[0]);
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async invalidateTags(tagKeys: readonly string[], lockKeyOf: (key: string) => string): Promise<number> {
    if (tagKeys.length === 0) return 0;
    const now = Date.now();
    try {
      const replies = await this.#batches.pipeline(
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
   * come back. Standalone only: on a cluster the subscriber sets tracking up itself, per master (ClusterSubscriber).
   *
   * Switched off first, in the same round trip: after the subscriber reconnects, this connection still tracks on
   * behalf of the old, gone subscriber, and Redis refuses a second ON for the same prefix ("Prefix … overlaps with an
   * existing prefix"), which would leave the instance deaf to foreign writes.
   */
  async enableTracking(redirectId: number, prefix: string): Promise<boolean> {
    if (this.#client instanceof Cluster) return false;
    try {
      await switchTrackingOn(this.#client, String(redirectId), this.#keyPrefix + prefix, (p) => this.#bound(p));
      return true;
    } catch (error) {
      throw toCacheError(error);
    }
  }

  openSubscriber(options: SubscriberOptions): SubscriberHandle {
    if (this.#client instanceof Cluster) {
      return new ClusterSubscriber(this.#client, {
        ...options,
        storedPrefix: this.#keyPrefix + (options.trackingPrefix ?? ''),
      });
    }
    return new Subscriber(this.#client, options, this.#timeoutMs);
  }

  async close(): Promise<void> {
    this.#client.off('error', this.#onError);
    this.#client.off('+node', this.#openNode);
    for (const event of ['connect', 'ready', 'close', 'end', 'reconnecting', 'connecting']) {
      this.#client.off(event, this.#onClientEvent);
    }
    this.#statusListeners.clear();
    try {
      if (this.#owned) await this.#quit();
    } finally {
      this.#deadlines.close();
    }
  }

  async #quit(): Promise<void> {
    // A listener stays until the socket is gone, so a late error after quit is not an unhandled 'error' event.
    this.#client.on('error', () => {});
    if (this.#client.status !== 'ready') {
      this.#client.disconnect();
      return;
    }
    try {
      await this.#bound(this.#client.quit());
    } catch {
      this.#client.disconnect();
    }
  }
}
