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
}

export type Listener<E extends keyof CacheEvents> = (event: CacheEvents[E]) => void;

/** Returned by `on`: call it to stop listening. */
export type Disposer = () => void;

/**
 * A small typed emitter. Unlike node's EventEmitter an `error` with no listener is not thrown, and a listener that
 * throws cannot break the operation that emitted: its error is reported on the process as a warning.
 */
export class Emitter {
  readonly #listeners = new Map<keyof CacheEvents, Set<Listener<keyof CacheEvents>>>();

  on<E extends keyof CacheEvents>(event: E, listener: Listener<E>): Disposer {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    const stored = listener as Listener<keyof CacheEvents>;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  has(event: keyof CacheEvents): boolean {
    return (this.#listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends keyof CacheEvents>(event: E, payload: CacheEvents[E]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        listener(payload);
      } catch (error) {
        process.emitWarning(`tiercache: a '${event}' listener threw: ${String(error)}`);
      }
    }
  }

  removeAll(): void {
    this.#listeners.clear();
  }
}
