import { randomBytes } from 'node:crypto';
import { CacheError, CacheTimeoutError, ConfigurationError, ConnectionError, describeValue } from '../errors.js';
import { positiveInteger, toMs } from '../options.js';
import type { Duration } from '../types.js';
import type { CounterKeys } from '../types.js';
import { checkFunction, checkName, checkOptionsObject, localRunner, strategyKey, unrefTimer } from './context.js';
import type { StoreRunner, StrategyContext } from './context.js';

/** Stores the deltas of one batch in the database. Called again with the same `batchId` when it failed before. */
export type CounterFlush = (deltas: ReadonlyMap<string, number>, batchId: string) => Promise<void> | void;

export interface CounterOptions {
  /**
   * Flush once an id's not-yet-flushed delta reaches this many.
   * @default 100
   */
  readonly flushEvery?: number;
  /**
   * Also flush whatever is pending this often (and retry a failed flush).
   * @default '5s'
   */
  readonly flushInterval?: Duration;
  /** Writes a batch of deltas to the database; must be idempotent by `batchId` (docs/write-strategies.md). */
  readonly flush: CounterFlush;
  /** The database's total for an id, read the first time the id is counted, to seed the live total. */
  readonly load?: (id: string) => number | Promise<number>;
  /**
   * Most ids whose increments are kept in process memory while Redis is unreachable; past it `incr` rejects.
   * @default 10_000
   */
  readonly maxOffline?: number;
}

export interface Counter {
  readonly name: string;
  /** Adds `by` (an integer, default 1) and resolves with the id's current total. */
  incr(id: string, by?: number): Promise<number>;
  /** The id's current total (flushed or not). */
  get(id: string): Promise<number>;
  /** Flushes every pending delta now; rejects with the flush's error (the batch is then kept for a retry). */
  flush(): Promise<void>;
  /** Not-yet-flushed deltas (sum of absolute values), in Redis and in process memory: for dashboards. */
  unflushed(): Promise<number>;
  /** Increments (sum of absolute deltas) kept in process memory because Redis was unreachable: lost if it dies. */
  readonly offline: number;
}

export const COUNTER_DEFAULTS = { flushEvery: 100, flushInterval: 5_000, maxOffline: 10_000 } as const;

/** Rounds of take-and-flush one `flush()` or `close()` runs at most (each round empties what was pending). */
const MAX_ROUNDS = 8;

interface ResolvedCounterOptions {
  readonly flushEvery: number;
  readonly flushInterval: number;
  readonly flush: CounterFlush;
  readonly load: ((id: string) => number | Promise<number>) | undefined;
  readonly maxOffline: number;
}

export function resolveCounterOptions(input: unknown): ResolvedCounterOptions {
  checkOptionsObject(input);
  const o = input as CounterOptions;
  checkFunction('flush', o.flush);
  if (o.load !== undefined) checkFunction('load', o.load);
  return {
    flushEvery: o.flushEvery === undefined ? COUNTER_DEFAULTS.flushEvery : positiveInteger('flushEvery', o.flushEvery),
    flushInterval:
      o.flushInterval === undefined ? COUNTER_DEFAULTS.flushInterval : toMs('flushInterval', o.flushInterval),
    flush: o.flush,
    load: o.load,
    maxOffline: o.maxOffline === undefined ? COUNTER_DEFAULTS.maxOffline : positiveInteger('maxOffline', o.maxOffline),
  };
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 256 || id.startsWith('__')) {
    throw new ConfigurationError(
      `Expected the counter id to be a string of 1–256 characters not starting with \`__\`, got ${describeValue(id)}`,
    );
  }
  return id;
}

/**
 * A write-behind counter. Totals and not-yet-flushed deltas live in Redis (so a killed process loses nothing); a
 * flush takes the pending deltas out atomically under a batch id and keeps them, under that id, until the writer
 * succeeded, so a retry (by this process or another) sends the same batch and an idempotent writer never counts
 * twice. While Redis is unreachable, increments are kept in memory (bounded) and merged back when it returns.
 */
export class WriteBehindCounter implements Counter {
  readonly name: string;
  readonly #o: ResolvedCounterOptions;
  readonly #store: StoreRunner;
  readonly #ctx: StrategyContext;
  readonly #keys: CounterKeys;
  /** Increments accepted while Redis was unreachable, merged back first thing on the next call that reaches it. */
  readonly #offline = new Map<string, number>();
  /** The last total seen per id (bounded), to answer while Redis is unreachable. */
  readonly #lastTotal = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #running: Promise<void> | undefined;
  /** A threshold flush asked for while one ran. */
  #again = false;
  #seq = 0;
  #closed = false;

