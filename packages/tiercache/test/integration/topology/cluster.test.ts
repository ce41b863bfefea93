/**
 * What only a cluster can get wrong: CROSSSLOT (every public operation with keys over all slots), clear() of a big
 * prefix across masters, the RemoteTier contract on a Cluster client, and tracking that follows a failover. One
 * 6-node cluster for the file; the failover test runs last since it changes the topology.
 */
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import type { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache, createCacheFromEnv } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { createEntry, encodeEntry } from '../../../src/entry.js';
import { RedisTier } from '../../../src/tiers/redis.js';
import { describeRemoteTier } from '../../contract/remote-tier.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import type { RedisClusterProcess } from '../helpers/redis-cluster.js';
import { stopAllRedis } from '../helpers/redis-server.js';
import { sleep, timed, trackUnhandledRejections, uniquePrefix, waitFor } from '../helpers/support.js';

let cluster: RedisClusterProcess;
let raw: Cluster;
const perMaster: Redis[] = [];
const caches: Cache[] = [];
let unhandled: ReturnType<typeof trackUnhandledRejections>;

beforeAll(async () => {
  unhandled = trackUnhandledRejections();
  cluster = await startRedisCluster();
  raw = await cluster.client();
}, 60_000);

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  await sleep(20);
  expect(unhandled.reasons).toEqual([]);
});

afterAll(async () => {
  unhandled.dispose();
  for (const client of perMaster.splice(0)) client.disconnect();
  await cluster?.stop();
  await stopAllRedis();
});

async function open(prefix: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = createCache({
    prefix,
    redis: { cluster: cluster.startupNodes },
    timeouts: { redisMs: 1000 },
    ...options,
  });
  caches.push(cache);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  // And tracked on every master: a copy made before that may be dropped when a master's tracking comes on (seen once
  // in the full suite: the clear() test's first copy read back from Redis instead of memory).
  await cache.ready();
  return cache;
}

