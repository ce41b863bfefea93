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
import { makeValue } from '../value.js';
import type { BenchValue } from '../value.js';

const KEYS = 1024;
const CONCURRENCY = 64;
const SYSTEMS = [
  'ioredis',
  'ioredis A/A',
  'ioredis auto-pipelining',
  'node-redis',
  'tiercache L1 off',
  'tiercache L1 off auto-pipelining',
  'tiercache L1+L2',
  'BentoCache L2 only',
  'BentoCache L1+L2',
  'cache-manager Keyv-serializer',
  'cache-manager JSON',
];

export const w3: Workload = {
  id: 'W3',
  title: `Redis set, ${CONCURRENCY} callers in flight`,
  systems: SYSTEMS,
  run(config, select) {
    const values: BenchValue[] = Array.from({ length: KEYS }, (_, i) => makeValue(i));
    const keysFor = (system: string): string[] => keyList(`w3:${system.replace(/\W+/g, '-')}:`, KEYS);
    const item = (i: number): BenchValue => values[i & (KEYS - 1)] as BenchValue;
    const key = (keys: readonly string[], i: number): string => keys[i & (KEYS - 1)] as string;

    const ioredis = (system: string, role: ThroughputCase['role'], autoPipelining: boolean): ThroughputCase => {
      const keys = keysFor(system);
      let close = async (): Promise<void> => {};
      return {
        system,
        role,
        async setup() {
          const client = await openIoredis(config.redis, { enableAutoPipelining: autoPipelining });
          close = () => closeIoredis(client);
          return { kind: 'async', run: (i) => client.set(key(keys, i), JSON.stringify(item(i)), 'PX', TTL_MS) };
        },
        teardown: () => close(),
      };
    };

    const tiercache = (system: string, memory: boolean, autoPipelining: boolean): ThroughputCase => {
      const keys = keysFor(system);
      let opened: OpenTiercache | undefined;
      return {
        system,
        role: 'subject',
        async setup() {
          opened = await openTiercache({
            prefix: `w3t${memory ? 'm' : ''}${autoPipelining ? 'p' : ''}`,
            redis: { host: config.redis.host, port: config.redis.port, enableAutoPipelining: autoPipelining },
            ...(memory ? {} : { memory: false as const }),
            ttl: TTL_MS,
          });
          const cache = opened.cache;
          return { kind: 'async', run: (i) => cache.set(key(keys, i), item(i)) };
        },
        report: () => (opened ? describeErrors(opened.errors) : undefined),
        teardown: async () => opened?.close(),
      };
    };

    const bento = (system: string, memory: boolean): ThroughputCase => {
      const keys = keysFor(system);
      let close = async (): Promise<void> => {};
      return {
        system,
        role: 'peer',
        async setup() {
          const cache = openBento(config.redis, {
            prefix: `w3b${memory ? 'm' : ''}`,
            l1: memory ? { serialize: true } : false,
            l2: {},
          });
          close = () => cache.disconnectAll();
          return { kind: 'async', run: (i) => cache.set({ key: key(keys, i), value: item(i) }) };
        },
        teardown: () => close(),
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
            namespace: `w3${serializer}`,
            serializer,
            memory: false,
            redis: true,
          });
          close = opened.close;
          const cache = opened.cache;
          return { kind: 'async', run: (i) => cache.set(key(keys, i), item(i)) };
        },
        teardown: () => close(),
      };
    };

    const nodeRedisKeys = keysFor('node-redis');
    let closeNode = async (): Promise<void> => {};
    const cases: ThroughputCase[] = [
      ioredis('ioredis', 'reference', false),
      ioredis('ioredis A/A', 'control', false),
      ioredis('ioredis auto-pipelining', 'raw', true),
      {
        system: 'node-redis',
        role: 'raw',
        note: 'commandOptions: { timeout: 0 }',
        async setup() {
          const client = await openNodeRedis(config.redis);
          closeNode = () => closeNodeRedis(client);
          return {
            kind: 'async',
            run: (i) => client.set(key(nodeRedisKeys, i), JSON.stringify(item(i)), { PX: TTL_MS }),
          };
        },
        teardown: () => closeNode(),
      },
      tiercache('tiercache L1 off', false, false),
      tiercache('tiercache L1 off auto-pipelining', false, true),
      tiercache('tiercache L1+L2', true, false),
      bento('BentoCache L2 only', false),
      bento('BentoCache L1+L2', true),
      cacheManager('cache-manager Keyv-serializer', 'keyv'),
      cacheManager('cache-manager JSON', 'json'),
    ];
    return runThroughput(
      {
        id: 'W3',
        title: this.title,
        description: `${CONCURRENCY} concurrent callers write 1 KB JSON values over ${KEYS} keys with a TTL (raw clients: SET … PX after JSON.stringify).`,
        concurrency: CONCURRENCY,
        batch: undefined,
        // A write has no value to check; a rejected write is counted as a failure by the harness.
        check: () => true,
      },
      cases.filter((c) => c.role === 'reference' || select(c.system)),
      config,
    );
  },
};
