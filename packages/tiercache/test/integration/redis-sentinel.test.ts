import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveRedisCount, stopAllRedis } from './helpers/redis-server.js';
import { startSentinelSet } from './helpers/redis-sentinel.js';
import type { SentinelSet } from './helpers/redis-sentinel.js';

describe('the Sentinel test helper', () => {
  let set: SentinelSet;

  beforeAll(async () => {
    set = await startSentinelSet();
  }, 30_000);

  afterAll(stopAllRedis);

  it('starts a master, a replica and three sentinels that know each other, all on loopback', async () => {
    expect(set.servers).toHaveLength(2);
    expect(set.sentinels).toHaveLength(3);
    expect(set.endpoints.every((e) => e.host === '127.0.0.1' && e.port !== 6379 && e.port !== 26379)).toBe(true);
    expect(await set.masterPort()).toBe(set.master.port);
    const replica = set.servers[1];
    expect(await replica?.cli('INFO', 'replication')).toMatch(/^role:slave\r?$/m);
    for (const sentinel of set.sentinels) {
      const master = await sentinel.cli('SENTINEL', 'MASTER', set.name);
      expect(master).toMatch(/^ip\n127\.0\.0\.1$/m);
      expect(master).toMatch(/num-slaves\n1\n/);
      expect(master).toMatch(/num-other-sentinels\n2\n/);
    }
  });

  it('failover() SIGKILLs the master and resolves once the sentinels name the replica, which an ioredis client follows', async () => {
    const client = new Redis({ sentinels: [...set.endpoints], name: set.name, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    try {
      await client.set('before', '1');
      const replica = set.servers[1];
      const { killedAt, promotedAt, old } = await set.failover();
      expect(old.running).toBe(false);
      expect(set.master).toBe(replica);
      expect(await set.masterPort()).toBe(replica?.port);
      // down-after 1000 ms, then an election and a promotion: measured about 2.4 s on this machine.
      expect(promotedAt - killedAt).toBeGreaterThanOrEqual(set.downAfterMs);
      expect(promotedAt - killedAt).toBeLessThan(15_000);
      console.log(`sentinel helper: master promoted ${promotedAt - killedAt} ms after the SIGKILL`);
      // The replica had the key before the kill; the client reconnects to it through the sentinels.
      await expect.poll(() => client.get('before').catch(() => null), { timeout: 10_000, interval: 50 }).toBe('1');
    } finally {
      client.disconnect();
    }
  }, 40_000);

  it('stop() ends every process of the set, and is safe to call twice', async () => {
    const processes = [...set.servers, ...set.sentinels];
    expect(processes).toHaveLength(5);
    // The old master died in the failover test; the other four still run until stop().
    expect(processes.filter((server) => server.running)).toHaveLength(4);
    const before = liveRedisCount();
    await set.stop();
    expect(before - liveRedisCount()).toBe(4);
    await set.stop();
    for (const server of processes) expect(server.running).toBe(false);
  });
});
