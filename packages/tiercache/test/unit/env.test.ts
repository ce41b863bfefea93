import { describe, expect, it } from 'vitest';
import { ConfigurationError, cacheOptionsFromEnv, createCacheFromEnv } from '../../src/index.js';
import { ENV_VARIABLES } from '../../src/env.js';

describe('cacheOptionsFromEnv', () => {
  it('reads nothing from an environment without its variables', () => {
    expect(cacheOptionsFromEnv({ PATH: '/bin', REDIS_URL: 'redis://elsewhere' })).toEqual({});
  });

  it('maps every variable to its option', () => {
    const options = cacheOptionsFromEnv({
      TIERCACHE_REDIS_URL: 'redis://:secret@127.0.0.1:6380/2',
      TIERCACHE_PREFIX: 'shop',
      TIERCACHE_TTL: '5m',
      TIERCACHE_GRACE: '0',
      TIERCACHE_REDIS_TIMEOUT: '250ms',
      TIERCACHE_MAX_VALUE_BYTES: '2048',
      TIERCACHE_MAX_KEY_LENGTH: '128',
      TIERCACHE_WRITE_ERRORS: 'throw',
      TIERCACHE_JITTER: '0.1',
      TIERCACHE_MEMORY_MAX_ENTRIES: '500',
      TIERCACHE_MEMORY_MAX_BYTES: '1000000',
      TIERCACHE_MEMORY_MAX_TTL: '30s',
      TIERCACHE_BREAKER_THRESHOLD: '5',
      TIERCACHE_BREAKER_WINDOW: '2s',
      TIERCACHE_BREAKER_OPEN: '3000',
      TIERCACHE_BREAKER_MIN_DISTINCT_KEYS: '2',
      TIERCACHE_BUS_TRACKING: 'off',
      TIERCACHE_BUS_HEARTBEAT: '1s',
      TIERCACHE_BUS_REPLAY_MAX: '100',
      TIERCACHE_LOCK_TTL: '20s',
      TIERCACHE_LOCK_WAIT: '0',
    });
    expect(options).toEqual({
      redis: 'redis://:secret@127.0.0.1:6380/2',
      prefix: 'shop',
      ttl: 300_000,
      grace: 0,
      timeouts: { redisMs: 250 },
      maxValueBytes: 2048,
      maxKeyLength: 128,
      writeErrors: 'throw',
      jitter: 0.1,
      memory: { maxEntries: 500, maxBytes: 1_000_000, maxTtl: 30_000 },
      breaker: { threshold: 5, windowMs: 2_000, openMs: 3_000, minDistinctKeys: 2 },
      bus: { tracking: false, heartbeatMs: 1_000, replayMax: 100 },
      lock: { ttlMs: 20_000, waitMs: 0 },
    });
  });

  it('turns parts off with `off`, whatever the order of the variables', () => {
    expect(
      cacheOptionsFromEnv({
        TIERCACHE_MEMORY_MAX_ENTRIES: '5',
        TIERCACHE_MEMORY: 'off',
        TIERCACHE_BREAKER: 'OFF',
        TIERCACHE_BUS: 'false',
        TIERCACHE_LOCK: '0',
      }),
    ).toEqual({ memory: false, breaker: false, bus: false, lock: false });
    expect(cacheOptionsFromEnv({ TIERCACHE_MEMORY: 'on' })).toEqual({ memory: {} });
  });

  it('names the variable and the value in the message', () => {
    expect(() => cacheOptionsFromEnv({ TIERCACHE_TTL: '-5' })).toThrow(ConfigurationError);
    expect(() => cacheOptionsFromEnv({ TIERCACHE_TTL: '-5' })).toThrow(
      "Expected `TIERCACHE_TTL` to be a positive duration (milliseconds or a string like '250ms', '5m', '1h'), got `-5`",
    );
    expect(() => cacheOptionsFromEnv({ TIERCACHE_TTL: '0' })).toThrow('`TIERCACHE_TTL` to be a positive duration');
    expect(() => cacheOptionsFromEnv({ TIERCACHE_MEMORY_MAX_ENTRIES: '1.5' })).toThrow(
      'Expected `TIERCACHE_MEMORY_MAX_ENTRIES` to be a positive integer, got `1.5`',
    );
    expect(() => cacheOptionsFromEnv({ TIERCACHE_BUS: 'maybe' })).toThrow(
      'Expected `TIERCACHE_BUS` to be `on` or `off`, got `maybe`',
    );
    expect(() => cacheOptionsFromEnv({ TIERCACHE_WRITE_ERRORS: 'ignore' })).toThrow('got `ignore`');
    expect(() => cacheOptionsFromEnv({ TIERCACHE_JITTER: '2' })).toThrow('a fraction from 0 to 1, got `2`');
    expect(() => cacheOptionsFromEnv({ TIERCACHE_GRACE: '10 years and a day' })).toThrow('`TIERCACHE_GRACE`');
  });

  it('reads Sentinel from its two variables, IPv6 endpoints included', () => {
    const options = cacheOptionsFromEnv({
      TIERCACHE_REDIS_SENTINELS: '127.0.0.1:26379, sentinel-2.internal:26380,[::1]:26381',
      TIERCACHE_REDIS_SENTINEL_MASTER: 'mymaster',
    });
    expect(options.redis).toEqual({
      sentinels: [
        { host: '127.0.0.1', port: 26379 },
        { host: 'sentinel-2.internal', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
    });
    // Explicit ioredis options (a password, say) merge under them.
    const merged = cacheOptionsFromEnv(
      { TIERCACHE_REDIS_SENTINELS: '127.0.0.1:26379', TIERCACHE_REDIS_SENTINEL_MASTER: 'cache' },
      { options: { redis: { password: 'pw', sentinelPassword: 'spw' } } },
    );
    expect(merged.redis).toEqual({
      password: 'pw',
      sentinelPassword: 'spw',
      sentinels: [{ host: '127.0.0.1', port: 26379 }],
      name: 'cache',
    });
  });

  it('refuses half a Sentinel configuration, naming both variables', () => {
    expect(() => cacheOptionsFromEnv({ TIERCACHE_REDIS_SENTINELS: '127.0.0.1:26379' })).toThrow(
      'Sentinel needs both `TIERCACHE_REDIS_SENTINELS` and `TIERCACHE_REDIS_SENTINEL_MASTER`; `TIERCACHE_REDIS_SENTINEL_MASTER` is not set',
    );
    expect(() => cacheOptionsFromEnv({ APP_REDIS_SENTINEL_MASTER: 'mymaster' }, { prefix: 'APP_' })).toThrow(
      'Sentinel needs both `APP_REDIS_SENTINELS` and `APP_REDIS_SENTINEL_MASTER`; `APP_REDIS_SENTINELS` is not set',
    );
  });

  it('refuses a URL or cluster nodes together with Sentinel', () => {
    expect(() =>
      cacheOptionsFromEnv({
        TIERCACHE_REDIS_URL: 'redis://127.0.0.1:6379',
        TIERCACHE_REDIS_SENTINELS: '127.0.0.1:26379',
        TIERCACHE_REDIS_SENTINEL_MASTER: 'mymaster',
      }),
    ).toThrow(
      /^Set either `TIERCACHE_REDIS_URL` or `TIERCACHE_REDIS_SENTINELS` and `TIERCACHE_REDIS_SENTINEL_MASTER`, not both$/,
    );
    expect(() =>
      cacheOptionsFromEnv({
        TIERCACHE_REDIS_CLUSTER_NODES: '127.0.0.1:7000',
        TIERCACHE_REDIS_SENTINELS: '127.0.0.1:26379',
        TIERCACHE_REDIS_SENTINEL_MASTER: 'mymaster',
      }),
    ).toThrow(
      /^Set either `TIERCACHE_REDIS_CLUSTER_NODES` or `TIERCACHE_REDIS_SENTINELS` and `TIERCACHE_REDIS_SENTINEL_MASTER`, not both$/,
    );
  });

  it('names a malformed sentinel list or master name', () => {
    for (const bad of ['127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '127.0.0.1:26379,', 'a b:1']) {
      expect(() =>
        cacheOptionsFromEnv({ TIERCACHE_REDIS_SENTINELS: bad, TIERCACHE_REDIS_SENTINEL_MASTER: 'm' }),
      ).toThrow(`Expected \`TIERCACHE_REDIS_SENTINELS\` to be a comma-separated list of sentinels as host:port`);
    }
    expect(() =>
      cacheOptionsFromEnv({
        TIERCACHE_REDIS_SENTINELS: '127.0.0.1:26379',
        TIERCACHE_REDIS_SENTINEL_MASTER: 'my master',
      }),
    ).toThrow(/^Expected `TIERCACHE_REDIS_SENTINEL_MASTER` to be the name of the master .*, got `my master`$/);
  });

  it('never shows the Redis URL, which may carry a password', () => {
    expect(() => cacheOptionsFromEnv({ TIERCACHE_REDIS_URL: 'http://user:hunter2@host' })).toThrow(
      /^Expected `TIERCACHE_REDIS_URL` to be a redis:\/\/ or rediss:\/\/ URL$/,
    );
  });

  it('reports every wrong and unknown variable at once, with a suggestion for a typo', () => {
    expect(() =>
      cacheOptionsFromEnv({ TIERCACHE_TTL: 'soon', TIERCACHE_GRCE: '1h', TIERCACHE_FROBNICATE: '1' }),
    ).toThrow(
      "Unknown variable `TIERCACHE_GRCE`; did you mean `TIERCACHE_GRACE`?; Unknown variable `TIERCACHE_FROBNICATE`; Expected `TIERCACHE_TTL` to be a positive duration (milliseconds or a string like '250ms', '5m', '1h'), got `soon`",
    );
  });

  it('reads another prefix and ignores empty variables', () => {
    expect(
      cacheOptionsFromEnv(
        { SHOP_CACHE_TTL: '1h', SHOP_CACHE_GRACE: '', TIERCACHE_NOPE: '1' },
        { prefix: 'SHOP_CACHE_' },
      ),
    ).toEqual({
      ttl: 3_600_000,
    });
  });

  it('puts explicit options under the variables, merging sections', () => {
    const clock = { now: () => 0 };
    expect(
      cacheOptionsFromEnv(
        { TIERCACHE_MEMORY_MAX_ENTRIES: '5', TIERCACHE_TTL: '1s' },
        { options: { ttl: '1m', memory: { maxBytes: 1000 }, clock } },
      ),
    ).toEqual({ ttl: 1_000, memory: { maxBytes: 1000, maxEntries: 5 }, clock });
  });

  it('documents a default for every variable', () => {
    for (const variable of ENV_VARIABLES) expect(variable.default, variable.name).not.toBe('');
  });
});

describe('createCacheFromEnv', () => {
  it('creates a working memory-only cache from the environment', async () => {
    const cache = createCacheFromEnv({ TIERCACHE_PREFIX: 'env', TIERCACHE_TTL: '1m' });
    expect(cache.prefix).toBe('env:');
    expect(await cache.getOrSet('k', () => 42)).toBe(42);
    expect(cache.health().status).toBe('ok');
    await cache.close();
  });

  it('lets createCache refuse what it refuses, with its message', () => {
    expect(() => createCacheFromEnv({ TIERCACHE_BREAKER_THRESHOLD: '100000' })).toThrow(ConfigurationError);
  });
});
