import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { AlertOptions } from './observability/alerts.js';
import type { BreakerOptions } from './resilience/breaker.js';
import type { Clock, Duration, RemoteTier } from './types.js';
import type { RedisClusterOptions } from './tiers/redis-cluster-options.js';

export type { BreakerOptions } from './resilience/breaker.js';
export { httpUrl, parseDuration, positiveInteger, toMs, warnLogger } from './validate.js';

/** Bounds of the in-process tier (L1). Both bounds apply; an unbounded L1 is refused. */
export interface MemoryOptions {
  /**
   * Most entries kept in memory.
   * @default 10_000
   */
  readonly maxEntries?: number;
  /**
   * Most bytes kept in memory, counted as the length of each encoded entry.
   * @default 67_108_864 (64 MiB)
   */
  readonly maxBytes?: number;
  /**
   * Longest time an entry stays in memory, whatever its TTL: the bound on how stale another instance's copy can get
   * when an invalidation message is lost.
   * @default '1h'
   */
  readonly maxTtl?: Duration;
}

export interface TimeoutOptions {
  /**
   * Longest wait for one Redis round trip. Past it the command fails with `CacheTimeoutError` and reads fall back.
   * @default 100 (ms)
   */
  readonly redisMs?: Duration;
}

/** Same-turn batching of Redis commands (docs/architecture.md, "The turn batcher"). */
export interface BatchingOptions {
  /**
   * Most keys in one batch; a turn with more sends several, back to back, so that Node decodes one reply while
   * Redis serves the next (docs/architecture.md, "Batch size"). One `mget` is never split. On a Redis Cluster 96: a
   * batch is split per node there anyway.
   * @default 32
   */
  readonly maxKeys?: number;
  /**
   * Most bytes of encoded values in one write batch.
   * @default 4_194_304 (4 MiB)
   */
  readonly maxBytes?: number;
}

/** Cross-instance coherence of the memory tier (docs/invalidation.md). */
export interface BusOptions {
  /**
   * Also drop memory copies of keys that any other Redis client writes under the prefix (Redis ≥ 6 CLIENT TRACKING
   * in broadcast mode; on Redis Cluster, on every master).
   * @default true
   */
  readonly tracking?: boolean;
  /**
   * How often the subscriber connection is pinged; one that stops answering is reconnected and memory is flushed.
   * @default '5s'
   */
  readonly heartbeatMs?: Duration;
  /**
   * Most invalidations kept for replay while Redis is unreachable (deduplicated per key, tag and prefix; the oldest
   * are dropped past it, and counted).
   * @default 10_000
   */
  readonly replayMax?: number;
}

/** The distributed stampede lock taken on a miss in both tiers. */
export interface LockOptions {
  /**
   * How long a holder keeps the lock; extended while its loader runs, so it only bounds a dead holder.
   * @default '10s'
   */
  readonly ttlMs?: Duration;
  /**
   * Longest wait for another process's load before loading here anyway (availability wins over dedupe).
   * @default '5s'
   */
  readonly waitMs?: Duration;
}

export interface CacheOptions {
  /**
   * Every Redis key lives under it. A prefix that does not end in `:` gets one, so `app:user` never overlaps
   * `app:users`.
   * @default 'tiercache:'
   */
  readonly prefix?: string;
  /**
   * Redis: a URL (`redis://127.0.0.1:6379`), ioredis options (Sentinel: `{ sentinels: [{ host, port }], name }`), a
   * Redis Cluster's nodes
   * (`{ cluster: '127.0.0.1:7000,127.0.0.1:7001', options? }`), or an existing ioredis `Redis`/`Cluster` (which the
   * cache then does not close). Omitted: memory only. Tests may pass a `RemoteTier` instead, such as
   * `InMemoryRemoteTier` or `ChaosRemoteTier` from `tiercache/testing`.
   */
  readonly redis?: string | RedisOptions | RedisClusterOptions | Redis | Cluster | RemoteTier;
  /** The in-process tier; `false` turns it off. */
  readonly memory?: MemoryOptions | false;
  /**
   * How long an entry is fresh.
   * @default '5m'
   */
  readonly ttl?: Duration;
  /**
   * How long after its TTL an entry is still kept as a stale copy (Redis keeps it for `ttl + grace`).
   * @default 0
   */
  readonly grace?: Duration;
  readonly timeouts?: TimeoutOptions;
  /**
   * Largest encoded entry accepted, in bytes. Larger writes are refused; larger stored entries read as a miss.
   * @default 1_048_576 (1 MiB)
   */
  readonly maxValueBytes?: number;
  /**
   * Longest key, in characters (before the prefix).
   * @default 1024
   */
  readonly maxKeyLength?: number;
  /**
   * What a failed Redis write (`set`, `delete`, `mset`, `clear`) does: `'report'` counts it and emits `error` (L1 is
   * still updated); `'throw'` also rejects the call.
   * @default 'report'
   */
  readonly writeErrors?: 'report' | 'throw';
  /** The circuit breaker around Redis (docs/resilience.md); `false` turns it off. */
  readonly breaker?: BreakerOptions | false;
  /**
   * Same-turn batching: the Redis reads of one event-loop turn go out as MGETs, its writes as scripts or pipelines,
   * of at most `maxKeys` keys each. `false` sends every command on its own (for comparison).
   * @default true
   */
  readonly batching?: BatchingOptions | boolean;
  /**
   * Keep every instance's memory tier coherent: invalidations on a Redis pub/sub bus under the prefix, foreign writes
   * through server-assisted tracking, replay of invalidations after an outage. `false` turns it off (then bound
   * staleness with `memory.maxTtl`).
   * @default true (with Redis)
   */
  readonly bus?: BusOptions | boolean;
  /** The cross-process stampede lock; `false` turns it off (each process still runs one loader per key). */
  readonly lock?: LockOptions | false;
  /** Where Redis errors and breaker transitions are reported, with a cooldown. */
  readonly alerts?: AlertOptions;
  /**
   * Spread TTLs by up to this fraction (0–1), so keys written together do not expire together.
   * @default 0
   */
  readonly jitter?: number;
  /** Where time comes from; tests inject a fake clock. */
  readonly clock?: Clock;
  /**
   * Names the key group of a key (without the prefix) for `stats().groups`, Prometheus and OpenTelemetry. Called
   * once per Redis read, miss or load (never on a memory hit). A name that is not a non-empty string counts as
   * `other`.
   * @default the key's first segment, up to its first `:` (the namespace name for a namespaced key)
   */
  readonly keyGroup?: (key: string) => string;
  /**
   * Most key groups tracked; keys of further groups are counted under `other`.
   * @default 64
   */
  readonly maxKeyGroups?: number;
  /**
   * `false` turns off latency histograms, batch sizes, key groups and `diagnostics_channel` publication (the
   * counters stay). Meant for measuring what instrumentation costs; leave it on otherwise.
   * @default true
   */
  readonly instrumentation?: boolean;
}

