import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { cacheOptions } from '../src/plugins/cache.js';

describe('the environment', () => {
  it('has defaults for everything, with PGlite when DATABASE_URL is unset', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      redisUrl: 'redis://127.0.0.1:6379',
      cacheDisabled: false,
      cacheMemory: true,
      cacheBatching: true,
      internalKeyIsDefault: true,
      workerIntervalMs: 300_000,
      trendsIntervalMs: 600_000,
      trendsEvictUrl: undefined,
    });
    expect(config.database.kind).toBe('pglite');
  });

  it('reads durations, flags and a Postgres URL', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@db.internal:5432/shop',
      WORKER_INTERVAL: '30s',
      TRENDS_INTERVAL: 'off',
      CACHE_DISABLED: '1',
      CACHE_MEMORY: '0',
      CACHE_BATCHING: 'no',
      INTERNAL_KEY: 'a-long-enough-secret',
    });
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://u@db.internal:5432/shop', schema: undefined });
    expect(config).toMatchObject({
      workerIntervalMs: 30_000,
      trendsIntervalMs: 0,
      cacheDisabled: true,
      cacheMemory: false,
      cacheBatching: false,
    });
  });

  it('reads the intervals with the library duration parser, so 1.5h and 1d mean what they mean to the cache', () => {
    expect(loadConfig({ WORKER_INTERVAL: '1.5h', TRENDS_INTERVAL: '1d' })).toMatchObject({
      workerIntervalMs: 5_400_000,
      trendsIntervalMs: 86_400_000,
    });
    expect(loadConfig({ WORKER_INTERVAL: '250ms', TRENDS_INTERVAL: '0s' })).toMatchObject({
      workerIntervalMs: 250,
      trendsIntervalMs: 0,
    });
    expect(() => loadConfig({ WORKER_INTERVAL: '-5m' })).toThrow(/WORKER_INTERVAL/);
  });

  it('names every bad variable at once', () => {
    expect(() =>
      loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', INTERNAL_KEY: 'short', WORKER_INTERVAL: 'soon' }),
    ).toThrow(/PORT[\s\S]*REDIS_URL[\s\S]*INTERNAL_KEY[\s\S]*WORKER_INTERVAL/);
  });

  it('points the cache at a Redis Cluster or at Sentinel, and says where in logs without a password', () => {
    const server = loadConfig({ REDIS_URL: 'redis://:secret@cache.internal:6380' });
    expect(cacheOptions(server).redis).toBe('redis://:secret@cache.internal:6380');
    expect(server.redisTarget).toBe('redis://:***@cache.internal:6380');

    const cluster = loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000, [::1]:7001' });
    expect(cacheOptions(cluster).redis).toEqual({
      cluster: [
        { host: '127.0.0.1', port: 7000 },
        { host: '::1', port: 7001 },
      ],
    });
    expect(cluster.redisTarget).toBe('the Redis Cluster at 127.0.0.1:7000,[::1]:7001');

    const sentinel = loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379,127.0.0.1:26380', REDIS_SENTINEL_MASTER: 'shop' });
    expect(cacheOptions(sentinel).redis).toEqual({
      sentinels: [
        { host: '127.0.0.1', port: 26379 },
        { host: '127.0.0.1', port: 26380 },
      ],
      name: 'shop',
    });
    expect(sentinel.redisTarget).toBe('master "shop" of the sentinels 127.0.0.1:26379,127.0.0.1:26380');
  });

  it('refuses a Redis topology it cannot use, saying why', () => {
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1' })).toThrow(/host:port[\s\S]*REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:70000' })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379' })).toThrow(/needs REDIS_SENTINEL_MASTER/);
    expect(() => loadConfig({ REDIS_SENTINEL_MASTER: 'shop' })).toThrow(/without REDIS_SENTINELS/);
    expect(() =>
      loadConfig({
        REDIS_CLUSTER_NODES: '127.0.0.1:7000',
        REDIS_SENTINELS: '127.0.0.1:26379',
        REDIS_SENTINEL_MASTER: 'm',
      }),
    ).toThrow(/not both/);
  });
});
