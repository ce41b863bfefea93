import { CacheTimeoutError, CircuitOpenError, ConnectionError, isOutageError } from '../errors.js';
import type { CacheError } from '../errors.js';
import { redisChannel } from '../observability/channels.js';
import type { Instruments } from '../observability/instruments.js';
import type { Counters } from '../observability/stats.js';
import type { CallPolicy, RemoteStatus, RemoteTier, Settled } from '../types.js';
import { toCacheError, withTimeout } from './errors.js';

/** What a Redis call came to: its value, or why there is none (`error` undefined: skipped without trying). */
export type RemoteOutcome<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error?: CacheError };

export const SKIPPED: RemoteOutcome<never> = Object.freeze({ ok: false });
const SKIPPED_NOW: Promise<RemoteOutcome<never>> = Promise.resolve(SKIPPED);

export type RemoteOperation = 'get' | 'set' | 'delete' | 'clear' | 'lock';

export interface RemoteAccessorOptions {
  readonly tier: RemoteTier;
  /** The circuit breaker, or undefined when it is off. */
  readonly policy: CallPolicy | undefined;
  /** The longest any call waits for Redis, whatever the connection state, in ms. */
  readonly timeoutMs: number;
  readonly counters: Counters;
  /** Counts, emits and alerts a failure the cache absorbed. */
  readonly report: (operation: RemoteOperation, key: string | undefined, error: CacheError) => void;
  /** The connection became ready, or was lost (or could not be made): once per transition. */
  readonly onTransition: (up: boolean, error: CacheError | undefined) => void;
  /** Round-trip times go here (one clock pair per call, not per key); undefined or disabled: not timed. */
  readonly instruments?: Instruments | undefined;
}

/**
 * A hook run before each call: invalidations queued during an outage go first, so no call can read back what they
 * removed. Resolves with the outage error that stopped them (then the call fails with it: Redis is down again).
 */
export type BeforeCall = () => Promise<CacheError | undefined> | undefined;

/**
 * The one way to Redis. It alone owns the policy around the storage tier (as BentoCache's `#tryCacheOperation`):
 * the wait for a connection being set up, bounded by the Redis timeout; the circuit breaker; replay-first; error
 * mapping and reporting; and the calls in flight, which `drain()` waits for on close. Calls never throw.
 */
export class RemoteAccessor {
  readonly #tier: RemoteTier;
  readonly #policy: CallPolicy | undefined;
  readonly #timeoutMs: number;
  readonly #counters: Counters;
  readonly #report: RemoteAccessorOptions['report'];
  readonly #instruments: Instruments | undefined;
  #pending = 0;
  readonly #idle: (() => void)[] = [];
  #before: BeforeCall | undefined;
  #replayPending: (() => boolean) | undefined;
  #after: (() => void) | undefined;
  /** undefined until the first transition: the first failed connect is a `down` too. */
  #up: boolean | undefined;
  #lastError: CacheError | undefined;
  readonly #stopWatching: () => void;

