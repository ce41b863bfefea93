import type { Entry } from '../entry.js';
import { ConfigurationError, LoaderTimeoutError, SerializationError } from '../errors.js';
import type { Coherence, LoadMark } from '../invalidation/coherence.js';
import type { Instruments } from '../observability/instruments.js';
import type { Counters } from '../observability/stats.js';
import type { ResolvedGetOrSetOptions } from '../call-options.js';
import type { Lease } from '../resilience/lock.js';
import type { Clock, Duration } from '../types.js';
import { Adaptive, UNCHANGED } from './adaptive.js';
import type { StaleCopy, Unchanged } from './adaptive.js';
import type { ReadResult } from './view.js';

export interface LoaderContext<T = unknown> {
  /** The key being loaded, without the prefix. */
  readonly key: string;
  /** Aborted when the call's `hardTimeout` passes (the result is still cached if it arrives). */
  readonly signal: AbortSignal;
  /**
   * The copy being replaced, when there is one within grace (or the fresh copy a refresh-ahead replaces): its value
   * and metadata, for a conditional refresh (compare a version, send `If-None-Match`). undefined otherwise.
   */
  readonly stale: StaleCopy<T> | undefined;
  /** Adaptive caching: this value's TTL, chosen from what was loaded (overrides the call's `ttl`). */
  setTtl(ttl: Duration): void;
  /** Adaptive caching: this value's grace window (overrides the call's `grace`; 0 for none). */
  setGrace(grace: Duration): void;
  /** Adaptive caching: this value's tags (replace the call's `tags`). */
  setTags(tags: readonly string[]): void;
  /** Do not cache what this call returns (the caller still gets it). */
  skip(): void;
  /**
   * Return this to say the stale copy is still current: its expiry is renewed (TTL and grace as for a new value)
   * without writing the value again. Without a stale copy the loader must return a value instead (an error).
   */
  unchanged(): Unchanged;
}

export type Loader<T> = (context: LoaderContext<T>) => T | Unchanged | Promise<T | Unchanged>;

/** One getOrSet load: `running` is the loader's own settlement while it runs, undefined before and after. */
export interface Flight {
  running: Promise<unknown> | undefined;
}

/** Everything one loader run needs, as one object (BentoCache's factory runner takes the same shape). */
export interface LoaderRun {
  readonly key: string;
  readonly fullKey: string;
  readonly loader: Loader<unknown>;
  readonly options: ResolvedGetOrSetOptions;
  /** A stale copy within grace, served on failure or after the soft timeout. */
  readonly stale: Entry | undefined;
  /** The stampede lock, when this load holds it. */
  readonly lease: Lease | undefined;
  readonly flight: Flight;
  /** Stores the value (both tiers) under the options the loader settled on; resolves with the caller's answer. */
  readonly store: (
    value: unknown,
    startedAt: number,
    mark: LoadMark,
    options: ResolvedGetOrSetOptions,
  ) => Promise<ReadResult<unknown>>;
  /** The loader answered "unchanged": renews the stale copy's expiry under these options; the caller's answer. */
  readonly renew: (
    stale: Entry,
    startedAt: number,
    mark: LoadMark,
    options: ResolvedGetOrSetOptions,
  ) => Promise<ReadResult<unknown>>;
  /** The loader failed and the stale copy was served: back off from this key. */
  readonly onStaleServed: () => void;
}

export interface LoaderRunnerOptions {
  readonly counters: Counters;
  readonly clock: Clock;
  readonly coherence: Coherence;
  /** The lock TTL (ms): a lease held by a running loader is extended every third of it. */
  readonly lockTtlMs: number;
  /** Loader durations and per-group loader figures; undefined: not recorded. */
  readonly instruments?: Instruments | undefined;
}

/**
 * Runs a loader under the soft and hard timeouts, holding its lease (kept alive while it runs), with an abort signal.
 * The loader's result is stored whenever it arrives, even after the caller was answered with a stale copy or a
 * timeout.
 */
export class LoaderRunner {
  readonly #o: LoaderRunnerOptions;

  constructor(options: LoaderRunnerOptions) {
    this.#o = options;
  }

