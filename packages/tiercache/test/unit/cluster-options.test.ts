import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import { cacheOptionsFromEnv } from '../../src/index.js';
import { validateOptions } from '../../src/resolve-options.js';
import { clusterFailFastOptions, parseClusterNodes } from '../../src/tiers/redis-cluster-options.js';

function messageOf(input: unknown): string {
  try {
    validateOptions(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('validateOptions accepted it');
}

describe('redis: { cluster } (a Redis Cluster tiercache connects to itself)', () => {
  it('takes a node list as objects or as a host:port,host:port string, and parses the string', () => {
    const nodes = [
      { host: '127.0.0.1', port: 7000 },
      { host: '127.0.0.1', port: 7001 },
    ];
    expect(validateOptions({ redis: { cluster: nodes } }).redis).toEqual({ cluster: nodes });
    expect(validateOptions({ redis: { cluster: '127.0.0.1:7000, 127.0.0.1:7001' } }).redis).toEqual({
      cluster: nodes,
    });
    expect(parseClusterNodes('x', '[::1]:7000')).toEqual([{ host: '::1', port: 7000 }]);
    const options = { scaleReads: 'master' as const };
    expect(validateOptions({ redis: { cluster: nodes, options } }).redis).toEqual({ cluster: nodes, options });
  });

  it('names the wrong part of a node list', () => {
    expect(messageOf({ redis: { cluster: [] } })).toBe(
      "Expected `redis.cluster` to be a non-empty list of { host, port } or a 'host:port,host:port' string, got (array)",
    );
    expect(messageOf({ redis: { cluster: '127.0.0.1:7000,localhost' } })).toBe(
      'Expected `redis.cluster` entry 2 to be host:port, got `localhost`',
    );
    expect(messageOf({ redis: { cluster: '127.0.0.1:70000' } })).toBe(
      'Expected `redis.cluster[0].port` to be a port from 1 to 65535, got `70000` (number)',
    );
    expect(messageOf({ redis: { cluster: [{ host: '', port: 7000 }] } })).toBe(
      'Expected `redis.cluster[0].host` to be a non-empty string, got `""` (string)',
    );
    expect(messageOf({ redis: { cluster: [{ host: 'a', port: '7000' }] } })).toBe(
      'Expected `redis.cluster[0].port` to be a port from 1 to 65535, got `"7000"` (string)',
    );
    expect(messageOf({ redis: { cluster: 'a:1', option: {} } })).toBe(
      'Unknown option `redis.option`; a cluster takes `cluster` and `options`',
    );
    expect(messageOf({ redis: { cluster: 'a:1', options: 5 } })).toBe(
      'Expected `redis.options` to be ioredis ClusterOptions, got `5` (number)',
    );
  });

  it('fails fast: no offline queue, no resend, whatever the user passed (the tier’s deadlines bound each call)', () => {
    const built = clusterFailFastOptions(
      { enableOfflineQueue: true, scaleReads: 'all', redisOptions: { commandTimeout: 5000, password: 'p' } },
      150,
    );
    expect(built.enableOfflineQueue).toBe(false);
    expect(built.lazyConnect).toBe(false);
    expect(built.scaleReads).toBe('all');
    // No per-command timer of ioredis' own: tiers/deadlines.ts bounds each call with one timer for all.
    expect(built.redisOptions.commandTimeout).toBeUndefined();
    expect(built.redisOptions.maxRetriesPerRequest).toBe(0);
    expect(built.redisOptions.password).toBe('p');
    expect(built.redisOptions.replyMapping).toBe('legacy');
    expect('retryStrategy' in built.redisOptions).toBe(false);
    expect(typeof built.clusterRetryStrategy).toBe('function');
  });
});

describe('TIERCACHE_REDIS_CLUSTER_NODES', () => {
  it('becomes redis: { cluster } and replaces a redis option passed in whole', () => {
    expect(cacheOptionsFromEnv({ TIERCACHE_REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' })).toEqual({
      redis: { cluster: '127.0.0.1:7000,127.0.0.1:7001' },
    });
    const options = cacheOptionsFromEnv(
      { TIERCACHE_REDIS_CLUSTER_NODES: '127.0.0.1:7000' },
      { options: { redis: { host: 'elsewhere' } } },
    );
    expect(options.redis).toEqual({ cluster: '127.0.0.1:7000' });
    expect(validateOptions(options).redis).toEqual({ cluster: [{ host: '127.0.0.1', port: 7000 }] });
  });

  it('is refused when it is not a node list, or together with TIERCACHE_REDIS_URL', () => {
    expect(() => cacheOptionsFromEnv({ TIERCACHE_REDIS_CLUSTER_NODES: '127.0.0.1' })).toThrow(
      'Expected `TIERCACHE_REDIS_CLUSTER_NODES` to be Redis Cluster nodes as host:port,host:port, got `127.0.0.1`',
    );
    expect(() =>
      cacheOptionsFromEnv({ TIERCACHE_REDIS_URL: 'redis://a:1', TIERCACHE_REDIS_CLUSTER_NODES: 'b:2' }),
    ).toThrow('Set `TIERCACHE_REDIS_URL` or `TIERCACHE_REDIS_CLUSTER_NODES`, not both');
  });
});

describe('telling a node list from a client', () => {
  it('takes an ioredis client (which has a cluster() method) as a client, not as a node list', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis({ lazyConnect: true });
    try {
      expect(validateOptions({ redis: client }).redis).toBe(client);
    } finally {
      client.disconnect();
    }
  });
});
