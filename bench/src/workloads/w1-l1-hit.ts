import { LRUCache } from 'lru-cache';
import { compileBatch, keyList, runThroughput } from '../harness.js';
import type { BenchConfig, ThroughputCase, Workload } from '../harness.js';
import { TTL_MS, openBento, openCacheManager, openTiercache } from '../systems.js';
import { isValue, makeValue } from '../value.js';
import type { BenchValue } from '../value.js';

const KEYS = 1024;
const BATCH = 1000;

/** A case whose store is filled once and read through a compiled loop. */
function memoryCase(
  system: string,
  role: ThroughputCase['role'],
  kind: 'sync' | 'async',
  open: (keys: readonly string[]) => Promise<{ get: (key: string) => unknown; close?: () => Promise<void> }>,
  note?: string,
): ThroughputCase {
  const keys = keyList(`w1:${system.replace(/\W+/g, '-')}:`, KEYS);
  let close: (() => Promise<void>) | undefined;
  return {
    system,
    role,
    ...(note ? { note } : {}),
    async setup() {
      const opened = await open(keys);
      close = opened.close;
      const get = opened.get;
      return { kind, run: (i: number) => get(keys[i & (KEYS - 1)] as string), batch: compileBatch(kind, get, keys) };
    },
    teardown: async () => close?.(),
  };
}

function lruCase(system: string, role: ThroughputCase['role']): ThroughputCase {
  return memoryCase(system, role, 'sync', async (keys) => {
    const lru = new LRUCache<string, BenchValue>({ max: 10_000 });
    keys.forEach((key, i) => lru.set(key, makeValue(i)));
    return { get: (key) => lru.get(key) };
  });
}

export const w1: Workload = {
  id: 'W1',
  title: 'L1 hit: get of a present key from the in-process tier',
  systems: [
    'Map',
    'lru-cache',
    'lru-cache A/A',
    'tiercache',
    'BentoCache L1',
    'BentoCache L1 serialize:false',
    'cache-manager Keyv-serializer',
    'cache-manager JSON',
  ],
  run(config: BenchConfig, select: (system: string) => boolean) {
    const cases: ThroughputCase[] = [
      memoryCase('Map', 'raw', 'sync', async (keys) => {
        const map = new Map<string, BenchValue>();
        keys.forEach((key, i) => map.set(key, makeValue(i)));
        return { get: (key) => map.get(key) };
      }),
      lruCase('lru-cache', 'reference'),
      lruCase('lru-cache A/A', 'control'),
      memoryCase('tiercache', 'subject', 'async', async (keys) => {
        const opened = await openTiercache({ prefix: 'w1', memory: { maxEntries: 10_000 }, ttl: TTL_MS });
        await Promise.all(keys.map((key, i) => opened.cache.set(key, makeValue(i))));
        const cache = opened.cache;
        return { get: (key) => cache.get(key), close: opened.close };
      }),
      ...[true, false].map((serialize) =>
        memoryCase(
          serialize ? 'BentoCache L1' : 'BentoCache L1 serialize:false',
          'peer',
          'async',
          async (keys) => {
            const bento = openBento(config.redis, { prefix: 'w1', l1: { serialize }, l2: false });
            await Promise.all(keys.map((key, i) => bento.set({ key, value: makeValue(i) })));
            return { get: (key) => bento.get({ key }), close: () => bento.disconnectAll() };
          },
          serialize ? 'default: the memory tier stores serialized strings' : undefined,
        ),
      ),
      ...(['keyv', 'json'] as const).map((serializer) =>
        memoryCase(
          serializer === 'keyv' ? 'cache-manager Keyv-serializer' : 'cache-manager JSON',
          'peer',
          'async',
          async (keys) => {
            const opened = openCacheManager(config.redis, {
              namespace: 'w1',
              serializer,
              memory: true,
              redis: false,
            });
            await Promise.all(keys.map((key, i) => opened.cache.set(key, makeValue(i))));
            const cache = opened.cache;
            return { get: (key) => cache.get(key), close: opened.close };
          },
          'Keyv in-memory store (a Map), which serializes every entry',
        ),
      ),
    ];
    return runThroughput(
      {
        id: 'W1',
        title: this.title,
        description: `${KEYS} present keys of 1 KB JSON values read in turn by one caller; async APIs are awaited per get.`,
        concurrency: 1,
        batch: BATCH,
        check: (value) => isValue(value),
      },
      cases.filter((c) => c.role === 'reference' || select(c.system)),
      config,
    );
  },
};
