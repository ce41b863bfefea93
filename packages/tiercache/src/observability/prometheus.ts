/**
 * `tiercache/prometheus`: a cache's figures as Prometheus metrics in a `prom-client` registry the application passes.
 * Nothing is recorded twice: each metric is read from `stats()` and the cache's own histograms when the registry is
 * scraped. prom-client is only a type here (an optional peer dependency); the registry does the formatting.
 */
import type { Metric, Registry } from 'prom-client';
import type { Cache } from '../cache/contract.js';
import { ConfigurationError, describeValue } from '../errors.js';
import type { Histogram } from './histogram.js';
import { instrumentsOf } from './instruments.js';
import type { CacheStats } from './stats.js';

export interface PrometheusOptions {
  /** The registry to register with (prom-client's `register`, or your own `new Registry()`). */
  readonly registry: Registry;
  /**
   * Metric names start with it.
   * @default 'tiercache_'
   */
  readonly prefix?: string;
  /** A `cache` label on every series, to tell several caches in one registry apart. @default none */
  readonly cacheLabel?: string;
  /**
   * Per-key-group series (`tiercache_group_*{group}`), bounded by the cache's `maxKeyGroups` plus `other`.
   * @default true
   */
  readonly groups?: boolean;
}

type Labels = Record<string, string>;
interface Value {
  readonly value: number;
  readonly labels: Labels;
  readonly metricName?: string;
}
type Kind = 'counter' | 'gauge' | 'histogram';

/**
 * The histogram buckets exported: 1, 2 and 5 steps per decade of the cache's ten (bounds 1.995 and 5.012 rounded to
 * four digits in `le`), from 10 µs to 100 s. Each is exact: it is a bound of the cache's own buckets.
 */
const EXPORTED = [] as number[];
for (let i = 10; i <= 80; i++) if (i % 10 === 0 || i % 10 === 3 || i % 10 === 7) EXPORTED.push(i);

function histogramValues(name: string, histogram: Histogram, labels: Labels): Value[] {
  const values: Value[] = [];
  for (const index of EXPORTED) {
    const le = Number((histogram.bound(index) / 1000).toPrecision(4));
    values.push({
      metricName: `${name}_bucket`,
      labels: { ...labels, le: String(le) },
      value: histogram.cumulative(index),
    });
  }
  values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.count });
  values.push({ metricName: `${name}_sum`, labels, value: histogram.sum / 1000 });
  values.push({ metricName: `${name}_count`, labels, value: histogram.count });
  return values;
}

const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;

/**
 * Registers the cache's metrics with `options.registry`; returns a function that removes them again. Series:
 * counters `tiercache_hits_total{source}`, `tiercache_misses_total`, `tiercache_loader_calls_total`,
 * `tiercache_loader_errors_total`, `tiercache_redis_errors_total{kind}`, `tiercache_writes_total`,
 * `tiercache_deletes_total`; histograms `tiercache_redis_duration_seconds`, `tiercache_loader_duration_seconds`;
 * gauges `tiercache_breaker_state{state}`, `tiercache_memory_entries`, `tiercache_memory_bytes`,
 * `tiercache_replay_pending`, `tiercache_queue_depth{queue}`, `tiercache_inflight_loads`; per key group
 * `tiercache_group_hits_total{group,source}`, `tiercache_group_misses_total{group}` (docs/observability.md).
 */
