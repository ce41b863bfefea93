import { createEntry, decodeEntry, encodeEntry } from '../entry.js';
import { CacheError, ConnectionError, describeValue, ConfigurationError } from '../errors.js';
import { positiveInteger, toMs } from '../options.js';
import type { Duration, QueueKeys, QueueRecord } from '../types.js';
import { checkName, localRunner, sleep, strategyKey, unrefTimer } from './context.js';
import type { StoreRunner, StrategyContext } from './context.js';
import { resolveQueueOptions } from './write-behind-options.js';
import type { DeadLetter, Resolved, WriteBehindQueue, WriteBehindQueueStats } from './write-behind-options.js';

export { WRITE_BEHIND_DEFAULTS, resolveQueueOptions } from './write-behind-options.js';
export type {
  DeadLetter,
  WriteBehindItem,
  WriteBehindQueue,
  WriteBehindQueueOptions,
  WriteBehindQueueStats,
} from './write-behind-options.js';

/** One origin write of a batch: the key, its latest value, and its queue id (ordered: a later id is a later write). */
/** Rounds one pump runs at most before it yields to the next timer tick. */
const MAX_ROUNDS = 1_000;

interface Held {
  readonly store: StoreRunner;
  records: QueueRecord[];
  attempts: number;
  nextAt: number;
  /** Split into single records after its attempts ran out: the next failure buries. */
  readonly single: boolean;
}

const timeOfId = (id: string): number => Number(id.split('-')[0]);

/**
 * A durable write-behind queue: records in a Redis Stream read through a consumer group (any instance takes over
 * what a dead one left unacked after `claimIdle`), latest value per key (an older record of a key is acked unwritten),
 * written in batches, retried with backoff, dead-lettered after `maxAttempts`. Without Redis, or while it is
 * unreachable, records are kept in process memory, bounded, and written from there.
 */
export class DurableWriteBehindQueue<T = unknown> implements WriteBehindQueue<T> {
  readonly name: string;
  readonly #o: Resolved<T>;
  readonly #ctx: StrategyContext;
  readonly #keys: QueueKeys;
  readonly #remote: StoreRunner | undefined;
  readonly #local: StoreRunner;
  #localDepth = 0;
  readonly #held: Held[] = [];
  readonly #timer: NodeJS.Timeout;
  #retryTimer: NodeJS.Timeout | undefined;
  #pumping: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #lastStats: WriteBehindQueueStats | undefined;
  #written = 0;
  #failures = 0;

  constructor(ctx: StrategyContext, name: string, options: unknown) {
    this.name = checkName('queue', name);
    this.#o = resolveQueueOptions<T>(options);
    this.#ctx = ctx;
    const key = (part: string): string => strategyKey(ctx.rootPrefix, 'wb', name, part);
    this.#keys = { stream: key('stream'), latest: key('latest'), dead: key('dead'), group: 'tiercache' };
    this.#remote = ctx.remote;
    this.#local = localRunner(ctx.clock);
    this.#timer = unrefTimer(() => this.#kick(), this.#o.flushInterval, true);
    this.#kick();
  }

