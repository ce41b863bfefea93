import { storedCreatedAt, storedFreshAt, withTimes } from '../entry.js';
import { ConfigurationError, ConnectionError, RedisReplyError, describeValue } from '../errors.js';
import type { Disposer } from '../observability/events.js';
import { systemClock } from '../types.js';
import type {
  Clock,
  LoadedRenewal,
  LoadedWrite,
  LockGuard,
  LockedRead,
  KeyReply,
  LockedReadReplies,
  RemoteStatus,
  RemoteTier,
  RemoteWrite,
  RenewReply,
  StatusListener,
  WriteOp,
  WriteReply,
} from '../types.js';
import { readOrLockByPrimitives, writeByPrimitives } from './batch-by-primitives.js';
import { InMemoryStrategyStore } from '../tiers/memory-strategies.js';

interface Stored {
  readonly value: string;
  readonly expiresAt: number;
}

/** What the Redis tier makes of a reply error (an ioredis `ReplyError` as the cause), so callers see the same thing. */
function replyError(message: string): RedisReplyError {
  const cause = new Error(message);
  cause.name = 'ReplyError';
  return new RedisReplyError(`Redis refused the command: ${message}`, { cause });
}

/** Redis refuses PX values that are not positive integers; so does this tier, so a bad TTL fails in unit tests too. */
function checkTtl(ttlMs: number, command: string): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw replyError(`ERR invalid expire time in '${command}' command`);
  }
}

export interface InMemoryRemoteTierOptions {
  /** Where expiry time comes from; share the `FakeClock` the caches use. @default Date.now */
  readonly clock?: Clock;
}

/**
 * A `RemoteTier` over a Map, with Redis' semantics where the cache can observe them: PX expiry against the clock
 * (a key set with PX 100 at t is gone at t + 100), `NX` locks, compare-and-delete release, the late-writer guard of
 * `setLoaded`, tag sets that expire with their members, literal prefix deletes (tag sets included), and pub/sub
 * delivered asynchronously. Several caches given one instance share
 * it the way processes share a Redis, with no I/O, so unit tests of multi-instance behaviour stay fast and exact.
 */
export class InMemoryRemoteTier implements RemoteTier {
  readonly #clock: Clock;
  readonly #data = new Map<string, Stored>();
  readonly #channels = new Map<string, Set<(message: string) => void>>();
  readonly #tags = new Map<string, Map<string, number>>();
  #closed = false;
  readonly #statusListeners = new Set<StatusListener>();
  /** Write-behind queues and counters, with Redis' semantics. */
  readonly streams: InMemoryStrategyStore;
  readonly counters: InMemoryStrategyStore;

  constructor(options: InMemoryRemoteTierOptions = {}) {
    const clock: unknown = options.clock ?? systemClock;
    if (typeof clock !== 'object' || clock === null || typeof (clock as Partial<Clock>).now !== 'function') {
      throw new ConfigurationError(
        `Expected \`clock\` to be an object with a now() method, got ${describeValue(clock)}`,
      );
    }
    this.#clock = clock as Clock;
    this.streams = this.counters = new InMemoryStrategyStore(this.#clock, () => this.#open());
  }

  get available(): boolean {
    return !this.#closed;
  }

  get status(): RemoteStatus {
    return this.#closed ? 'down' : 'ready';
  }

  onStatus(listener: StatusListener): () => void {
    const entry: StatusListener = (status, error) => listener(status, error);
    this.#statusListeners.add(entry);
    return () => {
      this.#statusListeners.delete(entry);
    };
  }

  /** As the contract says: a subclass may answer a key with a CacheError (a cluster node down) to test that path. */
  readOrLock(reads: readonly LockedRead[], token: string, ttlMs: number, now: number): Promise<LockedReadReplies> {
    return readOrLockByPrimitives(this, reads, token, ttlMs, now);
  }

  write(ops: readonly WriteOp[]): Promise<WriteReply[]> {
    return writeByPrimitives(this, ops);
  }

  async get(key: string): Promise<string | undefined> {
    this.#open();
    return this.#read(key, this.#clock.now())?.value;
  }

  /** As the contract says: a subclass may answer a key with a CacheError (a cluster node down) to test that path. */
  async getMany(keys: readonly string[]): Promise<KeyReply[]> {
    this.#open();
    const now = this.#clock.now();
    return keys.map((key) => this.#read(key, now)?.value);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#open();
    checkTtl(ttlMs, 'set');
    this.#data.set(key, { value, expiresAt: this.#clock.now() + ttlMs });
  }

  async setMany(writes: readonly RemoteWrite[]): Promise<void> {
    this.#open();
    // Checked first, so a bad write leaves none of the batch behind (a failed pipeline would report the same).
    for (const write of writes) checkTtl(write.ttlMs, 'set');
    const now = this.#clock.now();
    for (const write of writes) {
      this.#data.set(write.key, { value: write.value, expiresAt: now + write.ttlMs });
      this.#index(write, now);
    }
  }

  /**
   * The tag index, as the Redis tier keeps it (a sorted set per tag scored by each member's expiry): members that
   * expired are pruned on every add, and a set whose members have all expired is gone, so it never outlives what it
   * indexes.
   */
  #index(write: RemoteWrite, now: number): void {
    for (const tagKey of write.tagKeys ?? []) {
      let members = this.#tags.get(tagKey);
      if (members === undefined) this.#tags.set(tagKey, (members = new Map()));
      members.set(write.key, now + write.ttlMs);
      for (const [member, expiresAt] of members) if (expiresAt < now) members.delete(member);
    }
  }

  /** A tag set's live members (score ≥ now, as the Redis script reads them), or undefined once all expired. */
  #members(tagKey: string, now: number): string[] | undefined {
    const members = this.#tags.get(tagKey);
    if (members === undefined) return undefined;
    const live = [...members].filter(([, expiresAt]) => expiresAt >= now).map(([member]) => member);
    if (live.length === 0 || Math.max(...members.values()) <= now) {
      this.#tags.delete(tagKey);
      return undefined;
    }
    return live;
  }

