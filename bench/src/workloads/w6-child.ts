/**
 * One process of the W6 cross-process stampede. The parent sends `open`, then `round`s, then `close`; every loader
 * call does INCR on a counter key in the bench Redis, so the parent counts loads across all processes.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { CacheOptions } from 'tiercache';
import { sleep } from '../harness.js';
import type { RedisAddress } from '../harness.js';
import { TTL_MS, openBento, openCacheManager, openTiercache } from '../systems.js';
import { isValue, makeValue } from '../value.js';

/** Every request carries a sequence number and its reply echoes it, so a late reply is never taken for the next one. */
export type ParentMessage = { readonly seq: number } & (
  | { readonly type: 'open'; readonly system: string; readonly redis: RedisAddress }
  | {
      readonly type: 'round';
      readonly key: string;
      readonly counterKey: string;
      readonly callers: number;
      readonly loaderMs: number;
      readonly id: number;
    }
  | { readonly type: 'close' }
);

export type ChildMessage = { readonly seq: number } & (
  | { readonly type: 'opened'; readonly note: string }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'result'; readonly latencies: number[]; readonly failures: number; readonly firstError?: string }
  | { readonly type: 'closed' }
);

/** A ChildMessage before its sequence number is attached. */
type Reply = ChildMessage extends infer M ? (M extends ChildMessage ? Omit<M, 'seq'> : never) : never;

/**
 * What W6 asks of tiercache's distributed lock, tried in order until createCache accepts one; without a `lock`
 * option tiercache has per-process single-flight only. Update here when the lock's option shape settles.
 */
export const TIERCACHE_LOCK_CANDIDATES: readonly CacheOptions[] = [
  { lock: { ttlMs: 5000, waitMs: 3000 } } as unknown as CacheOptions,
];

type GetOrSet = (key: string, loader: () => Promise<unknown>) => Promise<unknown>;

async function open(
  system: string,
  redis: RedisAddress,
): Promise<{ getOrSet: GetOrSet; close: () => Promise<void>; note: string }> {
  const base = { host: redis.host, port: redis.port };
  if (system === 'tiercache') {
    const rejected: string[] = [];
    for (const candidate of TIERCACHE_LOCK_CANDIDATES) {
      try {
        const opened = await openTiercache({ prefix: 'w6t', redis: base, ttl: TTL_MS, ...candidate });
        return {
          getOrSet: (key, loader) => opened.cache.getOrSet(key, loader),
          close: opened.close,
          note: `distributed lock: ${JSON.stringify(candidate)}`,
        };
      } catch (error) {
        rejected.push(error instanceof Error ? error.message : String(error));
      }
    }
    const opened = await openTiercache({ prefix: 'w6t', redis: base, ttl: TTL_MS });
    return {
      getOrSet: (key, loader) => opened.cache.getOrSet(key, loader),
      close: opened.close,
      note: `no distributed lock yet (per-process single-flight only): createCache rejected \`lock\`: ${rejected[0] ?? ''}`,
    };
  }
  if (system === 'BentoCache L1+L2') {
    const bento = openBento(redis, { prefix: 'w6b', l1: { serialize: true }, l2: {} });
    return {
      getOrSet: (key, factory) => bento.getOrSet({ key, factory }),
      close: () => bento.disconnectAll(),
      note: 'no distributed lock (BentoCache #2)',
    };
  }
  if (system === 'cache-manager L1+L2') {
    const opened = openCacheManager(redis, { namespace: 'w6c', serializer: 'keyv', memory: true, redis: true });
    return {
      getOrSet: (key, loader) => opened.cache.wrap(key, loader, TTL_MS),
      close: opened.close,
      note: 'no distributed lock (cacheable #1201)',
    };
  }
  throw new Error(`unknown W6 system ${system}`);
}

let seq = -1;

function send(message: Reply): void {
  process.send?.({ ...message, seq });
}

let current: Awaited<ReturnType<typeof open>> | undefined;
let counter: Redis | undefined;

process.on('message', (raw: unknown) => {
  const message = raw as ParentMessage;
  seq = message.seq;
  void (async () => {
    try {
      if (message.type === 'open') {
        counter ??= new Redis({ host: message.redis.host, port: message.redis.port });
        current = await open(message.system, message.redis);
        send({ type: 'opened', note: current.note });
      } else if (message.type === 'round') {
        if (current === undefined || counter === undefined) throw new Error('round before open');
        const { getOrSet } = current;
        const redis = counter;
        const loader = async (): Promise<unknown> => {
          await redis.incr(message.counterKey);
          await sleep(message.loaderMs);
          return makeValue(message.id);
        };
        const latencies: number[] = [];
        let failures = 0;
        let firstError: string | undefined;
        await Promise.all(
          Array.from({ length: message.callers }, async () => {
            const t0 = performance.now();
            try {
              const value = await getOrSet(message.key, loader);
              if (!isValue(value, message.id)) failures++;
            } catch (error) {
              failures++;
              firstError ??= error instanceof Error ? error.message : String(error);
            }
            latencies.push(performance.now() - t0);
          }),
        );
        send({ type: 'result', latencies, failures, ...(firstError ? { firstError } : {}) });
      } else if (message.type === 'close') {
        await current?.close();
        current = undefined;
        send({ type: 'closed' });
      }
    } catch (error) {
      send({ type: 'failed', error: error instanceof Error ? error.message : String(error) });
    }
  })();
});

process.on('disconnect', () => {
  counter?.disconnect();
  process.exit(0);
});
