import { counted } from '../observability/channels.js';
import { CacheError, ConnectionError, isOutageError } from '../errors.js';
import type { Counters } from '../observability/stats.js';
import { lockKeyFor } from '../resilience/lock.js';
import type { BackgroundTasks } from '../tasks.js';
import type { RemoteTier } from '../types.js';
import type { Bus } from './bus.js';
import { tagKeyFor } from './tags.js';

/**
 * Invalidations that could not reach Redis (down, or the breaker open), kept to be replayed when it is back, so that
 * no instance goes on serving what was invalidated during the outage. Deduplicated (one entry per key, per tag, per
 * cleared prefix) and bounded: past `max`, the oldest entry is dropped and counted.
 */
export type PendingInvalidation =
  | { readonly kind: 'key'; readonly prefix: string; readonly fullKey: string }
  | { readonly kind: 'tag'; readonly prefix: string; readonly tag: string }
  | { readonly kind: 'clear'; readonly prefix: string };

function identity(item: PendingInvalidation): string {
  switch (item.kind) {
    case 'key':
      return `k\u0000${item.fullKey}`;
    case 'tag':
      return `t\u0000${item.prefix}\u0000${item.tag}`;
    case 'clear':
      return `c\u0000${item.prefix}`;
  }
}

export class ReplayQueue {
  readonly #max: number;
  readonly #items = new Map<string, PendingInvalidation>();
  #dropped = 0;

  constructor(max: number) {
    this.#max = max;
  }

  add(item: PendingInvalidation): void {
    const id = identity(item);
    // Re-inserted at the end: the newest invalidation of a key is the one that must survive a full queue.
    this.#items.delete(id);
    this.#items.set(id, item);
    while (this.#items.size > this.#max) {
      const oldest = this.#items.keys().next().value as string;
      this.#items.delete(oldest);
      this.#dropped++;
    }
  }

  /** A later write of the key reached Redis: its pending delete is moot. */
  forgetKey(fullKey: string): void {
    if (this.#items.size > 0) this.#items.delete(`k\u0000${fullKey}`);
  }

  /** Takes up to `limit` items, oldest first, out of the queue. */
  take(limit: number): PendingInvalidation[] {
    const out: PendingInvalidation[] = [];
    for (const [id, item] of this.#items) {
      if (out.length >= limit) break;
      out.push(item);
      this.#items.delete(id);
    }
    return out;
  }

  get size(): number {
    return this.#items.size;
  }

  get dropped(): number {
    return this.#dropped;
  }
}

export interface ReplayerOptions {
  readonly tier: RemoteTier;
  readonly queue: ReplayQueue;
  readonly bus: Bus;
  readonly counters: Counters;
  readonly tasks: BackgroundTasks;
  readonly isClosing: () => boolean;
}

/**
 * One replayed command. An error about the command itself (a tag key overwritten with another type) would fail every
 * retry alike and hold up every call behind the replay: that one is skipped. Outages are thrown, to retry later.
 */
export async function replayStep(step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (isOutageError(error)) throw error;
  }
}

/**
 * Replays queued invalidations once Redis answers again, oldest first, and stops at the first outage, keeping the
 * rest queued. The remote accessor runs it before any other call (replay-first), so no call reads back what an
 * invalidation made during the outage removed.
 */
export class Replayer {
  readonly #options: ReplayerOptions;
  #running: Promise<CacheError | undefined> | undefined;

  constructor(options: ReplayerOptions) {
    this.#options = options;
  }

  get queue(): ReplayQueue {
    return this.#options.queue;
  }

  /** Whether calls must wait for a replay first. */
  get pending(): boolean {
    return this.#options.queue.size > 0 || this.#running !== undefined;
  }

  /** The run in progress (started if needed); it resolves with the error that stopped it, if any. */
  schedule(): Promise<CacheError | undefined> | undefined {
    if (this.#running !== undefined) return this.#running;
    const { queue, tier, counters, tasks } = this.#options;
    if (queue.size === 0 || this.#options.isClosing()) return undefined;
    const run = (async (): Promise<CacheError | undefined> => {
      while (queue.size > 0 && tier.available) {
        const batch = queue.take(500);
        try {
          await this.#replay(batch);
          counters.replayed += batch.length;
          counted(counters.prefix, 'replayed', batch.length);
        } catch (error) {
          for (const item of batch) queue.add(item);
          return error instanceof CacheError ? error : new ConnectionError(String(error), { cause: error });
        }
      }
      return undefined;
    })().finally(() => {
      this.#running = undefined;
    });
    this.#running = run;
    tasks.track(run);
    return run;
  }

  async #replay(batch: readonly PendingInvalidation[]): Promise<void> {
    const { tier, bus } = this.#options;
    const keys: { prefix: string; fullKey: string }[] = [];
    for (const item of batch) {
      if (item.kind === 'key') keys.push(item);
      else if (item.kind === 'tag') {
        await replayStep(() =>
          tier.invalidateTags([tagKeyFor(item.prefix, item.tag)], (member) => lockKeyFor(item.prefix, member)),
        );
        await bus.publish({ kind: 'tags', from: bus.instanceId, prefix: item.prefix, tags: [item.tag] });
      } else {
        await replayStep(() => tier.deleteByPrefix(item.prefix));
        await bus.publish({ kind: 'clear', from: bus.instanceId, prefix: item.prefix });
      }
    }
    if (keys.length === 0) return;
    await replayStep(() =>
      tier.deleteMany(
        keys.map((k) => k.fullKey),
        keys.map((k) => lockKeyFor(k.prefix, k.fullKey)),
      ),
    );
    // Published even with tracking on: instances that kept copies through the outage must hear of these now.
    await bus.publishKeys(
      keys.map((k) => k.fullKey),
      true,
    );
  }
}
