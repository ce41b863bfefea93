import { CacheTimeoutError, ConfigurationError, ConnectionError, describeValue } from '../errors.js';
import { toMs } from '../options.js';
import type {
  Duration,
  LoadedWrite,
  LockGuard,
  LockedRead,
  KeyReply,
  LockedReadReply,
  RemoteCounters,
  RemoteStatus,
  RemoteStreams,
  RemoteTier,
  RemoteWrite,
  ShareListener,
  StatusListener,
  WriteOp,
  WriteReply,
} from '../types.js';
import { readOrLockByPrimitives, writeByPrimitives } from './batch-by-primitives.js';

export type ChaosOperation =
  | 'get'
  | 'getMany'
  | 'set'
  | 'setMany'
  | 'deleteMany'
  | 'deleteByPrefix'
  | 'acquireLock'
  | 'extendLock'
  | 'releaseLock'
  | 'setLoaded'
  | 'invalidateTags'
  | 'publish'
  | 'streams'
  | 'counters';

const OPERATIONS: readonly ChaosOperation[] = [
  'get',
  'getMany',
  'set',
  'setMany',
  'deleteMany',
  'deleteByPrefix',
  'acquireLock',
  'extendLock',
  'releaseLock',
  'setLoaded',
  'invalidateTags',
  'publish',
  'streams',
  'counters',
];

const STREAM_METHODS = ['enqueue', 'take', 'live', 'done', 'bury', 'info', 'deadLetters', 'revive'] as const;
const COUNTER_METHODS = ['incr', 'total', 'takeBatch', 'commitBatch', 'unflushed'] as const;

/** The error to inject: one instance thrown every time, or a factory called per failed call. */
export type ChaosError = Error | ((operation: ChaosOperation) => Error);

export interface ChaosOptions {
  /**
   * Seed of the random source `maybeThrow` draws from: the same seed and the same sequence of calls fail the same
   * calls, run after run.
   * @default 1
   */
  readonly seed?: number;
  /**
   * Bound on every call, injected delay and blackhole included: past it the call rejects with `CacheTimeoutError`,
   * as the Redis tier's own command timeout does. Omitted: calls are bounded only by what the inner tier does.
   */
  readonly timeoutMs?: Duration;
}

export interface ChaosCounts {
  /** Calls made to the wrapper. */
  readonly calls: number;
  readonly byOperation: Readonly<Record<ChaosOperation, number>>;
  /** Calls handed to the inner tier. */
  readonly forwarded: number;
  /** Calls failed by the wrapper itself (`alwaysThrow`, `maybeThrow`, `disconnect`). */
  readonly injected: number;
  /** Calls rejected by `timeoutMs`. */
  readonly timeouts: number;
  /** Calls held by `blackhole()` right now. */
  readonly pending: number;
}

/** The failure mode: one at a time, each replacing the last. */
type Mode =
  | { readonly kind: 'healthy' }
  | { readonly kind: 'throw'; readonly probability: number; readonly error: ChaosError | undefined }
  | { readonly kind: 'blackhole' }
  | { readonly kind: 'down' };

const HEALTHY: Mode = { kind: 'healthy' };

/** mulberry32: small, fast, and good enough to pick which calls fail. Not for anything secret. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Flight {
  /** Settles the caller's promise with an error, if it is still unsettled. */
  fail(error: Error): void;
  /** Hands a blackholed call to the inner tier. */
  resume(): void;
}

/**
 * Wraps any `RemoteTier` and injects the faults a real Redis shows: errors on every call or on a seeded random
 * fraction, latency, a blackhole (calls that never answer), or a dropped connection (`available` false, calls fail at
 * once). Storage-agnostic: it knows the contract, not the client.
 *
 * A call's fate is fixed when it starts: a fault set later applies to later calls. `heal()` clears every fault and
 * lets blackholed calls through to the inner tier. A call that times out before it reached the inner tier never
 * reaches it; one that times out while the inner tier works is left to finish, its result dropped.
 */
export class ChaosRemoteTier implements RemoteTier {
  readonly #inner: RemoteTier;
  readonly #timeoutMs: number | undefined;
  readonly #random: () => number;
  #mode: Mode = HEALTHY;
  readonly #statusListeners = new Set<StatusListener>();
  #announced: RemoteStatus | undefined;
  #delayMs = 0;
  /** Bumped by heal(): a call that started before it was meant to be blackholed and must not be any more. */
  #heals = 0;
  readonly #flights = new Set<Flight>();
  readonly #blackholed = new Set<Flight>();
  #calls = 0;
  #byOperation = Object.fromEntries(OPERATIONS.map((op) => [op, 0])) as Record<ChaosOperation, number>;
  #forwarded = 0;
  #injected = 0;
  #timeouts = 0;

