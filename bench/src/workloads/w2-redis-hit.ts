import { keyList, runThroughput } from '../harness.js';
import type { BenchConfig, ThroughputCase, Workload } from '../harness.js';
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

export function parsed(raw: string | null): unknown {
  return raw === null ? undefined : JSON.parse(raw);
}

/** The Redis-hit cases: every system reads keys it wrote itself, and every read ends in a parsed object. */
export function redisReadCases(config: BenchConfig, tag: string): ThroughputCase[] {
  const keysFor = (system: string): string[] => keyList(`${tag}:${system.replace(/\W+/g, '-')}:`, KEYS);
  const at = (keys: readonly string[], i: number): string => keys[i & (KEYS - 1)] as string;

  const ioredis = (system: string, role: ThroughputCase['role'], autoPipelining: boolean): ThroughputCase => {
    const keys = keysFor(system);
    let close = async (): Promise<void> => {};
    return {
      system,
      role,
      async setup() {
        const client = await openIoredis(config.redis, { enableAutoPipelining: autoPipelining });
        close = () => closeIoredis(client);
        const pipeline = client.pipeline();
        keys.forEach((key, i) => pipeline.set(key, JSON.stringify(makeValue(i)), 'PX', TTL_MS));
        await pipeline.exec();
        return { kind: 'async', run: async (i) => parsed(await client.get(at(keys, i))) };
      },
      teardown: () => close(),
    };
  };

  const tiercache = (system: string, autoPipelining: boolean): ThroughputCase => {
    const keys = keysFor(system);
    let opened: OpenTiercache | undefined;
    return {
      system,
      role: 'subject',
      ...(autoPipelining
        ? { note: 'redis: { host, port, enableAutoPipelining: true } passed through to ioredis' }
        : {}),
      async setup() {
        opened = await openTiercache({
          prefix: `${tag}t${autoPipelining ? 'p' : ''}`,
          redis: { host: config.redis.host, port: config.redis.port, enableAutoPipelining: autoPipelining },
          memory: false,
          ttl: TTL_MS,
        });
        const cache = opened.cache;
        await cache.mset(keys.map((key, i) => ({ key, value: makeValue(i) })));
        return { kind: 'async', run: (i) => cache.get(at(keys, i)) };
      },
      report: () => (opened ? describeErrors(opened.errors) : undefined),
      teardown: async () => opened?.close(),
    };
  };

  const cacheManager = (system: string, serializer: 'keyv' | 'json'): ThroughputCase => {
    const keys = keysFor(system);
    let close = async (): Promise<void> => {};
    return {
      system,
      role: 'peer',
      async setup() {
        const opened = openCacheManager(config.redis, {
          namespace: `${tag}${serializer}`,
          serializer,
          memory: false,
          redis: true,
        });
        close = opened.close;
        const cache = opened.cache;
        await cache.mset(keys.map((key, i) => ({ key, value: makeValue(i) })));
        return { kind: 'async', run: (i) => cache.get(at(keys, i)) };
      },
      teardown: () => close(),
    };
  };

  return [
    ioredis('ioredis', 'reference', false),
    ioredis('ioredis A/A', 'control', false),
    ioredis('ioredis auto-pipelining', 'raw', true),
    (() => {
      const keys = keysFor('node-redis');
      let close = async (): Promise<void> => {};
      return {
        system: 'node-redis',
        role: 'raw',
        note: 'commandOptions: { timeout: 0 }',
        async setup() {
          const client = await openNodeRedis(config.redis);
          close = () => closeNodeRedis(client);
          await Promise.all(keys.map((key, i) => client.set(key, JSON.stringify(makeValue(i)), { PX: TTL_MS })));
          return { kind: 'async', run: async (i: number) => parsed(await client.get(at(keys, i))) };
        },
        teardown: () => close(),
      } satisfies ThroughputCase;
    })(),
    tiercache('tiercache L1 off', false),
    tiercache('tiercache L1 off auto-pipelining', true),
    (() => {
      const keys = keysFor('BentoCache');
      let close = async (): Promise<void> => {};
      return {
        system: 'BentoCache L2 only',
        role: 'peer',
        async setup() {
          const bento = openBento(config.redis, { prefix: `${tag}b`, l1: false, l2: {} });
          close = () => bento.disconnectAll();
          await Promise.all(keys.map((key, i) => bento.set({ key, value: makeValue(i) })));
          return { kind: 'async', run: (i: number) => bento.get({ key: at(keys, i) }) };
        },
        teardown: () => close(),
      } satisfies ThroughputCase;
    })(),
    cacheManager('cache-manager Keyv-serializer', 'keyv'),
    cacheManager('cache-manager JSON', 'json'),
  ];
}

export const REDIS_READ_SYSTEMS = [
  'ioredis',
  'ioredis A/A',
  'ioredis auto-pipelining',
  'node-redis',
  'tiercache L1 off',
  'tiercache L1 off auto-pipelining',
  'BentoCache L2 only',
  'cache-manager Keyv-serializer',
  'cache-manager JSON',
];

function redisHit(concurrency: number): Workload {
  const id = `W2-${concurrency}`;
  return {
    id,
    title: `Redis hit, L1 off, ${concurrency} caller${concurrency === 1 ? '' : 's'} in flight`,
    systems: REDIS_READ_SYSTEMS,
    run(config, select) {
      return runThroughput(
        {
          id,
          title: this.title,
          description: `${KEYS} keys of 1 KB JSON in Redis read in turn by ${concurrency} concurrent caller${concurrency === 1 ? '' : 's'}; the raw clients JSON.parse every reply.`,
          concurrency,
          batch: undefined,
          check: (value) => isValue(value),
        },
        redisReadCases(config, `w2c${concurrency}`).filter((c) => c.role === 'reference' || select(c.system)),
        config,
      );
    },
  };
}

export const w2 = redisHit(1);
export const w2x64 = redisHit(64);
