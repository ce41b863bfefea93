/**
 * tiercache/prometheus against a real prom-client Registry: the text a scrape returns is parsed line by line with a
 * strict grammar of the exposition format, and must carry the values the test caused.
 */
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigurationError, createCache } from 'tiercache';
import type { Cache } from 'tiercache';
import { registerPrometheus } from 'tiercache/prometheus';
import { ChaosRemoteTier, FakeClock, InMemoryRemoteTier } from 'tiercache/testing';

let open: Cache[] = [];
afterEach(async () => {
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\["\\\\n])*"`;
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{(${LABEL}(?:,${LABEL})*)?\\})? (-?(?:\\d+(?:\\.\\d+)?(?:e[+-]?\\d+)?|\\+Inf|NaN))$`,
);
const HELP = new RegExp(`^# HELP (${NAME}) .+$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Parses Prometheus text exposition; throws on any line that does not fit the grammar. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (HELP.test(line)) continue;
    const type = TYPE.exec(line);
    if (type !== null) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const sample = SAMPLE.exec(line);
    if (sample === null) throw new Error(`not a Prometheus line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (sample[2] ?? '').split(/,(?=[a-zA-Z_])/).filter(Boolean)) {
      const at = pair.indexOf('=');
      labels[pair.slice(0, at)] = pair.slice(at + 2, -1);
    }
    const raw = sample[3] as string;
    samples.push({ name: sample[1] as string, labels, value: raw === '+Inf' ? Infinity : Number(raw) });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('tiercache/prometheus', () => {
  it('exposes counters, histograms and gauges with the values the calls caused', async () => {
    const clock = new FakeClock();
    const chaos = new ChaosRemoteTier(new InMemoryRemoteTier({ clock }));
    const cache = createCache({ prefix: 'prom', clock, redis: chaos, ttl: '1s', grace: '1m' });
    open.push(cache);
    const registry = new Registry();
    registerPrometheus(cache, { registry, cacheLabel: 'main' });

    await cache.getOrSet('user:1', () => {
      clock.advance(30);
      return 'ada';
    });
    await cache.get('user:1');
    await cache.get('user:1');
    await cache.get('product:1');
    await cache.set('session:1', 'x');
    await expect(
      cache.getOrSet('user:2', () => {
        throw new Error('origin down');
      }),
    ).rejects.toThrow();
    chaos.alwaysThrow();
    await cache.get('user:404');

    const { samples, types } = parse(await registry.metrics());
    const m = { cache: 'main' };
    expect(value(samples, 'tiercache_hits_total', { ...m, source: 'memory' })).toBe(2);
    expect(value(samples, 'tiercache_hits_total', { ...m, source: 'redis' })).toBe(0);
    expect(value(samples, 'tiercache_misses_total', m)).toBe(4);
    expect(value(samples, 'tiercache_loader_calls_total', m)).toBe(2);
    expect(value(samples, 'tiercache_loader_errors_total', m)).toBe(1);
    expect(value(samples, 'tiercache_redis_errors_total', { ...m, kind: 'command' })).toBe(1);
    expect(value(samples, 'tiercache_writes_total', m)).toBe(1);
    expect(value(samples, 'tiercache_memory_entries', m)).toBe(2);
    expect(value(samples, 'tiercache_breaker_state', { ...m, state: 'closed' })).toBe(1);
    expect(value(samples, 'tiercache_group_hits_total', { ...m, group: 'user', source: 'memory' })).toBe(2);
    expect(value(samples, 'tiercache_group_misses_total', { ...m, group: 'product' })).toBe(1);

    expect(types.get('tiercache_loader_duration_seconds')).toBe('histogram');
    expect(value(samples, 'tiercache_loader_duration_seconds_count', m)).toBe(2);
    expect(value(samples, 'tiercache_loader_duration_seconds_sum', m)).toBeCloseTo(0.03, 6);
    // The 30 ms run is above the 20 ms bucket and at or below the 50 ms one; the instant failed one below both.
    expect(value(samples, 'tiercache_loader_duration_seconds_bucket', { ...m, le: '0.01995' })).toBe(1);
    expect(value(samples, 'tiercache_loader_duration_seconds_bucket', { ...m, le: '0.05012' })).toBe(2);
    expect(value(samples, 'tiercache_loader_duration_seconds_bucket', { ...m, le: '+Inf' })).toBe(2);
    const redisCount = value(samples, 'tiercache_redis_duration_seconds_count', m) ?? 0;
    expect(redisCount).toBeGreaterThan(0);
    const buckets = samples.filter((s) => s.name === 'tiercache_redis_duration_seconds_bucket').map((s) => s.value);
    expect(buckets).toStrictEqual([...buckets].sort((a, b) => a - b));
    expect(buckets.at(-1)).toBe(redisCount);
  });

  it('keeps group label values within maxKeyGroups plus other', async () => {
    const cache = createCache({ prefix: 'prom', maxKeyGroups: 3 });
    open.push(cache);
    const registry = new Registry();
    registerPrometheus(cache, { registry });
    for (let i = 0; i < 20; i++) await cache.get(`group${i}:key`);
    const { samples } = parse(await registry.metrics());
    const groups = new Set(
      samples.filter((s) => s.name === 'tiercache_group_misses_total').map((s) => s.labels['group']),
    );
    expect([...groups].sort()).toStrictEqual(['group0', 'group1', 'group2', 'other']);
    expect(value(samples, 'tiercache_group_misses_total', { group: 'other' })).toBe(17);
  });

  it('removes its metrics when disposed, and refuses what is not a registry', async () => {
    const cache = createCache({ prefix: 'prom' });
    open.push(cache);
    const registry = new Registry();
    const dispose = registerPrometheus(cache, { registry });
    expect(await registry.metrics()).toContain('tiercache_hits_total');
    dispose();
    expect(await registry.metrics()).not.toContain('tiercache_');
    expect(() => registerPrometheus(cache, { registry: {} as Registry })).toThrow(ConfigurationError);
  });
});