  constructor(inner: RemoteTier, options: ChaosOptions = {}) {
    if (typeof inner !== 'object' || inner === null || typeof (inner as Partial<RemoteTier>).get !== 'function') {
      throw new ConfigurationError(`Expected the inner tier to be a RemoteTier, got ${describeValue(inner)}`);
    }
    const seed = options.seed ?? 1;
    if (!Number.isSafeInteger(seed)) {
      throw new ConfigurationError(`Expected \`seed\` to be an integer, got ${describeValue(seed)}`);
    }
    this.#inner = inner;
    // The write strategies' storage is faulted like the rest: every call of it counts as 'streams' or 'counters'.
    if (inner.streams !== undefined) this.streams = this.#wrap(inner.streams, 'streams', STREAM_METHODS);
    if (inner.counters !== undefined) this.counters = this.#wrap(inner.counters, 'counters', COUNTER_METHODS);
    this.#random = seededRandom(seed);
    this.#timeoutMs = options.timeoutMs === undefined ? undefined : toMs('timeoutMs', options.timeoutMs);
  }

  readonly streams?: RemoteStreams;
  readonly counters?: RemoteCounters;

  #wrap<T extends object>(inner: T, operation: ChaosOperation, names: readonly (keyof T & string)[]): T {
    const out: Record<string, unknown> = {};
    for (const name of names) {
      const method = inner[name] as unknown as (...args: unknown[]) => Promise<unknown>;
      out[name] = (...args: unknown[]) => this.#run(operation, () => method.apply(inner, args));
    }
    return out as T;
  }

  get inner(): RemoteTier {
    return this.#inner;
  }

  get available(): boolean {
    return this.#mode.kind !== 'down' && this.#inner.available;
  }

  get status(): RemoteStatus {
    return this.#mode.kind === 'down' ? 'down' : this.#inner.status;
  }

  onStatus(listener: StatusListener): () => void {
    const entry: StatusListener = (status, error) => listener(status, error);
    this.#statusListeners.add(entry);
    const stopInner = this.#inner.onStatus(() => this.#announce());
    return () => {
      this.#statusListeners.delete(entry);
      stopInner();
    };
  }

  #announce(): void {
    const status = this.status;
    if (status === this.#announced) return;
    this.#announced = status;
    for (const listener of [...this.#statusListeners]) listener(status);
  }

  /**
   * A turn's reads and writes go through the single-op methods below, so each op is counted and faulted like the
   * call it replaces (`get`, `acquireLock`, `set`, `setMany`, `setLoaded`, `deleteMany`).
   */
  readOrLock(reads: readonly LockedRead[], token: string, ttlMs: number, now: number): Promise<LockedReadReply[]> {
    return readOrLockByPrimitives(this, reads, token, ttlMs, now);
  }

  write(ops: readonly WriteOp[]): Promise<WriteReply[]> {
    return writeByPrimitives(this, ops);
  }

  /** Every call fails with `error` (default: a fresh `ConnectionError`), after any delay. */
  alwaysThrow(error?: ChaosError): this {
    this.#mode = { kind: 'throw', probability: 1, error };
    return this;
  }

  /** Each call fails with probability `probability` (0–1), drawn from the seeded random source. */
  maybeThrow(probability: number, error?: ChaosError): this {
    if (typeof probability !== 'number' || !(probability >= 0 && probability <= 1)) {
      throw new ConfigurationError(
        `Expected \`probability\` to be a number from 0 to 1, got ${describeValue(probability)}`,
      );
    }
    this.#mode = { kind: 'throw', probability, error };
    return this;
  }

  /** Adds this much latency before every call (on top of any fault); `0` removes it. */
  delay(ms: Duration): this {
    this.#delayMs = toMs('ms', ms, { allowZero: true });
    return this;
  }

  /** Calls never settle until `heal()`, or until `timeoutMs` if one was given. */
  blackhole(): this {
    this.#mode = { kind: 'blackhole' };
    return this;
  }

  /**
   * As after a dropped connection with no offline queue: `available` is false and every call fails at once with a
   * `ConnectionError`, before any delay.
   */
  disconnect(): this {
    this.#mode = { kind: 'down' };
    this.#announce();
    return this;
  }

  /** Clears every fault and the delay, and lets blackholed calls through to the inner tier. */
  heal(): this {
    this.#mode = HEALTHY;
    this.#delayMs = 0;
    this.#heals++;
    for (const flight of [...this.#blackholed]) flight.resume();
    this.#announce();
    return this;
  }

  get counts(): ChaosCounts {
    return {
      calls: this.#calls,
      byOperation: { ...this.#byOperation },
      forwarded: this.#forwarded,
      injected: this.#injected,
      timeouts: this.#timeouts,
      pending: this.#blackholed.size,
    };
  }

  resetCounts(): void {
    this.#calls = 0;
    this.#byOperation = Object.fromEntries(OPERATIONS.map((op) => [op, 0])) as Record<ChaosOperation, number>;
    this.#forwarded = 0;
    this.#injected = 0;
    this.#timeouts = 0;
  }

  get(key: string): Promise<string | null | undefined> {
    return this.#run('get', () => this.#inner.get(key));
  }

  getMany(keys: readonly string[], onShare?: ShareListener): Promise<KeyReply[]> {
    return this.#run('getMany', () => this.#inner.getMany(keys, onShare));
  }

  set(key: string, value: string, ttlMs: number): Promise<unknown> {
    return this.#run('set', () => this.#inner.set(key, value, ttlMs));
  }

  setMany(writes: readonly RemoteWrite[]): Promise<void> {
    return this.#run('setMany', () => this.#inner.setMany(writes));
  }

  deleteMany(keys: readonly string[], alsoUnlink?: readonly string[]): Promise<number> {
    return this.#run('deleteMany', () => this.#inner.deleteMany(keys, alsoUnlink));
  }

  invalidateTags(tagKeys: readonly string[], lockKeyOf: (key: string) => string): Promise<number> {
    return this.#run('invalidateTags', () => this.#inner.invalidateTags(tagKeys, lockKeyOf));
  }

  publish(channel: string, message: string): Promise<void> {
    return this.#run('publish', () => this.#inner.publish(channel, message));
  }

  deleteByPrefix(prefix: string): Promise<number> {
    return this.#run('deleteByPrefix', () => this.#inner.deleteByPrefix(prefix));
  }

  acquireLock(lockKey: string, token: string, ttlMs: number, guard?: LockGuard): Promise<boolean | 'fresh'> {
    return this.#run('acquireLock', () => this.#inner.acquireLock(lockKey, token, ttlMs, guard));
  }

  extendLock(lockKey: string, token: string, ttlMs: number): Promise<boolean> {
    return this.#run('extendLock', () => this.#inner.extendLock(lockKey, token, ttlMs));
  }

  releaseLock(lockKey: string, token: string): Promise<void> {
    return this.#run('releaseLock', () => this.#inner.releaseLock(lockKey, token));
  }

  setLoaded(write: LoadedWrite): Promise<boolean> {
    return this.#run('setLoaded', () => this.#inner.setLoaded(write));
  }

  /** Fails every call still held or delayed (as a closing connection would), then closes the inner tier. */
  async close(): Promise<void> {
    for (const flight of [...this.#flights])
      flight.fail(new ConnectionError('Redis command failed: Connection is closed.'));
    await this.#inner.close();
  }

  #injectedError(error: ChaosError | undefined, operation: ChaosOperation): Error {
    if (error === undefined)
      return new ConnectionError(`Redis command failed: injected by ChaosRemoteTier (${operation})`);
    return typeof error === 'function' ? error(operation) : error;
  }

  #run<T>(operation: ChaosOperation, forward: () => Promise<T>): Promise<T> {
    this.#calls++;
    this.#byOperation[operation]++;
    const mode = this.#mode;
    if (mode.kind === 'down') {
      this.#injected++;
      return Promise.reject(new ConnectionError(`Redis command failed: the connection is down (ChaosRemoteTier)`));
    }
    // Drawn now, in call order, so a seed gives the same failures however the calls interleave later.
    const fault =
      mode.kind === 'throw' && (mode.probability >= 1 || this.#random() < mode.probability)
        ? this.#injectedError(mode.error, operation)
        : undefined;
    const hole = mode.kind === 'blackhole';
    const delayMs = this.#delayMs;
    const timeoutMs = this.#timeoutMs;
    if (fault === undefined && !hole && delayMs === 0 && timeoutMs === undefined) {
      this.#forwarded++;
      return forward();
    }
    const heals = this.#heals;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let delayTimer: NodeJS.Timeout | undefined;
      let timeoutTimer: NodeJS.Timeout | undefined;
      const settle = (apply: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(delayTimer);
        clearTimeout(timeoutTimer);
        this.#flights.delete(flight);
        this.#blackholed.delete(flight);
        apply();
      };
      const forwardNow = (): void => {
        this.#blackholed.delete(flight);
        this.#forwarded++;
        let pending: Promise<T>;
        try {
          pending = forward();
        } catch (error) {
          settle(() => reject(error instanceof Error ? error : new Error(String(error))));
          return;
        }
        // Both handlers attached, so a result that arrives after a timeout is dropped, never unhandled.
        pending.then(
          (value) => settle(() => resolve(value)),
          (error: unknown) => settle(() => reject(error instanceof Error ? error : new Error(String(error)))),
        );
      };
      const flight: Flight = {
        fail: (error) => settle(() => reject(error)),
        resume: () => {
          if (!settled) forwardNow();
        },
      };
      const proceed = (): void => {
        delayTimer = undefined;
        if (settled) return;
        if (fault !== undefined) {
          this.#injected++;
          settle(() => reject(fault));
        } else if (hole && this.#heals === heals) {
          this.#blackholed.add(flight);
        } else {
          forwardNow();
        }
      };
      this.#flights.add(flight);
      if (timeoutMs !== undefined) {
        timeoutTimer = setTimeout(() => {
          if (settled) return;
          this.#timeouts++;
          settle(() =>
            reject(new CacheTimeoutError(`Redis did not answer in time (${timeoutMs} ms, ChaosRemoteTier)`)),
          );
        }, timeoutMs);
      }
      if (delayMs > 0) delayTimer = setTimeout(proceed, delayMs);
      else proceed();
    });
  }
}
