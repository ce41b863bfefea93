/** The contracts every part of tiercache is written against. Implementations live in tiers/, resilience/ and so on. */

/** Where time comes from. Inject a fake one in tests; `Date.now` in production. Milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A duration: milliseconds as a number, or a string such as `'250ms'`, `'5m'`, `'1h'`, `'30d'`. */
export type Duration = number | string;

/**
 * The in-process tier. Synchronous on purpose: an L1 hit never awaits. Takes full keys (prefix included), so that
 * namespaces share one bounded LRU, and may store them relative to a root prefix they all start with.
 */
export interface MemoryTier<V> {
  /** `now` is passed in so one read of the clock serves the whole lookup. */
  get(key: string, now: number): V | undefined;
  /** `get` by the key relative to the tier's root prefix (the hot path: no string is built for the lookup). */
  getRelative(key: string, now: number): V | undefined;
  /** `size` is the approximate byte size of the encoded entry; `until` the time after which the copy is dropped. */
  set(key: string, value: V, size: number, until: number): void;
  delete(key: string): boolean;
  /** Drops every key that starts with `prefix`. */
  deleteByPrefix(prefix: string): number;
  /** Drops every key that starts with `prefix` and whose value matches. */
  deleteWhere(prefix: string, matches: (value: V) => boolean): number;
  clear(): void;
  readonly entries: number;
  readonly bytes: number;
}

/** One write of a batch to the remote tier: an encoded entry and how long Redis keeps it. */
export interface RemoteWrite {
  readonly key: string;
  readonly value: string;
  readonly ttlMs: number;
  /** Tag sets to index the key in (full Redis keys of the tag sets), written in the same round trip. */
  readonly tagKeys?: readonly string[];
}

/**
 * The shared tier (Redis). Storage only: it stores encoded strings under full keys and reports failures as typed
 * errors; the policy (fallback, counting, events) belongs to the cache above it. Every call is bounded by the tier's
 * timeout and settles; none waits for a reconnect.
 */
export interface RemoteTier {
  /** True while commands can be sent; when false the cache skips the tier without trying. */
  readonly available: boolean;
  /** The stored string; `null` or undefined for a miss. May reject with an untyped error (the cache maps it). */
  get(key: string): Promise<string | null | undefined>;
  getMany(keys: readonly string[]): Promise<(string | null | undefined)[]>;
  set(key: string, value: string, ttlMs: number): Promise<unknown>;
  setMany(writes: readonly RemoteWrite[]): Promise<void>;
  /**
   * Unlinks `keys` (and `alsoUnlink`, uncounted, in the same round trip; each of those must share a hash slot with
   * the key at the same index). Returns how many of `keys` existed.
   */
  deleteMany(keys: readonly string[], alsoUnlink?: readonly string[]): Promise<number>;
  /** Unlinks every key under the literal `prefix` (SCAN + UNLINK; glob characters escaped). Returns how many. */
  deleteByPrefix(prefix: string): Promise<number>;
  /** `SET lockKey token NX PX ttlMs`: true when this caller now holds the lock. */
  acquireLock(lockKey: string, token: string, ttlMs: number, guard?: LockGuard): Promise<boolean | 'fresh'>;
  /** Extends the lock only while `token` still holds it (compare-and-pexpire). */
  extendLock(lockKey: string, token: string, ttlMs: number): Promise<boolean>;
  /** Deletes the lock only while `token` still holds it (compare-and-delete): never another owner's lock. */
  releaseLock(lockKey: string, token: string): Promise<void>;
  /**
   * Writes a loaded value unless something newer is there, in one round trip: skipped when `token` is given and no
   * longer holds `lockKey` (the lock expired or an invalidation removed it), or when the stored entry was created
   * after `createdAt`. On a write, releases the lock and publishes `key` on `channel` so waiters wake.
   */
  setLoaded(write: LoadedWrite): Promise<boolean>;
  /**
   * Deletes every live member of the tag sets (and each member's lock, `lockKeyOf(member)`), and the tag sets
   * themselves. Returns how many members existed.
   */
  invalidateTags(tagKeys: readonly string[], lockKeyOf: (key: string) => string): Promise<number>;
  publish(channel: string, message: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Take the lock only while `key` holds no entry fresh at `now` (its `e` past `now`), in the same atomic step:
 * `'fresh'` says another process's value landed between this process's miss and its lock attempt, so loading again
 * would be a second load of the same key.
 */
export interface LockGuard {
  readonly key: string;
  readonly now: number;
}

export interface LoadedWrite extends RemoteWrite {
  readonly createdAt: number;
  readonly lockKey: string;
  /** Empty when the loader ran without the lock. */
  readonly token: string;
  readonly channel: string;
}
