/**
 * The Redis deployments the topology suite runs against, behind one small interface: start it, hand a cache its
 * `redis` option, inspect keys behind the cache's back on every master, stop it. A new deployment is one more object
 * in TOPOLOGIES.
 */
import { Redis } from 'ioredis';
import type { Cluster } from 'ioredis';
import type { CacheOptions } from 'tiercache';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import type { RedisClusterProcess } from '../helpers/redis-cluster.js';
import { startRedis } from '../helpers/redis-server.js';
import { startSentinelSet } from '../helpers/redis-sentinel.js';
import type { SentinelSet } from '../helpers/redis-sentinel.js';
import type { RedisProcess } from '../helpers/redis-server.js';
import { rawClient } from '../helpers/support.js';

export interface Topology {
  readonly name: string;
  /** Starts the servers (once per file, in beforeAll). */
  start(): Promise<void>;
  /** The `redis` option of a cache on this deployment (a cache built from it owns its connection). */
  redis(): NonNullable<CacheOptions['redis']>;
  /** A raw client that routes like the cache does (a Cluster on a cluster), for checks behind the cache's back. */
  raw(): Redis | Cluster;
  /** One plain connection per master, for SCAN and per-node checks (a SCAN on one master sees only its keys). */
  masterClients(): Promise<Redis[]>;
  /** The processes that hold data now: pause or kill them all to make Redis go away. */
  masterProcesses(): Promise<RedisProcess[]>;
  stop(): Promise<void>;
}

/** Counts the keys matching `pattern` on every master, with SCAN (never KEYS). */
export async function countKeys(topology: Topology, pattern: string): Promise<number> {
  let total = 0;
  for (const client of await topology.masterClients()) {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
      cursor = next;
      total += keys.length;
    } while (cursor !== '0');
  }
  return total;
}

export function standalone(): Topology {
  let server: RedisProcess | undefined;
  let client: Redis | undefined;
  const get = (): RedisProcess => {
    if (server === undefined) throw new Error('standalone: start() first');
    return server;
  };
  return {
    name: 'standalone',
    async start() {
      server = await startRedis();
      client = await rawClient(server.port);
    },
    redis: () => get().url,
    raw: () => {
      if (client === undefined) throw new Error('standalone: start() first');
      return client;
    },
    masterClients: async () => [await rawClient(get().port)],
    masterProcesses: async () => [get()],
    stop: async () => {
      await server?.stop();
    },
  };
}

export function cluster(): Topology {
  let nodes: RedisClusterProcess | undefined;
  let client: Cluster | undefined;
  const perMaster = new Map<number, Redis>();
  const get = (): RedisClusterProcess => {
    if (nodes === undefined) throw new Error('cluster: start() first');
    return nodes;
  };
  return {
    name: 'cluster',
    async start() {
      nodes = await startRedisCluster();
      client = await nodes.client();
      console.info(`[figures] cluster of 6 nodes formed in ${nodes.startMs} ms`);
    },
    redis: () => ({ cluster: get().startupNodes }),
    raw: () => {
      if (client === undefined) throw new Error('cluster: start() first');
      return client;
    },
    async masterClients() {
      const out: Redis[] = [];
      for (const master of await get().masters()) {
        let one = perMaster.get(master.port);
        if (one === undefined || one.status !== 'ready') {
          one = new Redis({ host: '127.0.0.1', port: master.port, lazyConnect: true, maxRetriesPerRequest: 1 });
          one.on('error', () => {});
          await one.connect();
          perMaster.set(master.port, one);
        }
        out.push(one);
      }
      return out;
    },
    masterProcesses: async () => (await get().masters()).map((master) => master.process),
    async stop() {
      for (const one of perMaster.values()) one.disconnect();
      await nodes?.stop();
    },
  };
}

/**
 * 1 master, 1 replica, 3 sentinels; the cache finds the master through the sentinels. down-after is 5 s here, not the
 * failover tests' 1 s, so the suite's 1.5 s pause of the master is a stall, not a failover.
 */
export function sentinel(): Topology {
  let set: SentinelSet | undefined;
  let client: Redis | undefined;
  const get = (): SentinelSet => {
    if (set === undefined) throw new Error('sentinel: start() first');
    return set;
  };
  return {
    name: 'sentinel',
    async start() {
      const started = Date.now();
      set = await startSentinelSet({ downAfterMs: 5000 });
      client = new Redis({ sentinels: [...set.endpoints], name: set.name, lazyConnect: true, maxRetriesPerRequest: 1 });
      client.on('error', () => {});
      await client.connect();
      console.info(`[figures] sentinel set (1 master, 1 replica, 3 sentinels) ready in ${Date.now() - started} ms`);
    },
    redis: () => ({ sentinels: [...get().endpoints], name: get().name }),
    raw: () => {
      if (client === undefined) throw new Error('sentinel: start() first');
      return client;
    },
    masterClients: async () => [await rawClient(get().master.port)],
    masterProcesses: async () => [get().master],
    async stop() {
      client?.disconnect();
      await set?.stop();
    },
  };
}

export const TOPOLOGIES: readonly (() => Topology)[] = [standalone, cluster, sentinel];
