import type { CacheError } from './errors.js';

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
  /** Every full key with its value (fresh or not): for the one check of start-up copies against Redis. */
  list(): readonly (readonly [string, V])[];
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

/** Where the connection to the shared tier stands: being established, usable, or known to be down. */
export type RemoteStatus = 'connecting' | 'ready' | 'down';

/** Called on every change of the remote tier's status; `error` says why it went down, when known. */
export type StatusListener = (status: RemoteStatus, error?: unknown) => void;

/** One key of a "value or lock" read: the data key and the stampede lock that guards its load. */
export interface LockedRead {
  readonly key: string;
  readonly lockKey: string;
}

/**
 * One key's answer in a multi-key read: the stored string; `null` or undefined for a miss; or, on a Redis Cluster where
 * the other nodes answered, the error of the node that holds the key (its master down): that key's own failure.
 */
export type KeyReply = string | null | undefined | CacheError;

/** What a "value or lock" read found: the stored string (any age), and whether this caller now holds the lock. */
export interface LockedReadReply {
  readonly value: string | null | undefined;
  readonly locked: boolean;
}

/**
 * Told a node's share of a multi-key read as soon as that node has answered (a Redis Cluster, several nodes):
 * `values[i]` is final for every `i` in `indexes`. A tier that answers all keys at once never calls it.
 */
export type ShareListener = (indexes: readonly number[], values: readonly KeyReply[]) => void;

/** A "value or lock" read's answers, in order; a key whose cluster node failed answers that node's error. */
export type LockedReadReplies = (LockedReadReply | CacheError)[];

/** One write of a turn's batch. */
export type WriteOp =
  | ({ readonly kind: 'set' } & RemoteWrite)
  | ({ readonly kind: 'loaded' } & LoadedWrite)
  | { readonly kind: 'unlink'; readonly keys: readonly string[]; readonly alsoUnlink: readonly string[] };

/**
 * The outcome of one op of a batch: a reply (`true` for `set`, written or not for `loaded`, which of its keys existed
 * for `unlink`), or its error.
 */
export type WriteReply =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

export interface WriteMode {
  /**
   * May plain sets go out as one script call? Redis' NOLOOP tracking does not cover script writes, so an instance
   * that keeps memory copies and tracks foreign writes asks for a pipeline instead (its own writes must not echo).
   */
  readonly scripted: boolean;
}

/** The subscriber connection a remote tier opens for the cache: pub/sub and tracking invalidations. */
export interface SubscriberHandle {
  close(): Promise<void>;
}

export interface SubscriberOptions {
  readonly channels: readonly string[];
  /** Also listen for server-assisted invalidations (CLIENT TRACKING … REDIRECT). */
  readonly tracking: boolean;
  /** The prefix whose foreign writes are tracked (the cache's root prefix). */
  readonly trackingPrefix?: string;
  /**
   * For a tier that switches tracking on itself (a cluster: one redirect per master, set up by the subscriber):
   * whether every node tracks right now. Such a tier never asks for `enableTracking` (its client id is undefined).
   */
  readonly onTrackingActive?: (active: boolean) => void;
  readonly onMessage: (channel: string, message: string) => void;
  /** Keys Redis says were modified; `null` when Redis flushed everything (FLUSHALL/FLUSHDB). */
  readonly onInvalidate: (keys: readonly string[] | null) => void;
  /** After every (re)subscription, with the connection's client id; messages may have been lost before a re-one. */
  readonly onSubscribed: (clientId: number | undefined, resubscribed: boolean) => void;
  /** The heartbeat was answered. */
  readonly onAlive: () => void;
  /** The heartbeat went unanswered: messages may be lost right now. */
  readonly onSilent: () => void;
  readonly onError: (error: unknown) => void;
  /** How often to PING the connection, in ms. */
  readonly heartbeatMs: number;
  /** How long a PING may take, in ms. */
  readonly timeoutMs: number;
}

/**
 * The shared tier (Redis). Storage only: it stores encoded strings under full keys and reports failures as errors;
 * the policy (timeouts across connection states, the breaker, fallback, counting, events) belongs to the remote
 * accessor above it. Every call is bounded by the tier's timeout and settles; none waits for a reconnect.
 */