  /** Queues the origin write of `key`; resolves once it is in Redis (or, without Redis, in process memory). */
  async enqueue(key: string, value: unknown): Promise<void> {
    if (this.#closed) throw new ConnectionError(`The write-behind queue '${this.name}' is closed`, { key });
    const encoded = encodeEntry(createEntry(value, this.#ctx.clock.now(), 1, 0, []));
    const remote = this.#remote;
    const queued = remote === undefined ? undefined : await remote.run(key, (s) => s.enqueue(this.#keys, key, encoded));
    if (queued === undefined || !queued.ok) {
      if (this.#localDepth >= this.#o.maxQueued) {
        throw new ConnectionError(
          `The write-behind queue '${this.name}' keeps ${this.#o.maxQueued} records in memory already (Redis unreachable)`,
          { key },
        );
      }
      await this.#local.run(key, (s) => s.enqueue(this.#keys, key, encoded));
      this.#localDepth++;
    }
    this.#kick();
  }

  /** Starts a pump unless one runs (then it runs once more after it). */
  #kick(): void {
    if (this.#closed && this.#pumping === undefined) return;
    if (this.#pumping !== undefined) {
      this.#again = true;
      return;
    }
    this.#pumping = (async () => {
      try {
        do {
          this.#again = false;
          await this.#pump();
        } while (this.#again && !this.#closed);
      } catch (error) {
        this.#ctx.report('set', undefined, asCacheError(error, this.name));
      } finally {
        this.#pumping = undefined;
      }
    })();
  }

  /** Writes batches until there is nothing to write now (retries waiting for their backoff excepted). */
  async #pump(): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) if (!(await this.#round())) return;
  }

  /** One batch: a held one whose backoff is over, else a new one (memory first, then Redis). False: nothing to do. */
  async #round(): Promise<boolean> {
    const now = this.#ctx.clock.now();
    const due = this.#held.find((h) => h.nextAt <= now);
    if (due !== undefined) {
      await this.#attempt(due);
      return true;
    }
    for (const store of this.#stores()) {
      if (this.#held.some((h) => h.store === store)) continue;
      const taken = await store.run(undefined, (s) =>
        s.take(this.#keys, this.#ctx.instanceId, this.#o.batchSize, this.#o.claimIdle),
      );
      if (!taken.ok || taken.value.length === 0) continue;
      const superseded = taken.value.filter((r) => !r.live);
      if (superseded.length > 0) await store.run(undefined, (s) => s.done(this.#keys, superseded));
      if (store === this.#local) this.#localDepth = Math.max(0, this.#localDepth - superseded.length);
      const live = taken.value.filter((r) => r.live).map(({ id, key, value }) => ({ id, key, value }));
      if (live.length > 0) {
        const held: Held = { store, records: live, attempts: 0, nextAt: now, single: false };
        this.#held.push(held);
        await this.#attempt(held);
      }
      return true;
    }
    this.#armRetry();
    return false;
  }

  #stores(): StoreRunner[] {
    return this.#remote === undefined ? [this.#local] : [this.#local, this.#remote];
  }

  async #attempt(held: Held): Promise<void> {
    const { store } = held;
    if (held.attempts > 0) {
      // Another instance may have written a newer value of a key since: drop what is no longer the latest.
      const live = await store.run(undefined, (s) => s.live(this.#keys, held.records));
      if (!live.ok) {
        held.nextAt = this.#ctx.clock.now() + this.#o.backoff(held.attempts);
        return;
      }
      const stale = held.records.filter((_, i) => live.value[i] !== true);
      if (stale.length > 0) await this.#finish(held, stale);
      held.records = held.records.filter((_, i) => live.value[i] === true);
      if (held.records.length === 0) return this.#drop(held);
    }
    const items = held.records.map((r) => ({ key: r.key, value: decodeEntry(r.value).value as T, id: r.id }));
    try {
      await this.#o.write(items);
    } catch (error) {
      this.#failures++;
      await this.#failed(held, error);
      return;
    }
    this.#written += held.records.length;
    await this.#finish(held, held.records);
    this.#drop(held);
  }

  async #failed(held: Held, error: unknown): Promise<void> {
    held.attempts++;
    if (!held.single && held.attempts < this.#o.maxAttempts) {
      held.nextAt = this.#ctx.clock.now() + this.#o.backoff(held.attempts);
      return;
    }
    this.#drop(held);
    if (!held.single && held.records.length > 1) {
      // A batch ran out of attempts: each record gets one more try alone, so one poison record buries only itself.
      const nextAt = this.#ctx.clock.now() + this.#o.backoff(held.attempts);
      for (const record of held.records) {
        this.#held.push({ store: held.store, records: [record], attempts: held.attempts, nextAt, single: true });
      }
      return;
    }
    const reason = (error instanceof Error ? error.message : String(error)).slice(0, 1024);
    const records = held.records;
    this.#ctx.report('set', records[0]?.key, asCacheError(error, this.name));
    const buried = await held.store.run(undefined, (s) => s.bury(this.#keys, records, reason, this.#o.maxDeadLetters));
    if (buried.ok && held.store === this.#local) this.#localDepth = Math.max(0, this.#localDepth - records.length);
  }

  async #finish(held: Held, records: readonly QueueRecord[]): Promise<void> {
    const done = await held.store.run(undefined, (s) => s.done(this.#keys, records));
    if (held.store === this.#local) this.#localDepth = Math.max(0, this.#localDepth - records.length);
    // Not acked (Redis down): the records are written again after a claim; the writer sees them twice, never zero.
    void done;
  }

  #drop(held: Held): void {
    const index = this.#held.indexOf(held);
    if (index >= 0) this.#held.splice(index, 1);
  }

  /** Wakes the pump when the earliest held batch is due. */
  #armRetry(): void {
    if (this.#held.length === 0 || this.#retryTimer !== undefined || this.#closed) return;
    const next = Math.min(...this.#held.map((h) => h.nextAt));
    this.#retryTimer = unrefTimer(
      () => {
        this.#retryTimer = undefined;
        this.#kick();
      },
      Math.max(1, next - this.#ctx.clock.now()),
      false,
    );
  }

  get lastStats(): WriteBehindQueueStats | undefined {
    return this.#lastStats;
  }

  async stats(): Promise<WriteBehindQueueStats> {
    const now = this.#ctx.clock.now();
    let depth = 0;
    let oldest = Number.POSITIVE_INFINITY;
    let deadLetters = 0;
    for (const store of this.#stores()) {
      const info = await store.run(undefined, (s) => s.info(this.#keys));
      if (!info.ok) continue;
      depth += info.value.depth;
      deadLetters += info.value.deadLetters;
      if (info.value.oldestId !== undefined) oldest = Math.min(oldest, timeOfId(info.value.oldestId));
    }
    this.#lastStats = {
      depth,
      lagMs: Number.isFinite(oldest) ? Math.max(0, now - oldest) : 0,
      deadLetters,
      written: this.#written,
      failures: this.#failures,
      retrying: this.#held.reduce((n, h) => n + h.records.length, 0),
      durable: this.#remote !== undefined,
    };
    return this.#lastStats;
  }

  async deadLetters(limit = 100): Promise<DeadLetter<T>[]> {
    positiveInteger('limit', limit, 10_000);
    const out: DeadLetter<T>[] = [];
    for (const store of this.#stores()) {
      const found = await store.run(undefined, (s) => s.deadLetters(this.#keys, limit - out.length));
      if (!found.ok) continue;
      for (const letter of found.value) {
        out.push({
          id: letter.id,
          key: letter.key,
          value: decodeEntry(letter.value).value as T,
          reason: letter.reason,
        });
      }
    }
    return out;
  }

  async replay(ids?: readonly string[]): Promise<number> {
    if (ids !== undefined && (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string'))) {
      throw new ConfigurationError(`Expected \`ids\` to be an array of dead-letter ids, got ${describeValue(ids)}`);
    }
    let n = 0;
    for (const store of this.#stores()) {
      let wanted: readonly string[] = ids ?? [];
      if (ids === undefined) {
        const letters = await store.run(undefined, (s) => s.deadLetters(this.#keys, 1_000));
        wanted = letters.ok ? letters.value.map((l) => l.id) : [];
      }
      const revived = await store.run(undefined, (s) => s.revive(this.#keys, wanted));
      if (revived.ok) {
        n += revived.value;
        if (store === this.#local) this.#localDepth += revived.value;
      }
    }
    this.#kick();
    return n;
  }

  async flush(timeout: Duration = '10s'): Promise<void> {
    await this.#drain(Date.now() + toMs('timeout', timeout));
  }

  /** Pumps until nothing is queued or held, or the deadline; a held batch is retried at once, backoff or not. */
  async #drain(deadline: number): Promise<void> {
    while (Date.now() <= deadline) {
      while (this.#pumping !== undefined) await this.#pumping;
      for (const held of this.#held) held.nextAt = Math.min(held.nextAt, this.#ctx.clock.now());
      const stats = await this.stats();
      if (stats.depth === 0 && this.#held.length === 0) return;
      this.#kick();
      if (this.#pumping !== undefined) await this.#pumping;
      // Records held for a retry, or read by another instance and not claimable yet: look again shortly.
      await sleep(Math.min(20, Math.max(0, deadline - Date.now())));
    }
  }

  /** Writes what is queued (bounded by `deadline`, Date.now ms), then stops its timers. */
  async close(deadline: number): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    try {
      await this.#drain(deadline);
    } catch (error) {
      this.#ctx.report('set', undefined, asCacheError(error, this.name));
    }
    this.#closed = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    while (this.#pumping !== undefined) await this.#pumping;
  }
}

function asCacheError(error: unknown, name: string): CacheError {
  if (error instanceof CacheError) return error;
  return new ConnectionError(`The write-behind queue '${name}' failed to write: ${String(error)}`, { cause: error });
}