/** Per-call options of `getOrSet`. */
export interface GetOrSetOptions extends SetOptions, TierOptions {
  /** With a stale copy at hand, answer it after this long; the loader goes on and its result updates both tiers. */
  readonly softTimeout?: Duration;
  /** Give up on the loader after this long (`LoaderTimeoutError`, or the stale copy); a late result is still cached. */
  readonly hardTimeout?: Duration;
  /**
   * After a loader failure served stale, do not call the loader for this key again for this long.
   * @default '10s'
   */
  readonly graceBackoff?: Duration;
  /** A hit past this fraction (0–1) of the TTL starts one background refresh, so hot keys never expire. */
  readonly refreshAhead?: number;
  /**
   * Negative caching, opt-in: a loader result of `undefined` (for `getOrSetMany`, a key the loader left out) is
   * remembered for this long (no grace), so a missing id costs the origin one query per `negativeTtl`, not one per
   * request. Without it, `getOrSet` caches `undefined` like any value and `getOrSetMany` stores nothing for such a key.
   * @default undefined (off)
   */
  readonly negativeTtl?: Duration;
}

/** Per-call tier control of `get`, `getWithMeta`, `set` and `getOrSet` (and `getOrSetMany`). */
export interface TierOptions {
  /**
   * Neither read nor write this process's memory tier for this call (data that must come from Redis each time); a
   * write drops this instance's memory copy of the key.
   * @default false
   */
  readonly skipMemory?: boolean;
  /**
   * Neither read nor write Redis for this call (data that must not leave the process).
   * @default false
   */
  readonly skipRedis?: boolean;
}

/** Per-call options of `set`, `mset` and `getOrSet`. */
export interface SetOptions {
  readonly ttl?: Duration;
  readonly grace?: Duration;
  readonly tags?: readonly string[];
}

export const DEFAULTS = {
  prefix: 'tiercache:',
  /** ms */
  ttl: 5 * 60_000,
  /** ms */
  grace: 0,
  memory: {
    maxEntries: 10_000,
    /** bytes */
    maxBytes: 64 * 1024 * 1024,
    /** ms */
    maxTtl: 60 * 60_000,
  },
  timeouts: {
    /** ms */
    redisMs: 100,
  },
  /** bytes */
  maxValueBytes: 1024 * 1024,
  /** characters */
  maxKeyLength: 1024,
  writeErrors: 'report',
  /** Most tags on one entry. */
  maxTags: 64,
  breaker: {
    threshold: 10,
    /** ms */
    windowMs: 10_000,
    /** ms */
    openMs: 10_000,
    minDistinctKeys: 3,
  },
  bus: {
    tracking: true,
    /** ms */
    heartbeatMs: 5_000,
    replayMax: 10_000,
  },
  lock: {
    /** ms */
    ttlMs: 10_000,
    /** ms */
    waitMs: 5_000,
  },
  batching: {
    maxKeys: 32,
    /** bytes */
    maxBytes: 4 * 1024 * 1024,
  },
  /** fraction of the TTL */
  jitter: 0,
  /** ms */
  graceBackoff: 10_000,
  /** key groups tracked before the rest fold into `other` */
  maxKeyGroups: 64,
} as const;

export interface ResolvedOptions {
  readonly prefix: string;
  readonly redis: CacheOptions['redis'];
  readonly memory: { readonly maxEntries: number; readonly maxBytes: number; readonly maxTtl: number } | false;
  readonly ttl: number;
  readonly grace: number;
  readonly redisTimeoutMs: number;
  readonly maxValueBytes: number;
  readonly maxKeyLength: number;
  readonly writeErrors: 'report' | 'throw';
  readonly breaker: BreakerOptions | false;
  readonly batching: { readonly maxKeys: number; readonly maxBytes: number } | false;
  readonly lock: { readonly ttlMs: number; readonly waitMs: number } | false;
  readonly bus: { readonly tracking: boolean; readonly heartbeatMs: number; readonly replayMax: number } | false;
  readonly alerts: AlertOptions | undefined;
  readonly jitter: number;
  readonly clock: Clock | undefined;
  readonly keyGroup: ((key: string) => string) | undefined;
  readonly maxKeyGroups: number;
  readonly instrumentation: boolean;
}