  constructor(ctx: StrategyContext, name: string, options: unknown) {
    this.name = checkName('counter', name);
    this.#o = resolveCounterOptions(options);
    this.#ctx = ctx;
    this.#store = ctx.remote ?? localRunner(ctx.clock);
    const key = (part: string): string => strategyKey(ctx.rootPrefix, 'ctr', name, part);
    this.#keys = { totals: key('totals'), pending: key('pending'), batch: key('batch') };
    this.#timer = unrefTimer(() => this.#background(1), this.#o.flushInterval, true);
  }

  #remember(id: string, total: number): void {
    this.#lastTotal.delete(id);
    this.#lastTotal.set(id, total);
    if (this.#lastTotal.size > this.#o.maxOffline)
      this.#lastTotal.delete(this.#lastTotal.keys().next().value as string);
  }

  async incr(id: string, by = 1): Promise<number> {
    checkId(id);
    if (!Number.isSafeInteger(by)) {
      throw new ConfigurationError(`Expected \`by\` to be an integer, got ${describeValue(by)}`);
    }
    if (this.#closed) throw new ConnectionError(`The counter '${this.name}' is closed`);
    if (this.#offline.size > 0) await this.#merge();
    const requireSeed = this.#o.load !== undefined;
    let outcome = await this.#store.run(id, (s) => s.incr(this.#keys, id, by, undefined, requireSeed));
    if (outcome.ok && outcome.value === undefined) {
      const seed = await this.#seed(id);
      outcome = await this.#store.run(id, (s) => s.incr(this.#keys, id, by, seed, false));
    }
    if (!outcome.ok) {
      // A call that timed out may have been applied: counting it again from memory could count it twice, so the
      // caller is told (and decides). One that was skipped or refused never reached Redis: kept in memory.
      if (outcome.error instanceof CacheTimeoutError) throw outcome.error;
      return this.#keepOffline(id, by);
    }
    const counted = outcome.value as { total: number; pending: number };
    this.#remember(id, counted.total);
    if (Math.abs(counted.pending) >= this.#o.flushEvery) this.#background(this.#o.flushEvery);
    return counted.total;
  }

  async #seed(id: string): Promise<number> {
    const seed = await (this.#o.load as (id: string) => number | Promise<number>)(id);
    if (!Number.isSafeInteger(seed)) {
      throw new ConfigurationError(`Expected \`load\` to resolve with an integer, got ${describeValue(seed)}`);
    }
    return seed;
  }

  async #keepOffline(id: string, by: number): Promise<number> {
    if (!this.#offline.has(id) && this.#offline.size >= this.#o.maxOffline) {
      throw new ConnectionError(
        `Redis is unreachable and the counter '${this.name}' already keeps ${this.#o.maxOffline} ids in memory`,
      );
    }
    const delta = (this.#offline.get(id) ?? 0) + by;
    this.#offline.set(id, delta);
    let base = this.#lastTotal.get(id);
    if (base === undefined && this.#o.load !== undefined) {
      base = await this.#seed(id);
      this.#remember(id, base);
    }
    return (base ?? 0) + delta;
  }

  /** Moves the increments kept in memory into Redis, one id at a time (each step atomic); stops at the first failure. */
  async #merge(): Promise<boolean> {
    for (const [id, delta] of [...this.#offline]) {
      const requireSeed = this.#o.load !== undefined;
      let outcome = await this.#store.run(id, (s) => s.incr(this.#keys, id, delta, undefined, requireSeed));
      if (outcome.ok && outcome.value === undefined) {
        const seed = await this.#seed(id);
        outcome = await this.#store.run(id, (s) => s.incr(this.#keys, id, delta, seed, false));
      }
      if (!outcome.ok) return false;
      this.#offline.delete(id);
      if (outcome.value !== undefined) this.#remember(id, outcome.value.total);
    }
    return true;
  }

  get offline(): number {
    let sum = 0;
    for (const delta of this.#offline.values()) sum += Math.abs(delta);
    return sum;
  }

  async get(id: string): Promise<number> {
    checkId(id);
    const outcome = await this.#store.run(id, (s) => s.total(this.#keys, id));
    const offline = this.#offline.get(id) ?? 0;
    if (outcome.ok) {
      if (outcome.value !== undefined) {
        this.#remember(id, outcome.value);
        return outcome.value + offline;
      }
      if (this.#o.load === undefined) return offline;
      const seed = await this.#seed(id);
      const seeded = await this.#store.run(id, (s) => s.incr(this.#keys, id, 0, seed, false));
      return (seeded.ok && seeded.value !== undefined ? seeded.value.total : seed) + offline;
    }
    const base = this.#lastTotal.get(id) ?? (this.#o.load === undefined ? 0 : await this.#seed(id));
    return base + offline;
  }

  async unflushed(): Promise<number> {
    const sum = this.offline;
    const outcome = await this.#store.run(undefined, (s) => s.unflushed(this.#keys));
    return sum + (outcome.ok ? outcome.value : 0);
  }

  /** A flush nobody awaits (threshold, interval): one at a time; its failure is reported, the batch kept. */
  #background(min: number): void {
    if (this.#closed) return;
    if (this.#running !== undefined) {
      if (min > 1) this.#again = true;
      return;
    }
    const run = (async () => {
      try {
        await this.#round(min);
        while (this.#again && !this.#closed) {
          this.#again = false;
          await this.#round(this.#o.flushEvery);
        }
      } catch (error) {
        this.#ctx.report('set', undefined, asCacheError(error, this.name));
      }
    })();
    this.#running = run.finally(() => {
      if (this.#running === tracked) this.#running = undefined;
    });
    const tracked = this.#running;
  }

  /**
   * One take-and-flush: the batch in progress (a retry, same id) or the pending deltas when one reached `min`.
   * Resolves true when a batch was flushed. Rejects with the flush's error; the batch stays for the next round.
   */
  async #round(min: number): Promise<boolean> {
    if (this.#offline.size > 0) await this.#merge();
    const batchId = `${this.#ctx.instanceId}.${this.#ctx.clock.now()}.${++this.#seq}.${randomBytes(4).toString('hex')}`;
    const taken = await this.#store.run(undefined, (s) => s.takeBatch(this.#keys, batchId, min));
    if (!taken.ok) throw taken.error ?? new ConnectionError('Redis is unavailable: the counter flush waits for it');
    const batch = taken.value;
    if (batch === undefined) return false;
    const deltas = new Map([...batch.deltas].filter(([, delta]) => delta !== 0));
    if (deltas.size > 0) await this.#o.flush(deltas, batch.batchId);
    const committed = await this.#store.run(undefined, (s) => s.commitBatch(this.#keys, batch.batchId));
    // Not committed (Redis down): the batch stays and is sent again under its id, which the writer ignores.
    return committed.ok;
  }

  async #serial<T>(work: () => Promise<T>): Promise<T> {
    while (this.#running !== undefined) await this.#running;
    const run = work();
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#running = settled.finally(() => {
      if (this.#running === tracked) this.#running = undefined;
    });
    const tracked = this.#running;
    return run;
  }

  async flush(): Promise<void> {
    await this.#serial(async () => {
      for (let round = 0; round < MAX_ROUNDS; round++) if (!(await this.#round(1))) return;
    });
  }

  /**
   * Flushes what is pending, bounded by `deadline` (Date.now ms), then stops the
   * interval. Increments kept in memory that cannot reach Redis go to the writer directly, under a batch id of
   * their own: the database is the only durable place left for them.
   */
  async close(deadline: number): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    try {
      await this.#serial(async () => {
        for (let round = 0; round < MAX_ROUNDS && Date.now() < deadline; round++) {
          if (!(await this.#round(1))) break;
        }
      });
    } catch (error) {
      this.#ctx.report('set', undefined, asCacheError(error, this.name));
    }
    this.#closed = true;
    if (this.#offline.size === 0) return;
    const deltas = new Map(this.#offline);
    this.#offline.clear();
    try {
      await this.#o.flush(deltas, `${this.#ctx.instanceId}.offline.${randomBytes(6).toString('hex')}`);
    } catch (error) {
      this.#ctx.report('set', undefined, asCacheError(error, this.name));
    }
  }
}

function asCacheError(error: unknown, name: string): CacheError {
  if (error instanceof CacheError) return error;
  return new ConnectionError(`The flush of the counter '${name}' failed: ${String(error)}`, { cause: error });
}
