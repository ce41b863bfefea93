/**
 * C1: the W2-64 read on a Redis Cluster (3 masters on this machine): 64 callers in flight, L1 off, tiercache's
 * same-turn batches (one MGET per slot, one pipeline per node) against a raw ioredis `Cluster` GET, in the same run.
 * The workload starts its own cluster and stops it when done.
 */
import { Cluster } from 'ioredis';
import { keyList, runThroughput } from '../harness.js';
import type { ThroughputCase, Workload } from '../harness.js';
import { startRedisCluster } from '../redis-cluster.js';
import { TTL_MS, describeErrors, openTiercache } from '../systems.js';
import type { OpenTiercache } from '../systems.js';
import { isValue, makeValue } from '../value.js';
import { parsed } from './w2-redis-hit.js';

const KEYS = 1024;
const CONCURRENCY = 64;
const at = (keys: readonly string[], i: number): string => keys[i & (KEYS - 1)] as string;

async function openCluster(
  nodes: readonly { host: string; port: number }[],
  extra: { readonly enableAutoPipelining: boolean },
): Promise<Cluster> {
  const client = new Cluster([...nodes], { lazyConnect: true, ...extra });
  client.on('error', () => {});
  await client.connect();
  return client;
}

function cases(nodes: readonly { host: string; port: number }[]): ThroughputCase[] {
  const keysFor = (system: string): string[] => keyList(`c1:${system.replace(/\W+/g, '-')}:`, KEYS);
  const ioredis = (system: string, role: ThroughputCase['role'], autoPipelining: boolean): ThroughputCase => {
    const keys = keysFor(system);
    let client: Cluster | undefined;
    return {
      system,
      role,
      async setup() {
        client = await openCluster(nodes, { enableAutoPipelining: autoPipelining });
        const c = client;
        // A Cluster pipeline must stay on one node: plain SETs, in parallel.
        await Promise.all(keys.map((key, i) => c.set(key, JSON.stringify(makeValue(i)), 'PX', TTL_MS)));
        return { kind: 'async', run: async (i) => parsed(await c.get(at(keys, i))) };
      },
      teardown: async () => {
        await client?.quit().catch(() => client?.disconnect());
      },
    };
  };
  const tiercache = (system: string, prefix: string, note: string): ThroughputCase => {
    const keys = keysFor(system);
    let opened: OpenTiercache | undefined;
    return {
      system,
      role: 'subject',
      note,
      async setup() {
        opened = await openTiercache({ prefix, redis: { cluster: [...nodes] }, memory: false, ttl: TTL_MS });
        const cache = opened.cache;
        await cache.mset(keys.map((key, i) => ({ key, value: makeValue(i) })));
        return { kind: 'async', run: (i) => cache.get(at(keys, i)) };
      },
      report: () => (opened ? describeErrors(opened.errors) : undefined),
      teardown: async () => opened?.close(),
    };
  };
  return [
    ioredis('ioredis Cluster', 'reference', false),
    ioredis('ioredis Cluster A/A', 'control', false),
    ioredis('ioredis Cluster auto-pipelining', 'raw', true),
    tiercache('tiercache L1 off (cluster)', 'c1t', 'redis: { cluster: [{ host, port }, …] }; one MGET per slot'),
    tiercache(
      'tiercache L1 off (cluster), one hash tag',
      '{c1h}',
      "prefix '{c1h}': every key in one slot (one master), so a turn's reads are one MGET",
    ),
  ];
}

export const c1: Workload = {
  id: 'C1',
  title: `Redis Cluster hit, L1 off, ${CONCURRENCY} callers in flight`,
  systems: [
    'ioredis Cluster',
    'ioredis Cluster A/A',
    'ioredis Cluster auto-pipelining',
    'tiercache L1 off (cluster)',
    'tiercache L1 off (cluster), one hash tag',
  ],
  async run(config, select) {
    const cluster = await startRedisCluster();
    config.log(`  C1: 3-master cluster formed in ${cluster.formedMs} ms`);
    try {
      return await runThroughput(
        {
          id: this.id,
          title: this.title,
          description: `${KEYS} keys of 1 KB JSON on a 3-master Redis Cluster (one machine) read in turn by ${CONCURRENCY} concurrent callers; the raw clients JSON.parse every reply.`,
          concurrency: CONCURRENCY,
          batch: undefined,
          check: (value) => isValue(value),
        },
        cases(cluster.nodes).filter((c) => c.role === 'reference' || select(c.system)),
        config,
      );
    } finally {
      await cluster.stop();
    }
  },
};