export interface RemoteTier {
  /** True while commands can be sent (`status === 'ready'`). */
  readonly available: boolean;
  readonly status: RemoteStatus;
  /** Listens to status changes (first connect, loss, reconnect). Returns a disposer. */
  onStatus(listener: StatusListener): () => void;
  /** The stored string; `null` or undefined for a miss. May reject with an untyped error (the accessor maps it). */
  get(key: string): Promise<string | null | undefined>;
  /** Each key's stored string, in order; `onShare` hears each node's share as it arrives, before the whole answer. */
  getMany(keys: readonly string[], onShare?: ShareListener): Promise<KeyReply[]>;
  /**
   * In one round trip per hash slot: each key's stored string, and for each key without an entry fresh at `now`
   * (its `e` past `now`), `SET lockKey token NX PX ttlMs`.
   */
  readOrLock(reads: readonly LockedRead[], token: string, ttlMs: number, now: number): Promise<LockedReadReplies>;
  /** A turn's writes in one round trip (per hash slot on a cluster), with a reply per op. */
  write(ops: readonly WriteOp[], mode: WriteMode): Promise<WriteReply[]>;
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
   * Renews a loaded entry's expiry without writing its value (a loader answered "unchanged"), in one round trip,
   * guarded like `setLoaded`: only while `token` (when given) still holds `lockKey`, and only while the stored entry
   * is the one created at `createdAt`. Rewrites its `e` and `g` fields in place and its PX, re-indexes its tags,
   * releases the lock and publishes `key` on `channel`. Optional: without it the cache writes the entry in full.
   */
  renewLoaded?(renewal: LoadedRenewal): Promise<RenewReply>;
  /**
   * Deletes every live member of the tag sets (and each member's lock, `lockKeyOf(member)`), and the tag sets
   * themselves. Returns how many members existed.
   */
  invalidateTags(tagKeys: readonly string[], lockKeyOf: (key: string) => string): Promise<number>;
  publish(channel: string, message: string): Promise<void>;
  /** Opens the pub/sub connection the bus and the lock wake-ups need; absent where the tier has none. */
  openSubscriber?(options: SubscriberOptions): SubscriberHandle;
  /**
   * Server-assisted invalidation: every foreign write under `prefix` is reported to the subscriber `redirectId`.
   * Resolves false where the tier does not work this way (a cluster: its subscriber tracks every master itself and
   * reports through `onTrackingActive`).
   */
  enableTracking?(redirectId: number, prefix: string): Promise<boolean>;
  /** Write-behind queues (Streams); absent where the tier has none (then queues are kept in process memory). */
  readonly streams?: RemoteStreams;
  /** Write-behind counters; absent where the tier has none (then counters are kept in process memory). */
  readonly counters?: RemoteCounters;
  close(): Promise<void>;
}

/** How a call through a CallPolicy came out. */
export type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/**
 * The policy a remote accessor runs each call through (the circuit breaker implements it): `run` runs `fn`, or turns
 * it away at once with a `CircuitOpenError` when the circuit is open; `counts` decides which errors count against
 * Redis (outages), as cockatiel's `handleWhen` does.
 */
