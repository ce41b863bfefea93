import type { CacheError } from '../errors.js';
import type { BreakerTransition } from '../resilience/breaker.js';

/** What each event carries. */
export interface CacheEvents {
  /** A Redis failure the cache absorbed (reads fell back, writes updated L1), or an entry that failed to decode. */
  error: {
    readonly operation: 'get' | 'set' | 'delete' | 'clear' | 'connection' | 'decode';
    readonly key: string | undefined;
    readonly error: CacheError;
  };
  /** The circuit breaker around Redis opened: Redis is skipped until a probe succeeds. */
  'breaker:open': BreakerTransition;
  /** The breaker lets one probe through. */
  'breaker:half-open': BreakerTransition;
  /** The probe succeeded: Redis is used again. */
  'breaker:close': BreakerTransition;
  /** The connection to Redis is ready: at start-up, and again after every loss. Once per transition. */
  'redis:up': { readonly at: number };
  /**
   * The connection to Redis was lost, or the first attempt to make it failed. Once per transition, however many
   * reconnect attempts fail after it; `error` is the last connection error seen, when there was one.
   */
  'redis:down': { readonly at: number; readonly error: CacheError | undefined };
}

export type Listener<E extends keyof CacheEvents> = (event: CacheEvents[E]) => void;

/** Returned by `on`: call it to stop listening. */
export type Disposer = () => void;

/**
 * The one typed emitter of tiercache (the cache's events, the breaker's transitions). Unlike node's EventEmitter an
 * `error` with no listener is not thrown, and a listener that throws cannot break the operation that emitted: its
 * error is reported on the process as a warning.
 */
export class Emitter<Events extends object = CacheEvents> {
  readonly #listeners = new Map<keyof Events, Set<(payload: never) => void>>();
  readonly #name: string;

  /** `name` says whose listener threw, in the warning. */
  constructor(name = 'cache') {
    this.#name = name;
  }

  on<E extends keyof Events>(event: E, listener: (payload: Events[E]) => void): Disposer {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    const stored = listener as (payload: never) => void;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  has(event: keyof Events): boolean {
    return (this.#listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends keyof Events>(event: E, payload: Events[E]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    for (const listener of [...set]) {
      try {
        (listener as (payload: Events[E]) => void)(payload);
      } catch (error) {
        process.emitWarning(`tiercache: a ${this.#name} '${String(event)}' listener threw: ${String(error)}`);
      }
    }
  }

  removeAll(): void {
    this.#listeners.clear();
  }
}
