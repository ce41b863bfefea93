import { keyList, runThroughput } from '../harness.js';
import type { ThroughputCase, Workload } from '../harness.js';
import {
  TTL_MS,
  closeIoredis,
  closeNodeRedis,
  describeErrors,
  openBento,
  openCacheManager,
  openIoredis,
  openNodeRedis,
  openTiercache,
} from '../systems.js';
import type { OpenTiercache } from '../systems.js';
import { isValue, makeValue } from '../value.js';

const KEYS = 1024;
const PER_CALL = 100;
const BATCHES = 16;

/** 16 fixed sets of 100 distinct keys, overlapping windows over the key space, built before the clock starts. */
function batchesOf(keys: readonly string[]): string[][] {
  return Array.from({ length: BATCHES }, (_, b) =>
    Array.from({ length: PER_CALL }, (_, j) => keys[(b * 64 + j) & (KEYS - 1)] as string),
  );
}

const parseAll = (raws: readonly (string | null)[]): unknown[] =>
  raws.map((raw) => (raw === null ? undefined : JSON.parse(raw)));

export const w5: Workload = {
  id: 'W5',
  title: `Multi-get of ${PER_CALL} keys from Redis, L1 off, one caller`,
  systems: [
    'ioredis MGET',
    'ioredis MGET A/A',
    'node-redis MGET',
    'tiercache mget L1 off',
    'cache-manager mget Keyv-serializer',
    'cache-manager mget JSON',
    'BentoCache 100 × get',
  ],
  run(config, select) {
    const keysFor = (system: string): string[] => keyList(`w5:${system.replace(/\W+/g, '-')}:`, KEYS);
    const ioredis = (system: string, role: ThroughputCase['role']): ThroughputCase => {
      const batches = batchesOf(keysFor(system));
      let close = async (): Promise<void> => {};
      return {
        system,
        role,
        async setup() {
          const client = await openIoredis(config.redis);
          close = () => closeIoredis(client);
          const pipeline = client.pipeline();
          keysFor(system).forEach((key, i) => pipeline.set(key, JSON.stringify(makeValue(i)), 'PX', TTL_MS));
          await pipeline.exec();
          return { kind: 'async', run: async (i) => parseAll(await client.mget(batches[i % BATCHES] as string[])) };
        },
        teardown: () => close(),
      };
    };
    const cacheManager = (system: string, serializer: 'keyv' | 'json'): ThroughputCase => {
      const keys = keysFor(system);
      const batches = batchesOf(keys);
      let close = async (): Promise<void> => {};
      return {
        system,
        role: 'peer',
        async setup() {
          const opened = openCacheManager(config.redis, {
            namespace: `w5${serializer}`,
            serializer,
            memory: false,
            redis: true,
          });
          close = opened.close;
          const cache = opened.cache;
          await cache.mset(keys.map((key, i) => ({ key, value: makeValue(i) })));
          return { kind: 'async', run: (i) => cache.mget(batches[i % BATCHES] as string[]) };
        },
        teardown: () => close(),
      };
    };
    let tier: OpenTiercache | undefined;
    let closeNode = async (): Promise<void> => {};
    let closeBento = async (): Promise<void> => {};
    const cases: ThroughputCase[] = [
      ioredis('ioredis MGET', 'reference'),
      ioredis('ioredis MGET A/A', 'control'),
      {
        system: 'node-redis MGET',
        role: 'raw',
        note: 'commandOptions: { timeout: 0 }',
        async setup() {
          const keys = keysFor('node-redis');
          const batches = batchesOf(keys);
          const client = await openNodeRedis(config.redis);
          closeNode = () => closeNodeRedis(client);
          await client.mSet(keys.map((key, i) => [key, JSON.stringify(makeValue(i))] as [string, string]));
          return { kind: 'async', run: async (i) => parseAll(await client.mGet(batches[i % BATCHES] as string[])) };
        },
        teardown: () => closeNode(),
      },
      {
        system: 'tiercache mget L1 off',
        role: 'subject',
        async setup() {
          const keys = keysFor('tiercache');
          const batches = batchesOf(keys);
          tier = await openTiercache({
            prefix: 'w5t',
            redis: { host: config.redis.host, port: config.redis.port },
            memory: false,
            ttl: TTL_MS,
          });
          const cache = tier.cache;
          await cache.mset(keys.map((key, i) => ({ key, value: makeValue(i) })));
          return { kind: 'async', run: (i) => cache.mget(batches[i % BATCHES] as string[]) };
        },
        report: () => (tier ? describeErrors(tier.errors) : undefined),
        teardown: async () => tier?.close(),
      },
      cacheManager('cache-manager mget Keyv-serializer', 'keyv'),
      cacheManager('cache-manager mget JSON', 'json'),
      {
        system: 'BentoCache 100 × get',
        role: 'peer',
        note: 'BentoCache has no multi-get (BentoCache #78): 100 gets in parallel instead, L2 only',
        async setup() {
          const keys = keysFor('BentoCache');
          const batches = batchesOf(keys);
          const bento = openBento(config.redis, { prefix: 'w5b', l1: false, l2: {} });
          closeBento = () => bento.disconnectAll();
          await Promise.all(keys.map((key, i) => bento.set({ key, value: makeValue(i) })));
          return {
            kind: 'async',
            run: (i) => Promise.all((batches[i % BATCHES] as string[]).map((key) => bento.get({ key }))),
          };
        },
        teardown: () => closeBento(),
      },
    ];
    return runThroughput(
      {
        id: 'W5',
        title: this.title,
        description: `One caller reads ${PER_CALL} keys of 1 KB JSON per call; the raw clients send one MGET and JSON.parse each value.`,
        concurrency: 1,
        batch: undefined,
        check: (value) => Array.isArray(value) && value.length === PER_CALL && value.every((v) => isValue(v)),
        rateLabel: `a call reads ${PER_CALL} keys`,
      },
      cases.filter((c) => c.role === 'reference' || select(c.system)),
      config,
    );
  },
};