export interface CallPolicy {
  /**
   * Runs `fn` unless turned away, and hands its outcome to `settle` once counted (a call turned away: at once, with a
   * `CircuitOpenError`). `key`: what the call was about (undefined for a batch of several keys, which counts as a key
   * of its own).
   */
  run<T>(
    fn: () => Promise<T>,
    key: string | undefined,
    counts: (error: unknown) => boolean,
    settle: (outcome: Settled<T>) => void,
  ): void;
  /** True while a call would be turned away without being tried (open, or half-open with the probe out). */
  readonly rejecting: boolean;
  /**
   * A failure outside `run`: one node's share of a batch that otherwise answered (a Redis Cluster master down). While
   * closed it counts as a failed call would; otherwise it changes nothing (the probe's own outcome decides).
   */
  countFailure(): void;
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

// ── the storage the write strategies need (strategies/): a narrow, optional capability of a remote tier ──────────

/**
 * The Redis keys of one write-behind queue. All share one hash tag, so each script touches one slot on a cluster.
 * `stream` holds the records (a Stream read through the consumer group `group`), `latest` maps each key to the id of
 * its newest record (latest wins: an older record of the key is skipped), `dead` the dead letters.
 */
export interface QueueKeys {
  readonly stream: string;
  readonly latest: string;
  readonly dead: string;
  readonly group: string;
}

/** One record of a write-behind queue: the cache key, its encoded value and its stream id. */
export interface QueueRecord {
  readonly id: string;
  readonly key: string;
  readonly value: string;
}

/** A record read from the queue, and whether it is still its key's newest (a superseded one is acked unwritten). */
export interface TakenRecord extends QueueRecord {
  readonly live: boolean;
}

export interface DeadRecord extends QueueRecord {
  /** Why it was moved to the dead letters (the writer's last error message). */
  readonly reason: string;
  /** The id it had in the queue. */
  readonly originalId: string;
}

export interface QueueInfo {
  /** Records in the queue, read or not, not yet written. */
  readonly depth: number;
  /** The id of the oldest of them (its time part is when it was queued), or undefined when empty. */
  readonly oldestId: string | undefined;
  readonly deadLetters: number;
}

/** Write-behind queues as Redis Streams with a consumer group. Every method is one round trip. */
export interface RemoteStreams {
  /** XADD the record and point `latest[key]` at it, atomically. Resolves with the record's id. */
  enqueue(queue: QueueKeys, key: string, value: string): Promise<string>;
  /**
   * Up to `count` records for `consumer`: first those another consumer read and left unacked for `claimIdleMs`
   * (XAUTOCLAIM), then new ones (XREADGROUP). Creates the group on first use.
   */
  take(queue: QueueKeys, consumer: string, count: number, claimIdleMs: number): Promise<TakenRecord[]>;
  /** Whether each record is still its key's newest (checked again before a retry). */
  live(queue: QueueKeys, records: readonly QueueRecord[]): Promise<boolean[]>;
  /** XACK and XDEL the records, and drop `latest[key]` where it still points at the record. */
  done(queue: QueueKeys, records: readonly QueueRecord[]): Promise<void>;
  /** Moves the records to the dead letters (capped at `maxDead`, oldest trimmed), as `done` does with the rest. */
  bury(queue: QueueKeys, records: readonly QueueRecord[], reason: string, maxDead: number): Promise<void>;
  info(queue: QueueKeys): Promise<QueueInfo>;
  /** The oldest `count` dead letters. */
  deadLetters(queue: QueueKeys, count: number): Promise<DeadRecord[]>;
  /** Queues dead letters again (as the newest record of their key) and removes them from the dead letters. */
  revive(queue: QueueKeys, ids: readonly string[]): Promise<number>;
}

/**
 * The Redis keys of one counter: `totals` (id → current total), `pending` (id → delta not yet taken for a flush) and
 * `batch` (the deltas taken for the flush in progress, with its batch id). One hash tag for the three.
 */
export interface CounterKeys {
  readonly totals: string;
  readonly pending: string;
  readonly batch: string;
}

export interface CounterBatch {
  readonly batchId: string;
  readonly deltas: ReadonlyMap<string, number>;
}

/** Write-behind counters: totals and not-yet-flushed deltas in Redis. Every method is one round trip. */
export interface RemoteCounters {
  /**
   * Adds `by` to the id's total and pending delta. With `requireSeed` and no total yet, changes nothing and resolves
   * undefined (the caller loads the seed and calls again with it); `seed` is set first when there is no total.
   */
  incr(
    keys: CounterKeys,
    id: string,
    by: number,
    seed: number | undefined,
    requireSeed: boolean,
  ): Promise<{ readonly total: number; readonly pending: number } | undefined>;
  /** The id's total, or undefined when there is none. */
  total(keys: CounterKeys, id: string): Promise<number | undefined>;
  /**
   * The batch of a flush in progress (a retry gets the same id and deltas), or, when some pending delta is at least
   * `min` in size, every pending delta moved into a new batch named `batchId`, atomically. Undefined: nothing to do.
   */
  takeBatch(keys: CounterKeys, batchId: string, min: number): Promise<CounterBatch | undefined>;
  /** Removes the batch once flushed, if it is still `batchId`. */
  commitBatch(keys: CounterKeys, batchId: string): Promise<boolean>;
  /** The sum of the absolute deltas not yet flushed (pending and in the batch). */
  unflushed(keys: CounterKeys): Promise<number>;
}

/** The expiry renewal of an entry whose loader answered "unchanged" (see `RemoteTier.renewLoaded`). */
export interface LoadedRenewal {
  readonly key: string;
  readonly lockKey: string;
  /** Empty when the loader ran without the lock. */
  readonly token: string;
  /** The `c` of the entry being renewed: any other entry stored there is left alone. */
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly graceUntil: number;
  /** The key's new PX, in ms (`graceUntil` − now). */
  readonly ttlMs: number;
  readonly tagKeys?: readonly string[];
  readonly channel: string;
}

/**
 * `renewed`; `lost`: the lock was no longer this load's (an invalidation came), nothing changed; `newer`: a newer entry
 * is stored, left as is; `missing`: no entry of that creation time (or of a shape the script cannot edit) is there, so
 * the caller writes the value in full.
 */
export type RenewReply = 'renewed' | 'lost' | 'newer' | 'missing';
