import { ConfigurationError, describeValue } from '../errors.js';
import { checkName } from './context.js';
import type { StrategyContext } from './context.js';
import { WriteBehindCounter } from './counter.js';
import type { Counter } from './counter.js';
import { DurableWriteBehindQueue } from './write-behind.js';
import type { WriteBehindQueue } from './write-behind.js';

/** What the dashboard and stats read of the strategies: the registered queues and counters. */
export interface StrategyOverview {
  readonly queues: readonly WriteBehindQueue[];
  readonly counters: readonly Counter[];
}

/**
 * The owner of a cache's write-behind queues and counters (shared by its namespaces): registers them by name, and
 * drains and stops them, bounded, on close().
 */
export class Strategies implements StrategyOverview {
  readonly #ctx: StrategyContext;
  readonly #queues = new Map<string, DurableWriteBehindQueue>();
  readonly #counters = new Map<string, WriteBehindCounter>();

  constructor(ctx: StrategyContext) {
    this.#ctx = ctx;
  }

  queue<T>(name: string, options: unknown): WriteBehindQueue<T> {
    checkName('queue', name);
    if (this.#queues.has(name)) {
      throw new ConfigurationError(`A write-behind queue named ${describeValue(name)} is registered already`);
    }
    const queue = new DurableWriteBehindQueue<T>(this.#ctx, name, options);
    this.#queues.set(name, queue as DurableWriteBehindQueue);
    return queue;
  }

  /** The queue `writeBehind` names, or a ConfigurationError saying it was never registered. */
  queueNamed(name: unknown): DurableWriteBehindQueue {
    const queue = typeof name === 'string' ? this.#queues.get(name) : undefined;
    if (queue === undefined) {
      throw new ConfigurationError(
        `Expected \`queue\` to name a queue registered with writeBehindQueue(), got ${describeValue(name)}`,
      );
    }
    return queue;
  }

  counter(name: string, options: unknown): Counter {
    checkName('counter', name);
    if (this.#counters.has(name)) {
      throw new ConfigurationError(`A counter named ${describeValue(name)} is registered already`);
    }
    const counter = new WriteBehindCounter(this.#ctx, name, options);
    this.#counters.set(name, counter);
    return counter;
  }

  get queues(): readonly WriteBehindQueue[] {
    return [...this.#queues.values()];
  }

  /** Each queue's depth as last seen (no round trip), for `health()` and the metrics. */
  queueDepths(): Record<string, { readonly pending: number }> {
    const out: Record<string, { readonly pending: number }> = {};
    for (const queue of this.#queues.values()) out[queue.name] = { pending: queue.lastStats?.depth ?? 0 };
    return out;
  }

  get counters(): readonly Counter[] {
    return [...this.#counters.values()];
  }

  /** Writes what the queues hold and flushes the counters, all at once, for at most `ms`; then stops them. */
  async close(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    await Promise.allSettled([
      ...[...this.#queues.values()].map((queue) => queue.close(deadline)),
      ...[...this.#counters.values()].map((counter) => counter.close(deadline)),
    ]);
  }
}
