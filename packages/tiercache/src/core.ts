import type { Entry } from './entry.js';
import type { CacheError } from './errors.js';
import type { Subscriber } from './invalidation/subscriber.js';
import type { ReplayQueue } from './invalidation/replay.js';
import type { Alert, AlertGate } from './observability/alerts.js';
import type { Emitter } from './observability/events.js';
import type { Counters } from './observability/stats.js';
import type { ResolvedOptions } from './options.js';
import type { CircuitBreaker } from './resilience/breaker.js';
import type { LockWaiters } from './resilience/lock.js';
import type { Clock, MemoryTier, RemoteTier } from './types.js';

/**
 * The state a cache shares with its namespaces, and the small types the read path and the coherence code both use.
 * Types only: the facade (cache.ts) builds it, invalidation/coherence.ts keeps it coherent.
 */
/** Where a value came from. */
export type Source = 'memory' | 'redis' | 'origin' | 'stale';

export interface ReadResult<T> {
  readonly value: T;
  readonly source: Source;
  /** Time left until the value's logical expiry, in ms (0 or less for a stale value). */
  readonly expiresInMs: number;
}

/** State shared by a cache and its namespaces. */
export interface Core {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly memory: MemoryTier<Entry> | undefined;
  readonly remote: RemoteTier | undefined;
  readonly breaker: CircuitBreaker | undefined;
  subscriber: Subscriber | undefined;
  /** Whether close() closes the remote tier (a RedisTier closes only what it opened itself). */
  readonly ownsRemote: boolean;
  readonly counters: Counters;
  readonly events: Emitter;
  readonly alert: (alert: Alert) => void;
  readonly alerts: AlertGate | undefined;
  /** One load per full key per process; the entry stays until the loader itself settles. */
  readonly inflight: Map<string, Promise<ReadResult<unknown>>>;
  /**
   * Background refreshes by full key, one per key per process. Kept apart from `inflight` so that a hit arriving while
   * one runs is answered from its own copy instead of waiting for the loader; a miss joins it (see #load).
   */
  readonly refreshing: Map<string, Promise<ReadResult<unknown>>>;
  /**
   * Loads in flight by full key, each with a token of its own. A write or delete of the key replaces or removes the
   * token, and a load whose token is gone keeps its result out of both tiers (it was loaded before the change).
   */
  readonly loading: Map<string, LoadMark>;
  /**
   * Reads from Redis in flight, by full key. A write, delete or invalidation of the key here bumps its generation, and
   * a read that sees it changed returns its value without keeping it in memory: it may have been read before the change.
   */
  readonly reads: Map<string, ReadMark>;
  /** Bumped by every invalidation wider than one key (tags, a prefix, a flush), for the same purpose. */
  epoch: number;
  /** After a loader failure served stale: no new loader call for the key before this time. Pruned as it grows. */
  readonly backoff: Map<string, number>;
  readonly waiters: LockWaiters;
  /** Where a loader that wrote a value announces it, so waiters in other processes wake. */
  readonly loadedChannel: string;
  /** Background work the cache started (refreshes, late loaders): awaited by close(). */
  readonly background: Set<Promise<unknown>>;
  /** Tells this instance's bus messages from the others'. */
  readonly instanceId: string;
  /** The bus channel, when the bus is on. */
  readonly busChannel: string | undefined;
  /** Invalidations waiting for Redis, when the bus is on. */
  readonly replay: ReplayQueue | undefined;
  /** Redis is sending this instance every foreign write under the prefix (so key messages need not be published). */
  trackingActive: boolean;
  /** The subscriber connection is subscribed (bus messages and tracking invalidations can arrive). */
  subscriberReady: boolean;
  /** Tracking echoes of our own script writes still to come, by key, with the last value written (see expectEcho). */
  readonly echoes: Map<string, Echo>;
  /** The replay running now; it resolves with the outage error that stopped it, if one did. */
  replaying: Promise<CacheError | undefined> | undefined;
  closing: Promise<void> | undefined;
}

/** Tracking echoes expected for one key: how many, until when, and the last encoded entry our scripts wrote there. */
export interface Echo {
  readonly count: number;
  readonly until: number;
  readonly value: string;
}

/** A load in flight, by identity; its tags let a tag invalidation supersede it. */
export interface LoadMark {
  readonly tags: readonly string[];
}

/** The reads of one key in flight, and how often the key was invalidated since the first of them started. */
export interface ReadMark {
  pending: number;
  generation: number;
}

/** What a read compares when it ends (see Core.reads); undefined without memory (nothing to keep out of it). */
export type ReadWatch = { readonly mark: ReadMark; readonly generation: number; readonly epoch: number } | undefined;
