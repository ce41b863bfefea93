/**
 * `diagnostics_channel` publication. Every publish site checks `hasSubscribers` first, so with nobody subscribed a
 * publication costs one property read and allocates nothing (lru-cache does the same).
 */
import { channel } from 'node:diagnostics_channel';
import type { Source } from '../cache/view.js';
import type { CacheError } from '../errors.js';

/** The names of the channels tiercache publishes on (docs/observability.md). */
export const CHANNELS = {
  read: 'tiercache:read',
  load: 'tiercache:load',
  redis: 'tiercache:redis',
  write: 'tiercache:write',
  counter: 'tiercache:counter',
} as const;

/** One read answered: from a tier (`source`), or a miss. Published for get, getOrSet and mget, per key. */
export interface ReadMessage {
  /** The cache's root prefix, to tell several caches apart. */
  readonly prefix: string;
  /** The key without the root prefix (namespaced keys include the namespace). */
  readonly key: string;
  readonly group: string;
  readonly outcome: Source | 'miss';
}

/**
 * A loader run, published twice with the same object: `phase: 'start'` synchronously in the caller's async context
 * (a tracer can open a span there), then `phase: 'end'` with the outcome and the duration.
 */
export interface LoadMessage {
  readonly prefix: string;
  readonly key: string;
  readonly group: string;
  phase: 'start' | 'end';
  /** ms, on `end`. */
  durationMs: number;
  /** The loader's error, on `end` when it failed. */
  error: unknown;
  /**
   * A subscriber may set this on `start` to run the loader inside a context of its own (a tracer makes its load span
   * current, so spans the loader opens are its children). The first one set is used.
   */
  within: (<T>(run: () => T) => T) | undefined;
}

/** One Redis round trip (a batch of the turn, or a lone command), published when it settled. */
export interface RedisMessage {
  readonly prefix: string;
  readonly operation: 'get' | 'set' | 'delete' | 'clear' | 'lock';
  /** Keys (or write ops) in the round trip. */
  readonly size: number;
  /** `performance.now()` when it was sent, and how long it took, in ms. */
  readonly startedAt: number;
  readonly durationMs: number;
  readonly ok: boolean;
  /** Why it failed; undefined when it succeeded or was skipped untried. */
  readonly error: CacheError | undefined;
  /**
   * Set when the call was not sent (counted in `stats().redis.skipped` for `down`, `stats().breaker.skipped` for
   * `breaker`); its duration is then 0.
   */
  readonly skipped: 'down' | 'breaker' | undefined;
}

/** Writes and deletes counted by `stats().writes` / `stats().deletes`. */
export interface WriteMessage {
  readonly prefix: string;
  readonly kind: 'write' | 'delete';
  /** How many keys. */
  readonly count: number;
}

/**
 * A counter of `stats()` that no other channel covers (lock, refresh-ahead, bus, tracking, replay) went up: its
 * field name in the Counters class and by how much.
 */
export interface CounterMessage {
  readonly prefix: string;
  readonly counter:
    | 'locksAcquired'
    | 'lockWaits'
    | 'lockWaitTimeouts'
    | 'refreshes'
    | 'busPublished'
    | 'busPublishErrors'
    | 'busReceived'
    | 'busDropped'
    | 'busResets'
    | 'trackingInvalidations'
    | 'replayed';
  readonly by: number;
}

export const counterChannel = channel(CHANNELS.counter);

/** Publishes a counter's increment (the caller bumped it) when someone listens. */
export function counted(prefix: string, counter: CounterMessage['counter'], by = 1): void {
  if (counterChannel.hasSubscribers) counterChannel.publish({ prefix, counter, by });
}

export const readChannel = channel(CHANNELS.read);
export const loadChannel = channel(CHANNELS.load);
export const redisChannel = channel(CHANNELS.redis);
export const writeChannel = channel(CHANNELS.write);