  constructor(options: RemoteAccessorOptions) {
    this.#tier = options.tier;
    this.#policy = options.policy;
    this.#timeoutMs = options.timeoutMs;
    this.#counters = options.counters;
    this.#report = options.report;
    this.#instruments = options.instruments?.enabled === true ? options.instruments : undefined;
    const onTransition = options.onTransition;
    const watch = (status: RemoteStatus, error?: unknown): void => {
      if (error !== undefined) this.#lastError = toCacheError(error);
      if (status === 'ready' && this.#up !== true) {
        this.#up = true;
        this.#lastError = undefined;
        onTransition(true, undefined);
      } else if (status === 'down' && this.#up !== false) {
        this.#up = false;
        onTransition(false, this.#lastError);
      }
    };
    this.#stopWatching = options.tier.onStatus(watch);
    if (options.tier.status === 'ready') watch('ready');
  }

  /**
   * Sets the replay hooks (wired by the composition root once the replayer exists): `pending` says whether a call
   * must replay first, `before` runs that replay, `after` follows a call that went through.
   */
  useReplay(pending: () => boolean, before: BeforeCall, after: () => void): void {
    this.#replayPending = pending;
    this.#before = before;
    this.#after = after;
  }

  get tier(): RemoteTier {
    return this.#tier;
  }

  get status(): RemoteStatus {
    return this.#tier.status;
  }

  /** Calls sent and not yet answered. */
  get busy(): boolean {
    return this.#pending > 0;
  }

  /**
   * Runs one Redis operation. Never throws: a skipped or failed call comes back as `ok: false` (failures reported
   * and counted). Redis known down: skipped at once. Connecting: waits for it, within the timeout.
   */
  run<T>(
    operation: RemoteOperation,
    key: string | undefined,
    fn: (tier: RemoteTier) => Promise<T>,
    size = 1,
  ): Promise<RemoteOutcome<T>> {
    if (this.#tier.status === 'down') {
      this.#countSkipDown(operation, size);
      return SKIPPED_NOW;
    }
    return new Promise((resolve) => this.send(operation, key, fn, size, resolve));
  }

  /**
   * `run` with the outcome handed to `done` instead of a promise: the batcher's path, where the common case
   * (connected, nothing to replay) is one continuation on the tier's promise for the breaker, the accounting and the
   * batch's answers together. `done` may be called synchronously (a call skipped or turned away).
   */
  send<T>(
    operation: RemoteOperation,
    key: string | undefined,
    fn: (tier: RemoteTier) => Promise<T>,
    size: number,
    done: (outcome: RemoteOutcome<T>) => void,
  ): void {
    const status = this.#tier.status;
    if (status === 'down') {
      this.#countSkipDown(operation, size);
      done(SKIPPED);
      return;
    }
    this.#pending++;
    const instruments = this.#instruments;
    const started = instruments === undefined ? 0 : instruments.now();
    if (status === 'connecting' || this.#replayPending?.() === true) {
      void this.#slow(operation, key, fn, status === 'connecting').then((outcome) =>
        done(this.#settle(outcome, operation, size, started)),
      );
      return;
    }
    const tier = this.#tier;
    this.#call(
      () => fn(tier),
      key,
      (settled) => done(this.#settle(this.#outcome(operation, key, settled), operation, size, started)),
    );
  }

  /** `fn` through the breaker when there is one; `settle` gets its outcome once counted (synchronously if turned away). */
  #call<T>(fn: () => Promise<T>, key: string | undefined, settle: (settled: Settled<T>) => void): void {
    if (this.#policy !== undefined) {
      this.#policy.run(fn, key, countsAgainst, settle);
      return;
    }
    let sent: Promise<T>;
    try {
      sent = fn();
    } catch (error) {
      sent = Promise.reject(error as Error);
    }
    sent.then(
      (value) => settle({ ok: true, value }),
      (error: unknown) => settle({ ok: false, error }),
    );
  }

