import type { BreakerSnapshot } from '../resilience/breaker.js';
import type { AlertStats } from './alerts.js';
import type { HistogramSummary } from './histogram.js';
import type { KeyGroupStats } from './instruments.js';

/** Counters the cache keeps. Plain numbers, bumped inline: nothing here allocates on the hot path. */
export class Counters {
  /** The cache's root prefix, for the `tiercache:counter` channel's messages (see `counted`). */
  constructor(readonly prefix = '') {}

  memoryHits = 0;
  redisHits = 0;
  misses = 0;
  loaderCalls = 0;
  loaderErrors = 0;
  redisErrors = 0;
  redisTimeouts = 0;
  /** Redis was skipped because the client was not connected. */
  redisSkipped = 0;
  connectionErrors = 0;
  decodeErrors = 0;
  uncached = 0;
  writes = 0;
  deletes = 0;
  staleHits = 0;
  refreshes = 0;
  breakerSkipped = 0;
  locksAcquired = 0;
  lockWaits = 0;
  lockWaitTimeouts = 0;
  busPublished = 0;
  busPublishErrors = 0;
  busReceived = 0;
  busDropped = 0;
  busResets = 0;
  trackingInvalidations = 0;
  replayed = 0;
}

export type RedisState = 'ready' | 'unavailable' | 'off';

/** A snapshot returned by `cache.stats()`. */
export interface CacheStats {
  /** Answers from each tier; `stale` counts stale copies served by the fail-safe (loader failed or too slow). */
  readonly hits: { readonly memory: number; readonly redis: number; readonly stale: number };
  readonly misses: number;
  /** `refreshes`: background refreshes started by refresh-ahead. */
  readonly loader: { readonly calls: number; readonly errors: number; readonly refreshes: number };
  readonly redis: {
    readonly state: RedisState;
    /** Commands that failed or timed out. */
    readonly errors: number;
    /** Of those, timeouts. */
    readonly timeouts: number;
    /** Operations that did not try Redis because it was not connected. */
    readonly skipped: number;
    /** Connection failures reported between commands (refused, reset). */
    readonly connectionErrors: number;
  };
  /** The circuit breaker (null when off); `skipped`: Redis calls it turned away while open. */
  readonly breaker: (BreakerSnapshot & { readonly skipped: number }) | null;
  /** The distributed stampede lock: taken, waited for another process, waits that ran out (then loaded anyway). */
  readonly lock: { readonly acquired: number; readonly waits: number; readonly waitTimeouts: number };
  /** The alert gate (null without `alerts`): notifications sent, held back, failed. */
  readonly alerts: AlertStats | null;
  /** Cross-instance coherence (null when the bus is off). */
  readonly bus: {
    readonly published: number;
    readonly publishErrors: number;
    /** Messages from other instances applied. */
    readonly received: number;
    /** Messages dropped as invalid (garbage, oversize, wrong shape). */
    readonly dropped: number;
    /** Memory flushes because invalidations may have been missed (reconnect, silent subscriber). */
    readonly resets: number;
    /** Whether Redis is tracking foreign writes for this instance now. */
    readonly tracking: boolean;
    readonly trackingInvalidations: number;
    /** Invalidations waiting for Redis to come back, replayed, and dropped because the queue was full. */
    readonly replayPending: number;
    readonly replayed: number;
    readonly replayDropped: number;
  } | null;
  readonly memory: { readonly entries: number; readonly bytes: number } | null;
  /** Stored entries that could not be decoded (unknown version, corrupt, oversize): read as misses. */
  readonly decodeErrors: number;
  /** Loaded values returned to the caller but not cached because they exceed maxValueBytes. */
  readonly uncached: number;
  readonly writes: number;
  readonly deletes: number;
  /** Loads running now (one per key per process). */
  readonly inflight: number;
  /**
   * Durations in ms since the cache was created, read off fixed log-scale buckets (p50/p99 within 26 %): `redis`, one
   * per round trip (a batch of the turn counts once); `loader`, one per loader run. Zeros with instrumentation off.
   */
  readonly latency: { readonly redis: HistogramSummary; readonly loader: HistogramSummary };
  /**
   * Sizes of the turn batcher's round trips: keys per read (MGET or GET), loads per "value or lock" step, ops per
   * write batch. `count` is the number of round trips, `sum` the keys (or ops) they carried.
   */
  readonly batches: {
    readonly reads: HistogramSummary;
    readonly locks: HistogramSummary;
    readonly writes: HistogramSummary;
  };
  /**
   * Per key group (the `keyGroup` option, by default a key's first segment): hits by tier, misses, loader calls and
   * durations. At most `maxKeyGroups` groups; the rest are counted under `other`.
   */
  readonly groups: Readonly<Record<string, KeyGroupStats>>;
}