export function registerPrometheus(cache: Cache, options: PrometheusOptions): () => void {
  const registry = options?.registry as Partial<Registry> | undefined;
  if (typeof registry?.registerMetric !== 'function' || typeof registry.removeSingleMetric !== 'function') {
    throw new ConfigurationError(
      `Expected \`registry\` to be a prom-client Registry, got ${describeValue(options?.registry)}`,
    );
  }
  const instruments = instrumentsOf(cache);
  if (instruments === undefined) {
    throw new ConfigurationError(`Expected a cache made by createCache, got ${describeValue(cache)}`);
  }
  const prefix = options.prefix ?? 'tiercache_';
  const base: Labels = options.cacheLabel === undefined ? {} : { cache: options.cacheLabel };
  const withGroups = options.groups !== false;

  // One stats() per scrape: every metric's get() of one scrape runs in the same tick.
  let snapshot: CacheStats | undefined;
  const stats = (): CacheStats => {
    if (snapshot === undefined) {
      snapshot = cache.stats();
      queueMicrotask(() => (snapshot = undefined));
    }
    return snapshot;
  };
  const l = (labels: Labels = {}): Labels => ({ ...base, ...labels });

  const metrics: [string, Kind, string, () => Value[]][] = [
    [
      'hits_total',
      'counter',
      'Reads answered by the cache, by tier (stale: a stale copy served by the fail-safe).',
      () => {
        const { hits } = stats();
        return (['memory', 'redis', 'stale'] as const).map((source) => ({
          labels: l({ source }),
          value: hits[source],
        }));
      },
    ],
    ['misses_total', 'counter', 'Reads found in no tier.', () => [{ labels: l(), value: stats().misses }]],
    ['loader_calls_total', 'counter', 'Loader (origin) calls.', () => [{ labels: l(), value: stats().loader.calls }]],
    [
      'loader_errors_total',
      'counter',
      'Loader calls that failed.',
      () => [{ labels: l(), value: stats().loader.errors }],
    ],
    [
      'redis_errors_total',
      'counter',
      'Redis failures the cache absorbed, by kind (timeout, command, connection).',
      () => {
        const { redis } = stats();
        return [
          { labels: l({ kind: 'timeout' }), value: redis.timeouts },
          { labels: l({ kind: 'command' }), value: redis.errors - redis.timeouts },
          { labels: l({ kind: 'connection' }), value: redis.connectionErrors },
        ];
      },
    ],
    ['writes_total', 'counter', 'Keys written by set and mset.', () => [{ labels: l(), value: stats().writes }]],
    ['deletes_total', 'counter', 'Keys deleted.', () => [{ labels: l(), value: stats().deletes }]],
    [
      'redis_duration_seconds',
      'histogram',
      'Redis round trips (one per batch of the turn).',
      () => histogramValues(`${prefix}redis_duration_seconds`, instruments.redis, l()),
    ],
    [
      'loader_duration_seconds',
      'histogram',
      'Loader runs.',
      () => histogramValues(`${prefix}loader_duration_seconds`, instruments.loader, l()),
    ],
    [
      'breaker_state',
      'gauge',
      'The circuit breaker around Redis: 1 for its current state (no series when it is off).',
      () => {
        const breaker = stats().breaker;
        if (breaker === null) return [];
        return BREAKER_STATES.map((state) => ({ labels: l({ state }), value: breaker.state === state ? 1 : 0 }));
      },
    ],
    [
      'memory_entries',
      'gauge',
      'Entries in the memory tier.',
      () => [{ labels: l(), value: stats().memory?.entries ?? 0 }],
    ],
    ['memory_bytes', 'gauge', 'Bytes in the memory tier.', () => [{ labels: l(), value: stats().memory?.bytes ?? 0 }]],
    [
      'replay_pending',
      'gauge',
      'Invalidations waiting for Redis to come back.',
      () => [{ labels: l(), value: stats().bus?.replayPending ?? 0 }],
    ],
    [
      'queue_depth',
      'gauge',
      'Write-behind queue depth, by queue.',
      () =>
        Object.entries(cache.health().queues).map(([queue, { pending }]) => ({ labels: l({ queue }), value: pending })),
    ],
    ['inflight_loads', 'gauge', 'Loads running now.', () => [{ labels: l(), value: stats().inflight }]],
  ];
  if (withGroups) metrics.push(...groupMetrics(stats, l));

  const registered: string[] = [];
  for (const [suffix, type, help, values] of metrics) {
    const name = prefix + suffix;
    const metric = {
      name,
      help,
      type,
      aggregator: 'sum',
      get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: values() }),
      reset: () => undefined,
    };
    registry.registerMetric(metric as unknown as Metric);
    registered.push(name);
  }
  return () => {
    for (const name of registered) registry.removeSingleMetric?.(name);
  };
}

function groupMetrics(
  stats: () => CacheStats,
  l: (labels?: Labels) => Labels,
): [string, Kind, string, () => Value[]][] {
  return [
    [
      'group_hits_total',
      'counter',
      'Hits per key group and tier.',
      () =>
        Object.entries(stats().groups).flatMap(([group, g]) =>
          (['memory', 'redis', 'stale'] as const).map((source) => ({
            labels: l({ group, source }),
            value: g.hits[source],
          })),
        ),
    ],
    [
      'group_misses_total',
      'counter',
      'Misses per key group.',
      () => Object.entries(stats().groups).map(([group, g]) => ({ labels: l({ group }), value: g.misses })),
    ],
    [
      'group_loader_calls_total',
      'counter',
      'Loader calls per key group.',
      () => Object.entries(stats().groups).map(([group, g]) => ({ labels: l({ group }), value: g.loader.calls })),
    ],
  ];
}