  #outcome<T>(operation: RemoteOperation, key: string | undefined, settled: Settled<T>): RemoteOutcome<T> {
    return settled.ok ? { ok: true, value: settled.value } : this.#failed(operation, key, settled.error);
  }

  #countSkipDown(operation: RemoteOperation, size: number): void {
    this.#counters.redisSkipped++;
    if (redisChannel.hasSubscribers) this.#publishSkip(operation, size, 'down');
  }

  #settle<T>(outcome: RemoteOutcome<T>, operation: RemoteOperation, size: number, started: number): RemoteOutcome<T> {
    if (--this.#pending === 0 && this.#idle.length > 0) for (const wake of this.#idle.splice(0)) wake();
    const instruments = this.#instruments;
    // A call the breaker turned away never reached Redis: no round trip to time.
    if (instruments !== undefined && (outcome.ok || outcome.error !== undefined)) {
      const durationMs = instruments.now() - started;
      instruments.redis.record(durationMs);
      instruments.lastRedisMs = durationMs;
      if (redisChannel.hasSubscribers) {
        redisChannel.publish({
          prefix: instruments.prefix,
          operation,
          size,
          startedAt: started,
          durationMs,
          ok: outcome.ok,
          error: outcome.ok ? undefined : outcome.error,
          skipped: undefined,
        });
      }
    }
    if (outcome.ok) this.#after?.();
    return outcome;
  }

  #failed(operation: RemoteOperation, key: string | undefined, caught: unknown): RemoteOutcome<never> {
    if (caught instanceof CircuitOpenError) {
      const down = this.#tier.status === 'down';
      if (down) this.#counters.redisSkipped++;
      else this.#counters.breakerSkipped++;
      if (redisChannel.hasSubscribers) this.#publishSkip(operation, 1, down ? 'down' : 'breaker');
      return SKIPPED;
    }
    const error = toCacheError(caught, key);
    this.#report(operation, key, error);
    return { ok: false, error };
  }

  /** The uncommon path: wait for a connection being set up, or for the replay of queued invalidations. */
  async #slow<T>(
    operation: RemoteOperation,
    key: string | undefined,
    fn: (tier: RemoteTier) => Promise<T>,
    connecting: boolean,
  ): Promise<RemoteOutcome<T>> {
    const started = performance.now();
    const send = async (): Promise<T> => {
      if (connecting && !(await this.#whenReady(this.#timeoutMs))) {
        // A failure like any other (not a CircuitOpenError: inside the breaker's execute that would pass for a success
        // and close a half-open breaker on a probe that never reached Redis).
        if (this.#tier.status === 'down') {
          throw new ConnectionError('Redis went down while the call waited for the connection', { key });
        }
        throw new CacheTimeoutError(`Redis was not connected within ${this.#timeoutMs} ms`, { key });
      }
      // Inside the breaker's execute, as the call itself: an open breaker sends neither.
      const replay = this.#before?.();
      const replayError = replay === undefined ? undefined : await replay;
      if (replayError !== undefined) throw replayError;
      // A call that waited gets what is left of the timeout, not a whole one more.
      return this.#bounded(fn(this.#tier), this.#timeoutMs - (performance.now() - started));
    };
    return new Promise((resolve) =>
      this.#call(send, key, (settled) => resolve(this.#outcome(operation, key, settled))),
    );
  }

  /**
   * A batch answered, but one node of a Redis Cluster failed its share (its keys' callers fall back): counted against
   * the breaker as a failed call is, so that a dead master still opens it. The caller reports it.
   */
  countPartialFailure(error: CacheError): void {
    if (isOutageError(error)) this.#policy?.countFailure();
  }

  /**
   * Whether a call now would be skipped untried (Redis known down, or the breaker turning calls away): counted, so
   * that the batcher answers such a call at once, without queueing it for a turn.
   */
  skipsNow(operation: RemoteOperation = 'get'): boolean {
    if (this.#tier.status === 'down') {
      this.#counters.redisSkipped++;
      if (redisChannel.hasSubscribers) this.#publishSkip(operation, 1, 'down');
      return true;
    }
    if (this.#policy?.rejecting === true) {
      this.#counters.breakerSkipped++;
      if (redisChannel.hasSubscribers) this.#publishSkip(operation, 1, 'breaker');
      return true;
    }
    return false;
  }

  /** A call skipped untried (counted in `redis.skipped` or `breaker.skipped`), for whoever listens. */
  #publishSkip(operation: RemoteOperation, size: number, skipped: 'down' | 'breaker'): void {
    const prefix = this.#instruments?.prefix;
    if (prefix === undefined) return;
    redisChannel.publish({
      prefix,
      operation,
      size,
      startedAt: 0,
      durationMs: 0,
      ok: false,
      error: undefined,
      skipped,
    });
  }

  #whenReady(ms: number): Promise<boolean> {
    const tier = this.#tier;
    if (tier.status !== 'connecting') return Promise.resolve(tier.status === 'ready');
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        stop();
        resolve(ok);
      };
      const timer = setTimeout(() => done(tier.status === 'ready'), Math.max(1, ms));
      const stop = tier.onStatus((status) => {
        if (status !== 'connecting') done(status === 'ready');
      });
    });
  }

  #bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
    if (ms >= this.#timeoutMs) return promise;
    return withTimeout(promise, ms, () => new CacheTimeoutError('Redis did not answer in time'));
  }

  /** Resolves once the connection is ready (true), or false after `ms`. */
  ready(ms: number): Promise<boolean> {
    if (this.#tier.status === 'ready') return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        stop();
        resolve(ok);
      };
      const timer = setTimeout(() => done(this.#tier.status === 'ready'), ms);
      const stop = this.#tier.onStatus((status) => {
        if (status === 'ready') done(true);
      });
    });
  }

  /** Waits for the calls in flight (bounded by `ms`): close() sends what was accepted before it. */
  async drain(ms: number): Promise<void> {
    if (this.#pending === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#idle.push(resolve);
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
  }

  close(): void {
    this.#stopWatching();
  }
}

/** Which errors count against Redis for the breaker: outages, not replies about one command. */
function countsAgainst(error: unknown): boolean {
  return isOutageError(toCacheError(error));
}
