import { afterAll, beforeAll } from 'vitest';
import { RedisTier } from '../../src/tiers/redis.js';
import { describeRemoteTier } from '../contract/remote-tier.js';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { sleep, waitFor } from './helpers/support.js';

let redis: RedisProcess;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await stopAllRedis();
});

describeRemoteTier('RedisTier on a real redis-server', async () => {
  const tier = new RedisTier(redis.url, { timeoutMs: 1000, onConnectionError: () => {} });
  await waitFor('the tier to connect', () => tier.status === 'ready');
  return { tier, advance: (ms) => sleep(ms), now: () => Date.now(), close: () => tier.close() };
});