  /** `fullKey` names the key group the stale hit is counted in. */
  serveStale(entry: Entry, fullKey: string): ReadResult<unknown> {
    this.#o.counters.staleHits++;
    this.#o.instruments?.read(fullKey, 'stale');
    return { value: entry.value, source: 'stale', expiresInMs: entry.expiresAt - this.#o.clock.now() };
  }

  /** What the loader's answer comes to: stored under its adaptive options, renewed, or handed back uncached. */
  async #settle(
    run: LoaderRun,
    adaptive: Adaptive,
    value: unknown,
    startedAt: number,
    mark: LoadMark,
  ): Promise<ReadResult<unknown>> {
    const options = adaptive.resolve(run.options, value);
    if (value === UNCHANGED) {
      const stale = run.stale;
      if (stale === undefined) {
        await run.lease?.release();
        throw new ConfigurationError(`The loader of \`${run.key}\` answered "unchanged" without a stale copy to keep`, {
          key: run.key,
        });
      }
      return run.renew(stale, startedAt, mark, options);
    }
    if (adaptive.skipped) {
      await run.lease?.release();
      return { value, source: 'origin', expiresInMs: 0 };
    }
    return run.store(value, startedAt, mark, options);
  }

  run(run: LoaderRun): Promise<ReadResult<unknown>> {
    const { counters, clock, coherence } = this.#o;
    const { key, fullKey, options, stale, lease, flight } = run;
    counters.loaderCalls++;
    const startedAt = clock.now();
    const mark = coherence.beginLoad(fullKey, options.tags);
    const controller = new AbortController();
    lease?.keepAlive(this.#o.lockTtlMs);

    const instruments = this.#o.instruments?.enabled === true ? this.#o.instruments : undefined;
    const message = instruments?.loadStarted(fullKey);
    const began = instruments === undefined ? 0 : instruments.now();
    const adaptive = new Adaptive(key, controller.signal, stale);
    const call = async () => run.loader(adaptive.context);
    const within = message?.within;
    const loaded = within === undefined ? call() : within(call);
    const stored = loaded.then(
      (value) => {
        instruments?.loadEnded(fullKey, instruments.now() - began, undefined, message);
        return this.#settle(run, adaptive, value, startedAt, mark);
      },
      async (error: unknown) => {
        instruments?.loadEnded(fullKey, instruments.now() - began, error ?? new Error('loader rejected'), message);
        counters.loaderErrors++;
        await lease?.release();
        throw error;
      },
    );
    // The loader's settlement, which never rejects: whoever answered the caller, the outcome is observed here.
    flight.running = stored.then(
      () => undefined,
      () => undefined,
    );
    // Registered before the caller's answer is wired below, so it runs first: when the answer settles because the
    // loader did, the flight already knows the loader is done.
    const finished = (): void => {
      flight.running = undefined;
      lease?.settle();
      coherence.endLoad(fullKey, mark);
    };
    stored.then(finished, finished);
    return new Promise<ReadResult<unknown>>((resolve, reject) => {
      let answered = false;
      const timers: NodeJS.Timeout[] = [];
      const answer = (fn: () => void): void => {
        if (answered) return;
        answered = true;
        for (const timer of timers) clearTimeout(timer);
        fn();
      };
      if (stale !== undefined && options.softTimeout !== undefined) {
        timers.push(setTimeout(() => answer(() => resolve(this.serveStale(stale, fullKey))), options.softTimeout));
      }
      const hardTimeout = options.hardTimeout;
      if (hardTimeout !== undefined) {
        timers.push(
          setTimeout(() => {
            const message = `The loader of \`${key}\` took longer than ${hardTimeout} ms`;
            controller.abort(new LoaderTimeoutError(message));
            // The lock goes now so other processes can try; the late result is still stored, without it (with the
            // token, the write would find the lock gone and be refused as an invalidated load's).
            lease?.abandon();
            answer(() =>
              stale !== undefined
                ? resolve(this.serveStale(stale, fullKey))
                : reject(new LoaderTimeoutError(message, { key })),
            );
          }, hardTimeout),
        );
      }
      stored.then(
        (result) => answer(() => resolve(result)),
        (error: unknown) =>
          answer(() => {
            if (stale !== undefined && !(error instanceof SerializationError)) {
              run.onStaleServed();
              resolve(this.serveStale(stale, fullKey));
            } else reject(error as Error);
          }),
      );
    });
  }
}
