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
      INTERNAL_KEY: 'a-long-enough-secret',
    });
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://u@db.internal:5432/shop', schema: undefined });
    expect(config).toMatchObject({ workerIntervalMs: 30_000, trendsIntervalMs: 0, cacheDisabled: true });
  });

  it('names every bad variable at once', () => {
    expect(() =>
      loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', INTERNAL_KEY: 'short', WORKER_INTERVAL: '5 minutes' }),
    ).toThrow(/PORT[\s\S]*REDIS_URL[\s\S]*INTERNAL_KEY[\s\S]*WORKER_INTERVAL/);
  });
});
