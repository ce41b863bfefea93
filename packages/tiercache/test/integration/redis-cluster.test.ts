import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SLOT_COUNT, startRedisCluster } from './helpers/redis-cluster.js';
import type { RedisClusterProcess } from './helpers/redis-cluster.js';
import { stopAllRedis } from './helpers/redis-server.js';

describe('the redis-cluster test helper', () => {
  let cluster: RedisClusterProcess;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    console.info(`cluster of 6 formed in ${cluster.startMs} ms`);
  });
  afterAll(async () => {
    await cluster?.stop();
    await stopAllRedis();
  });

  it('forms 3 masters with one replica each, covering all slots, on loopback ports other than 6379', async () => {
    const nodes = await cluster.nodes();
    expect(nodes).toHaveLength(6);
    expect(nodes.every((node) => node.port !== 6379)).toBe(true);
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    const covered = masters.flatMap((node) => node.slots).reduce((sum, [from, to]) => sum + (to - from + 1), 0);
    expect(covered).toBe(SLOT_COUNT);
    const replicas = nodes.filter((node) => node.role === 'replica');
    expect(new Set(replicas.map((node) => node.masterId))).toEqual(new Set(masters.map((node) => node.id)));
  });

  it('serves a key set through one Cluster client to another, from the master that owns its slot', async () => {
    const writer = await cluster.client();
    const reader = await cluster.client();
    const keys = Array.from({ length: 30 }, (_, i) => `helper:key:${i}`);
    await Promise.all(keys.map((key, i) => writer.set(key, `v${i}`)));
    expect(await Promise.all(keys.map((key) => reader.get(key)))).toEqual(keys.map((_, i) => `v${i}`));

    const owner = await cluster.masterFor('helper:key:0');
    expect(await owner.process.cli('GET', 'helper:key:0')).toBe('v0');
    expect(await cluster.slotOf('helper:key:0')).toBe(await cluster.slotOf('{helper:key:0}:other'));
    const owners = new Set(await Promise.all(keys.map(async (key) => (await cluster.masterFor(key)).port)));
    expect(owners.size).toBe(3);
  });

  it('stop() kills every node by pid and removes their dirs', async () => {
    const other = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
    const pids = other.processes.map((node) => node.pid);
    const dirs = other.processes.map((node) => node.dir);
    await other.stop();
    expect(pids.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
    expect(dirs.filter((dir) => existsSync(dir))).toEqual([]);
    await other.stop();
  });
});
