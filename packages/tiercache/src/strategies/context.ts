/** What the write strategies share: the way to Redis (or a local store without it), time, naming and reporting. */
import { ConfigurationError, describeValue } from '../errors.js';
import type { CacheError } from '../errors.js';
import { InMemoryStrategyStore } from '../tiers/memory-strategies.js';
import { toCacheError } from '../tiers/errors.js';
import type { RemoteAccessor, RemoteOutcome } from '../tiers/remote-accessor.js';
import type { Clock, RemoteCounters, RemoteStreams } from '../types.js';

export type StrategyStore = RemoteStreams & RemoteCounters;

/** A store the strategies call: Redis through the remote accessor, or one in process memory. Never throws. */
export interface StoreRunner {
  /** Whether what it stores outlives this process (Redis) or not (memory). */
  readonly durable: boolean;
  run<T>(key: string | undefined, fn: (store: StrategyStore) => Promise<T>): Promise<RemoteOutcome<T>>;
}

export interface StrategyContext {
  /** Redis, when configured and its tier can store queues and counters. */
  readonly remote: StoreRunner | undefined;
  readonly clock: Clock;
  /** The root prefix, ending in `:`. */
  readonly rootPrefix: string;
  /** This instance's consumer name in the queues' consumer groups. */
  readonly instanceId: string;
  /** Reports a failure the strategies absorbed (a background flush or write that failed), as the cache does. */
  readonly report: (operation: 'set', key: string | undefined, error: CacheError) => void;
}

/** The remote accessor as a store runner, or undefined when the tier has no strategy storage. */
export function remoteRunner(accessor: RemoteAccessor | undefined): StoreRunner | undefined {
  const tier = accessor?.tier;
  if (accessor === undefined || tier?.streams === undefined || tier.counters === undefined) return undefined;
  const streams = tier.streams;
  const counters = tier.counters;
  const both: StrategyStore =
    (streams as unknown) === counters
      ? (streams as StrategyStore)
      : {
          enqueue: streams.enqueue.bind(streams),
          take: streams.take.bind(streams),
          live: streams.live.bind(streams),
          done: streams.done.bind(streams),
          bury: streams.bury.bind(streams),
          info: streams.info.bind(streams),
          deadLetters: streams.deadLetters.bind(streams),
          revive: streams.revive.bind(streams),
          incr: counters.incr.bind(counters),
          total: counters.total.bind(counters),
          takeBatch: counters.takeBatch.bind(counters),
          commitBatch: counters.commitBatch.bind(counters),
          unflushed: counters.unflushed.bind(counters),
        };
  return { durable: true, run: (key, fn) => accessor.run('set', key, () => fn(both)) };
}

/** A store in process memory (no Redis, or Redis down): same semantics, lost with the process. */
export function localRunner(clock: Clock): StoreRunner {
  const store = new InMemoryStrategyStore(clock, () => undefined);
  return {
    durable: false,
    async run<T>(key: string | undefined, fn: (s: StrategyStore) => Promise<T>): Promise<RemoteOutcome<T>> {
      try {
        return { ok: true, value: await fn(store) };
      } catch (error) {
        return { ok: false, error: toCacheError(error, key) };
      }
    },
  };
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A queue or counter name: 1–64 letters, digits, `_`, `.` or `-` (it becomes part of Redis keys and a hash tag). */
export function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ConfigurationError(
      `Expected the ${what} name to be 1–64 letters, digits, '_', '.' or '-', got ${describeValue(name)}`,
    );
  }
  return name;
}

/**
 * Where a strategy's Redis keys live: beside the prefix (`app!wb:{orders}:s` for the prefix `app:`), not under it,
 * so that `clear()` never drops writes or counts not yet flushed; one hash tag per queue or counter, so every script
 * touches one slot on a cluster.
 */
export function strategyKey(rootPrefix: string, kind: 'wb' | 'ctr', name: string, part: string): string {
  return `${rootPrefix.slice(0, -1)}!${kind}:{${name}}:${part}`;
}

export function checkFunction(name: string, value: unknown): void {
  if (typeof value !== 'function') {
    throw new ConfigurationError(`Expected \`${name}\` to be a function, got ${describeValue(value)}`);
  }
}

export function checkOptionsObject(value: unknown): void {
  if (typeof value !== 'object' || value === null) {
    throw new ConfigurationError(`Expected the options argument to be an object, got ${describeValue(value)}`);
  }
}

/** A timer that keeps no process alive. */
export function unrefTimer(fn: () => void, ms: number, repeat: boolean): NodeJS.Timeout {
  const timer = repeat ? setInterval(fn, ms) : setTimeout(fn, ms);
  timer.unref();
  return timer;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => unrefTimer(resolve, Math.max(0, ms), false));