/** A plain connection to each current master (a SCAN sees one master's keys only). */
async function masterClients(): Promise<Redis[]> {
  for (const client of perMaster.splice(0)) client.disconnect();
  for (const master of await cluster.masters()) {
    const client = new Redis({ host: '127.0.0.1', port: master.port, lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    await client.connect();
    perMaster.push(client);
  }
  return perMaster;
}

async function scanCount(pattern: string): Promise<number> {
  const counts = await Promise.all(
    (await masterClients()).map(async (client) => {
      let cursor = '0';
      let total = 0;
      do {
        const [next, found] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
        cursor = next;
        total += found.length;
      } while (cursor !== '0');
      return total;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** CROSSSLOT errors every master has answered since its stats were reset. */
async function crossSlotErrors(): Promise<number> {
  let total = 0;
  for (const client of await masterClients()) {
    const info = await client.info('errorstats');
    total += Number(/^errorstat_CROSSSLOT:count=(\d+)/m.exec(info)?.[1] ?? 0);
  }
  return total;
}

/** 300 keys whose slots cover the whole slot range (and all three masters). */
const spread = Array.from({ length: 300 }, (_, i) => `key:${i}`);

describe('a cluster from the environment', () => {
  it('TIERCACHE_REDIS_CLUSTER_NODES connects a cache, and close() closes every connection it opened', async () => {
    const connections = async (): Promise<number> => {
      let total = 0;
      for (const master of await cluster.masters()) {
        total += (await master.process.cli('CLIENT', 'LIST')).split('\n').filter(Boolean).length;
      }
      return total;
    };
    const before = await connections();
    const nodes = cluster.startupNodes.map((node) => `${node.host}:${node.port}`).join(',');
    const cache = createCacheFromEnv({ TIERCACHE_REDIS_CLUSTER_NODES: nodes, TIERCACHE_PREFIX: uniquePrefix('env') });
    await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
    await waitFor('tracking on', () => cache.stats().bus?.tracking === true);
    await cache.set('k', 'v');
    expect(await cache.getWithMeta('k', { skipMemory: true })).toMatchObject({ value: 'v', source: 'redis' });
    // A data and a pub/sub connection per master at least (the one asking CLIENT LIST counts on both sides).
    expect(await connections()).toBeGreaterThanOrEqual(before + 6);
    await cache.close();
    await waitFor('its connections to close', async () => (await connections()) <= before);
  });
});

describe('no CROSSSLOT anywhere', () => {
  it('a turn of 96 gets is one batch on a cluster by default (~32 keys a master), three with maxKeys: 32', async () => {
    for (const [options, batches] of [
      [{}, 1],
      [{ batching: { maxKeys: 32 } }, 3],
    ] as const) {
      const cache = await open(uniquePrefix('cluster-batch'), { memory: false, ...options });
      const before = cache.stats().batches.reads.count;
      const values = Array.from({ length: 96 }, (_, i) => cache.get(`k${i}`));
      expect(await Promise.all(values)).toEqual(Array.from({ length: 96 }, () => undefined));
      expect(cache.stats().batches.reads.count - before).toBe(batches);
    }
  });

  it('every public operation with 300 keys over all slots, memory on and off, raises no error', async () => {
    const slots = new Set(spread.map((key) => calculateSlot(key)));
    expect(slots.size).toBeGreaterThan(280);
    expect(Math.min(...slots)).toBeLessThan(200);
    expect(Math.max(...slots)).toBeGreaterThan(16_000);
    for (const client of await masterClients()) await client.config('RESETSTAT');

    for (const memory of [undefined, false as const]) {
      const prefix = uniquePrefix(`all-ops-${memory === false ? 'nomem' : 'mem'}`);
      const a = await open(prefix, memory === false ? { memory } : {});
      const b = await open(prefix, memory === false ? { memory } : {});
      const errors: string[] = [];
      for (const cache of [a, b])
        cache.on('error', (event) => errors.push(`${event.operation}: ${event.error.message}`));
      const half = spread.slice(0, 150);
      const rest = spread.slice(150);

      await a.mset(half.map((key, i) => ({ key, value: i, tags: [`t${i % 7}`, 'all'] })));
      await Promise.all(rest.map((key, i) => a.set(key, i, { tags: ['all'] })));
      expect((await b.mget(spread)).filter((v) => v !== undefined)).toHaveLength(300);
      expect(await b.get('key:0')).toBe(0);
      expect((await b.getWithMeta('key:1'))?.value).toBe(1);
      expect((await Promise.all(spread.map((key) => b.has(key)))).every(Boolean)).toBe(true);
      const loaded = await Promise.all(spread.map((key) => b.getOrSet(`gos:${key}`, () => key, { tags: ['all'] })));
      expect(loaded).toEqual(spread);
      expect((await a.getOrSetWithMeta('gos:key:5', () => 'never')).value).toBe('key:5');
      const many = await a.getOrSetMany(
        spread.map((key) => `many:${key}`),
        (keys) => new Map(keys.map((key) => [key, key.length])),
      );
      expect(many.every((value) => typeof value === 'number')).toBe(true);
      expect((await b.getOrSetManyWithMeta(spread.slice(0, 50), () => new Map())).every((r) => r !== undefined)).toBe(
        true,
      );
      const progress = await a.warm(spread.map((key) => ({ key: `warm:${key}`, value: key })));
      expect(progress).toMatchObject({ written: 300, failed: 0 });
      await a.writeThrough('wt:key', 'v', () => true);
      a.writeBehindQueue('q', { write: () => {}, flushInterval: '1h' });
      await Promise.all(spread.slice(0, 60).map((key) => a.writeBehind(`wb:${key}`, key, { queue: 'q' })));
      const counter = b.counter('hits', { flush: () => {}, flushInterval: '1h' });
      await Promise.all(spread.slice(0, 60).map((key) => counter.incr(key)));
      expect(await counter.get('key:0')).toBe(1);
      await counter.flush();
      const ns = a.namespace('ns');
      await ns.mset(spread.slice(0, 50).map((key) => ({ key, value: 1 })));
      expect(await ns.deleteMany(spread.slice(0, 50))).toBe(50);

      await a.invalidateTags(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
      expect(await b.mget(half)).toEqual(half.map(() => undefined));
      expect(await a.delete('key:150')).toBe(true);
      expect(await a.deleteMany(spread.slice(151, 200))).toBe(49);
      await b.invalidateTags(['all']);
      expect((await a.mget(spread)).every((v) => v === undefined)).toBe(true);
      await a.clear();
      expect(await scanCount(`${prefix}*`)).toBe(0);
      expect(a.health().status).toBe('ok');
      expect(await a.ready()).toBe(true);
      expect(errors).toEqual([]);
    }
    expect(await crossSlotErrors()).toBe(0);
  });
});

describe('clear() on a cluster', () => {
  it('removes 100 000 keys of app:user from every master, seen by a second instance, and no app:users key', async () => {
    const masters = await cluster.masters();
    const owner = new Map<number, number>();
    for (const [index, master] of masters.entries()) {
      for (const [from, to] of master.slots) for (let slot = from; slot <= to; slot++) owner.set(slot, index);
    }
    const clients = await masterClients();
    const ports = masters.map((master) => master.port);
    const byPort = new Map(perMaster.map((client) => [client.options.port, client]));
    // One stored entry (the value 1, fresh for 10 minutes), as the cache itself writes it.
    const stored = encodeEntry(createEntry(1, Date.now(), 600_000, 0, []));
    const load = async (keys: string[]): Promise<void> => {
      const pipelines = ports.map((port) => (byPort.get(port) as Redis).pipeline());
      for (const key of keys) pipelines[owner.get(calculateSlot(key)) as number]?.set(key, stored, 'EX', 600);
      await Promise.all(pipelines.map((pipeline) => pipeline.exec()));
    };
    expect(clients).toHaveLength(3);
    const loadStart = performance.now();
    for (let chunk = 0; chunk < 10; chunk++) {
      await load(Array.from({ length: 10_000 }, (_, i) => `app:user:${chunk * 10_000 + i}`));
    }
    await load(Array.from({ length: 1000 }, (_, i) => `app:users:${i}`));
    const loadMs = performance.now() - loadStart;
    expect(await scanCount('app:user:*')).toBe(100_000);

    const a = await open('app:user');
    const b = await open('app:user');
    expect(await b.mget(['1', '2', '3'])).toEqual([1, 1, 1]);
    expect((await b.getWithMeta('1'))?.source).toBe('memory');
    const { ms } = await timed(() => a.clear());
    console.info(
      `[figures] cluster: loaded 101 000 keys over 3 masters in ${Math.round(loadMs)} ms; clear() of app:user (100 000 keys) took ${Math.round(ms)} ms`,
    );
    expect(await scanCount('app:user:*')).toBe(0);
    expect(await scanCount('app:users:*')).toBe(1000);
    await waitFor('B to drop its copies', async () => (await b.mget(['1', '2', '3'])).every((v) => v === undefined));
    const perNode = await Promise.all(
      (await masterClients()).map(async (client) => (await client.scan('0', 'MATCH', 'app:users:*', 'COUNT', 5000))[1]),
    );
    expect(perNode.every((found) => found.length > 0)).toBe(true);
    await Promise.all(perMaster.map((client) => client.flushall()));
  }, 120_000);
});

describeRemoteTier('RedisTier on a Redis Cluster', async () => {
  const tier = new RedisTier({ cluster: cluster.startupNodes }, { timeoutMs: 1000, onConnectionError: () => {} });
  await waitFor('the tier to connect', () => tier.status === 'ready');
  return { tier, advance: (ms) => sleep(ms), now: () => Date.now(), close: () => tier.close() };
});

describe('a slot moved to another master (resharding)', () => {
  it('both instances follow it: reads and writes work, a foreign DEL on the new owner still drops the copies', async () => {
    const prefix = uniquePrefix('reshard');
    const a = await open(prefix);
    const b = await open(prefix);
    for (const cache of [a, b]) cache.on('error', () => {});
    await waitFor('tracking on in both', () => [a, b].every((cache) => cache.stats().bus?.tracking === true));
    const key = `${prefix}moving`;
    await a.set('moving', 'v1');
    expect(await b.get('moving')).toBe('v1');
    await waitFor('B to keep it in memory', async () => (await b.getWithMeta('moving'))?.source === 'memory');

    const slot = String(await cluster.slotOf(key));
    const from = await cluster.masterFor(key);
    const to = (await cluster.masters()).find((master) => master.id !== from.id);
    if (to === undefined) throw new Error('no other master');
    await to.process.cli('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
    await from.process.cli('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
    const keys = (await from.process.cli('CLUSTER', 'GETKEYSINSLOT', slot, '1000')).split('\n').filter(Boolean);
    expect(keys).toContain(key);
    await from.process.cli('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys);
    for (const master of await cluster.masters()) await master.process.cli('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
    await waitFor('every node to agree on the new owner', async () => (await cluster.masterFor(key)).port === to.port);

    // B's copy survives the move (nothing changed the key); A's write through the new owner reaches it.
    await a.set('moving', 'v2');
    await waitFor('B to see v2', async () => (await b.get('moving')) === 'v2');
    for (const cache of [a, b]) {
      await waitFor('a copy in memory', async () => (await cache.getWithMeta('moving'))?.source === 'memory');
    }
    await raw.del(key);
    for (const cache of [a, b]) await waitFor('the copy to go', async () => (await cache.get('moving')) === undefined);
  }, 30_000);
});

describe('the breaker on a cluster', () => {
  it('opens for 1 s unless the user says otherwise: one shard’s failover must not keep the healthy ones skipped for 10 s', async () => {
    for (const [options, openMs] of [
      [{}, 1000],
      [{ breaker: { openMs: 5000 } }, 5000],
    ] as const) {
      const cache = await open(uniquePrefix('breaker'), {
        timeouts: { redisMs: 50 },
        memory: false,
        bus: false,
        ...options,
      });
      cache.on('error', () => {});
      const masters = await cluster.masters();
      await Promise.all(masters.map((master) => master.process.pause(1000)));
      let n = 0;
      await waitFor(
        'the breaker to open',
        async () => {
          await Promise.all(Array.from({ length: 4 }, () => cache.get(`k${n++}`)));
          return cache.stats().breaker?.state === 'open';
        },
        { timeoutMs: 5000, intervalMs: 1 },
      );
      const snapshot = cache.stats().breaker;
      expect((snapshot?.nextProbeAt ?? 0) - (snapshot?.openedAt ?? 0)).toBe(openMs);
      // The pause ends by itself; the next round (or the next test) needs the masters answering again.
      await waitFor('the masters to answer', async () => (await raw.ping()) === 'PONG', { timeoutMs: 5000 });
    }
  });
});

describe('one master stalled', () => {
  it('a batch over every master serves the others’ keys, each get as its own master answers, fails the stalled one’s alone', async () => {
    const prefix = uniquePrefix('stall');
    const cache = await open(prefix, { timeouts: { redisMs: 300 }, memory: false, bus: false, writeErrors: 'throw' });
    const errors: string[] = [];
    cache.on('error', ({ operation }) => errors.push(operation));
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    await cache.mset(keys.map((key) => ({ key, value: `v-${key}` })));
    const victim = (await cluster.masters())[0];
    if (victim === undefined) throw new Error('no master');
    const onVictim = new Set<string>();
    for (const key of keys) if ((await cluster.masterFor(`${prefix}${key}`)).port === victim.port) onVictim.add(key);
    expect(onVictim.size).toBeGreaterThan(0);
    expect(onVictim.size).toBeLessThan(keys.length);

    await victim.process.pause(1500);
    const { value, ms } = await timed(() => cache.mget(keys));
    expect(value).toStrictEqual(keys.map((key) => (onVictim.has(key) ? undefined : `v-${key}`)));
    expect(ms).toBeLessThan(300 + 250);
    expect(errors).toStrictEqual(['get']);
    // One turn's gets: each is answered when its own master answers, not when the stalled one gives up.
    const start = performance.now();
    const answered = await Promise.all(
      keys.map(async (key) => ({ key, value: await cache.get(key), ms: performance.now() - start })),
    );
    for (const { key, value, ms: at } of answered) {
      if (onVictim.has(key)) {
        expect(value).toBeUndefined();
        expect(at).toBeGreaterThanOrEqual(250);
      } else {
        expect(value).toBe(`v-${key}`);
        expect(at, key).toBeLessThan(200);
      }
    }
    expect(errors).toStrictEqual(['get', 'get']);
    // Writes of one turn likewise: the other masters' keys are written, the stalled one's fail each on its own.
    const written = await Promise.all(
      keys.map((key) =>
        cache.set(key, `w-${key}`).then(
          () => true,
          () => false,
        ),
      ),
    );
    expect(written).toStrictEqual(keys.map((key) => !onVictim.has(key)));
    await waitFor('the master to answer', async () => (await raw.ping()) === 'PONG', { timeoutMs: 5000 });
    const after = await Promise.all(keys.map((key) => raw.get(`${prefix}${key}`)));
    for (const [i, key] of keys.entries()) {
      if (!onVictim.has(key)) expect(after[i]).toContain(`"w-${key}"`);
    }
  });
});

describe('tracking after a failover', () => {
  it('B’s bus master is SIGKILLed: a foreign DEL on the promoted master drops two copies, and the bus still carries', async () => {
    const prefix = uniquePrefix('failover');
    const b = await open(prefix);
    await waitFor('tracking on in B', () => b.stats().bus?.tracking === true);
    // B alone is subscribed now: its bus link is the one connection subscribed to three channels (invalidations, lock
    // wake-ups, the bus); its other links listen to invalidations only.
    const carriers = [];
    for (const master of await cluster.masters()) {
      if (/ sub=3 /.test(await master.process.cli('CLIENT', 'LIST', 'TYPE', 'pubsub'))) carriers.push(master);
    }
    expect(carriers).toHaveLength(1);
    const victim = carriers[0] as (typeof carriers)[number];
    const a = await open(prefix);
    for (const cache of [a, b]) cache.on('error', () => {});
    await waitFor('tracking on in both', () => [a, b].every((cache) => cache.stats().bus?.tracking === true));
    const names = Array.from({ length: 30 }, (_, i) => `k${i}`);
    await a.mset(names.map((key) => ({ key, value: key })));
    const onVictim = [];
    for (const key of names) if ((await cluster.masterFor(`${prefix}${key}`)).port === victim.port) onVictim.push(key);
    expect(onVictim.length).toBeGreaterThan(0);

    const started = Date.now();
    await victim.process.kill('SIGKILL');
    // The dead master's slots are untracked at once (its connections close) and stay so until the promoted replica is
    // tracked, with no command of the test's needed to find it.
    await waitFor('both to see tracking incomplete', () => [a, b].every((c) => c.stats().bus?.tracking === false), {
      timeoutMs: 5000,
    });
    await waitFor('tracking on the promoted master in both', () => [a, b].every((c) => c.stats().bus?.tracking), {
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    console.info(`[figures] cluster: tracking back on every master ${Date.now() - started} ms after a master SIGKILL`);
    for (const cache of [a, b]) {
      await waitFor('the copies in memory', async () =>
        (await Promise.all(names.map((key) => cache.getWithMeta(key)))).every((meta) => meta?.source === 'memory'),
      );
    }
    for (const key of onVictim) expect((await cluster.masterFor(`${prefix}${key}`)).port).not.toBe(victim.port);
    await Promise.all(names.map((key) => raw.del(`${prefix}${key}`)));
    for (const cache of [a, b]) {
      await waitFor('the copies to go', async () =>
        (await Promise.all(names.map((key) => cache.getWithMeta(key)))).every((meta) => meta === undefined),
      );
    }
    // A bus message (a tag invalidation carries one whether or not anything had the tag) still reaches B.
    const received = b.stats().bus?.received ?? 0;
    await a.invalidateTags(['nothing-has-it']);
    await waitFor('B to receive it', () => (b.stats().bus?.received ?? 0) > received);
    await victim.process.restart();
    await cluster.waitReady();
  }, 60_000);
});