  async invalidateTags(tagKeys: readonly string[], lockKeyOf: (key: string) => string): Promise<number> {
    this.#open();
    const now = this.#clock.now();
    const members = new Set<string>();
    for (const tagKey of tagKeys) {
      for (const member of this.#members(tagKey, now) ?? []) members.add(member);
      this.#tags.delete(tagKey);
    }
    if (members.size === 0) return 0;
    return this.deleteMany([...members], [...members].map(lockKeyOf));
  }

  async deleteMany(keys: readonly string[], alsoUnlink: readonly string[] = []): Promise<number> {
    this.#open();
    const now = this.#clock.now();
    let existed = 0;
    for (const key of keys) {
      if (this.#read(key, now) !== undefined || this.#members(key, now) !== undefined) existed++;
      this.#data.delete(key);
      this.#tags.delete(key);
    }
    for (const key of alsoUnlink) {
      this.#data.delete(key);
      this.#tags.delete(key);
    }
    return existed;
  }

  async deleteByPrefix(prefix: string): Promise<number> {
    this.#open();
    const now = this.#clock.now();
    let removed = 0;
    for (const [key, stored] of this.#data) {
      if (!key.startsWith(prefix)) continue;
      if (now < stored.expiresAt) removed++;
      this.#data.delete(key);
    }
    // Tag sets live under the prefix too, so a clear drops the index with the entries (Redis counts them as keys).
    for (const tagKey of [...this.#tags.keys()]) {
      if (!tagKey.startsWith(prefix)) continue;
      if (this.#members(tagKey, now) !== undefined) removed++;
      this.#tags.delete(tagKey);
    }
    return removed;
  }

  async acquireLock(lockKey: string, token: string, ttlMs: number, guard?: LockGuard): Promise<boolean | 'fresh'> {
    this.#open();
    checkTtl(ttlMs, 'set');
    const now = this.#clock.now();
    if (guard !== undefined) {
      if (storedFreshAt(this.#read(guard.key, now)?.value, guard.now)) return 'fresh';
    }
    if (this.#read(lockKey, now) !== undefined) return false;
    this.#data.set(lockKey, { value: token, expiresAt: now + ttlMs });
    return true;
  }

  async extendLock(lockKey: string, token: string, ttlMs: number): Promise<boolean> {
    this.#open();
    checkTtl(ttlMs, 'pexpire');
    const now = this.#clock.now();
    if (this.#read(lockKey, now)?.value !== token) return false;
    this.#data.set(lockKey, { value: token, expiresAt: now + ttlMs });
    return true;
  }

  async releaseLock(lockKey: string, token: string): Promise<void> {
    this.#open();
    if (this.#read(lockKey, this.#clock.now())?.value === token) this.#data.delete(lockKey);
  }

  async setLoaded(write: LoadedWrite): Promise<boolean> {
    this.#open();
    checkTtl(write.ttlMs, 'set');
    const now = this.#clock.now();
    // The Redis tier indexes tags in the same pipeline whether or not the script writes: so does this.
    this.#index(write, now);
    const locked = write.token !== '';
    if (locked && this.#read(write.lockKey, now)?.value !== write.token) return false;
    const current = this.#read(write.key, now);
    const created = current === undefined ? undefined : storedCreatedAt(current.value);
    if (created !== undefined && created > write.createdAt) {
      if (locked) this.#data.delete(write.lockKey);
      return false;
    }
    this.#data.set(write.key, { value: write.value, expiresAt: now + write.ttlMs });
    if (locked) this.#data.delete(write.lockKey);
    if (write.channel !== '') this.deliver(write.channel, write.key);
    return true;
  }

  async renewLoaded(renewal: LoadedRenewal): Promise<RenewReply> {
    this.#open();
    checkTtl(renewal.ttlMs, 'set');
    const now = this.#clock.now();
    const locked = renewal.token !== '';
    if (locked && this.#read(renewal.lockKey, now)?.value !== renewal.token) return 'lost';
    const done = (reply: RenewReply): RenewReply => {
      if (locked) this.#data.delete(renewal.lockKey);
      return reply;
    };
    const current = this.#read(renewal.key, now);
    const renewed = current === undefined ? undefined : withTimes(current.value, renewal.expiresAt, renewal.graceUntil);
    if (renewed === undefined) return done('missing');
    const created = renewed.createdAt;
    if (created !== renewal.createdAt) return done(created > renewal.createdAt ? 'newer' : 'missing');
    this.#data.set(renewal.key, { value: renewed.encoded, expiresAt: now + renewal.ttlMs });
    this.#index(
      { key: renewal.key, value: '', ttlMs: renewal.ttlMs, ...(renewal.tagKeys ? { tagKeys: renewal.tagKeys } : {}) },
      now,
    );
    if (renewal.channel !== '') this.deliver(renewal.channel, renewal.key);
    return done('renewed');
  }

  async close(): Promise<void> {
    const wasOpen = !this.#closed;
    this.#closed = true;
    this.#channels.clear();
    if (wasOpen) for (const listener of [...this.#statusListeners]) listener('down');
  }

  // ── for tests: what Redis would let you inspect ────────────────────────────────────────────────────────────

  /** Like PTTL: ms until `key` expires, or -2 when it does not exist. */
  pttl(key: string): number {
    const now = this.#clock.now();
    const stored = this.#read(key, now);
    return stored === undefined ? -2 : stored.expiresAt - now;
  }

  /** The live keys, in insertion order. Expired ones are dropped on the way. */
  keys(): string[] {
    const now = this.#clock.now();
    const live: string[] = [];
    for (const key of [...this.#data.keys()]) if (this.#read(key, now) !== undefined) live.push(key);
    return live;
  }

  get size(): number {
    return this.keys().length;
  }

  /** The live members of a tag set (full keys), as `ZRANGEBYSCORE tagKey now +inf` would list them. */
  tagMembers(tagKey: string): string[] {
    return this.#members(tagKey, this.#clock.now()) ?? [];
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#open();
    this.deliver(channel, message);
  }

  /**
   * Delivers `message` to the channel's subscribers on a later microtask, as a Redis subscriber would get it.
   * Returns how many subscribers it will reach.
   */
  deliver(channel: string, message: string): number {
    const listeners = this.#channels.get(channel);
    if (listeners === undefined) return 0;
    const targets = [...listeners];
    queueMicrotask(() => {
      for (const listener of targets) {
        // A throwing subscriber must not become an uncaught exception in someone else's test.
        try {
          listener(message);
        } catch (error) {
          process.emitWarning(`tiercache/testing: a subscriber of '${channel}' threw: ${String(error)}`);
        }
      }
    });
    return targets.length;
  }

  subscribe(channel: string, listener: (message: string) => void): Disposer {
    let listeners = this.#channels.get(channel);
    if (listeners === undefined) this.#channels.set(channel, (listeners = new Set()));
    const set = listeners;
    const entry = (message: string): void => listener(message);
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.#channels.get(channel) === set) this.#channels.delete(channel);
    };
  }

  #read(key: string, now: number): Stored | undefined {
    const stored = this.#data.get(key);
    if (stored === undefined) return undefined;
    if (now >= stored.expiresAt) {
      this.#data.delete(key);
      return undefined;
    }
    return stored;
  }

  #open(): void {
    // The message ioredis gives for a command on a closed connection.
    if (this.#closed) throw new ConnectionError('Redis command failed: Connection is closed.');
  }
}
