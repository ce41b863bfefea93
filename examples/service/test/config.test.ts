import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

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
});
