import { ConfigurationError, describeValue } from '../errors.js';
import type { ResolvedGetOrSetOptions } from '../call-options.js';
import type { Duration } from '../types.js';
import { UNCHANGED } from './adaptive.js';
import type { StaleCopy, Unchanged } from './adaptive.js';
import type { LoaderContext } from './loader-runner.js';

/** What a `getOrSetMany` loader returns: a Map by key, or an array aligned with the keys it was given. */
export type ManyResult<T> = ReadonlyMap<string, T | undefined> | readonly (T | undefined)[];

/**
 * The context of one `getOrSetMany` loader call. The adaptive choices take the keys they apply to (every key of the
 * call when omitted), so a loader can set each value's TTL and tags from what it loaded.
 */
export interface ManyLoaderContext<T = unknown> {
  /** The keys this call loads (the same array as the loader's first argument). */
  readonly keys: readonly string[];
  /** Aborted when the call's `hardTimeout` passes. */
  readonly signal: AbortSignal;
  /** The stale copies at hand (within grace), by key, for a conditional refresh. */
  readonly stale: ReadonlyMap<string, StaleCopy<T>>;
  setTtl(ttl: Duration, keys?: readonly string[]): void;
  setGrace(grace: Duration, keys?: readonly string[]): void;
  setTags(tags: readonly string[], keys?: readonly string[]): void;
  /** Do not cache these keys' values (the caller still gets them). */
  skip(keys?: readonly string[]): void;
  /** These keys' stale copies are still current: their expiry is renewed without writing the value. */
  unchanged(keys: readonly string[]): void;
}

export type ManyLoader<T> = (keys: string[], context: ManyLoaderContext<T>) => ManyResult<T> | Promise<ManyResult<T>>;

interface Pending {
  readonly key: string;
  readonly context: LoaderContext<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * One `getOrSetMany` call's loads. Each key goes through the ordinary getOrSet load (memory, single-flight, the
 * stampede lock taken with the Redis lookup, fail-safe); the per-key loader it is given only enqueues the key, and
 * the keys enqueued in one turn go to the caller's loader in one call. The loads of one call reach the loader in the
 * same turn (their "value or lock" answers arrive in one batch), so a batch of cold keys costs one loader call.
 */
export class BatchLoad<T> {
  readonly #loader: ManyLoader<T>;
  readonly #options: ResolvedGetOrSetOptions;
  #pending: Pending[] = [];

  constructor(loader: ManyLoader<T>, options: ResolvedGetOrSetOptions) {
    this.#loader = loader;
    this.#options = options;
  }

  /** The loader of one key: resolves with that key's share of the next batch call. */
  readonly loadOne = (context: LoaderContext<unknown>): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => void this.#dispatch());
      this.#pending.push({ key: context.key, context, resolve, reject });
    });

  async #dispatch(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    const keys = pending.map((p) => p.key);
    const byKey = new Map(pending.map((p) => [p.key, p.context]));
    const stale = new Map<string, StaleCopy<T>>();
    for (const p of pending) if (p.context.stale !== undefined) stale.set(p.key, p.context.stale as StaleCopy<T>);
    const unchanged = new Set<string>();
    const each = (keysGiven: readonly string[] | undefined, fn: (context: LoaderContext<unknown>) => void): void => {
      for (const key of keysGiven ?? keys) {
        const context = byKey.get(key);
        if (context === undefined) {
          throw new ConfigurationError(`Expected a key of this loader call, got ${describeValue(key)}`);
        }
        fn(context);
      }
    };
    const context: ManyLoaderContext<T> = {
      keys,
      signal:
        pending.length === 1
          ? (pending[0] as Pending).context.signal
          : AbortSignal.any(pending.map((p) => p.context.signal)),
      stale,
      setTtl: (ttl, only) => each(only, (c) => c.setTtl(ttl)),
      setGrace: (grace, only) => each(only, (c) => c.setGrace(grace)),
      setTags: (tags, only) => each(only, (c) => c.setTags(tags)),
      skip: (only) => each(only, (c) => c.skip()),
      unchanged: (only) =>
        each(only, (c) => {
          unchanged.add(c.key);
        }),
    };
    let result: ManyResult<T>;
    try {
      result = await this.#loader(keys.slice(), context);
      if (!(result instanceof Map) && !(Array.isArray(result) && result.length === keys.length)) {
        throw new ConfigurationError(
          `Expected the getOrSetMany loader to return a Map or an array of ${keys.length} values (one per key it was given), got ${describeValue(result)}`,
        );
      }
    } catch (error) {
      for (const p of pending) p.reject(error);
      return;
    }
    const negative = this.#options.negativeTtl !== undefined;
    pending.forEach((p, i) => {
      if (unchanged.has(p.key) && p.context.stale !== undefined) return p.resolve(UNCHANGED satisfies Unchanged);
      const value = result instanceof Map ? result.get(p.key) : (result as readonly unknown[])[i];
      // A key the loader left out (or answered undefined for) is not found: nothing stored, or a negative entry.
      if (value === undefined && !negative) p.context.skip();
      p.resolve(value);
    });
  }
}
